"""CycleGAN's cycle-consistency and identity terms (Zhu et al. 2017), on the reconstructions a
cycle generator's training forward makes (kdgan.nets.cycle; the batch's generator inputs are
the real (a, b)):

    cycle     |G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1
    identity  |G_AB(b) - b|_1 + |G_BA(a) - a|_1

each L1 a mean over elements. CycleGAN weighs them lambda = 10 and 0.5 * lambda
(train.cycle.cycle, train.cycle.identity); CycleGAN-VC uses the same two terms on mels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdgan.losses.terms import LossTerm, StepContext


class CycleConsistency(LossTerm):
    name = "cycle"

    def compute(self, ctx: StepContext) -> torch.Tensor:
        a, b = ctx.batch.g_inputs[:2]
        made = ctx.g_extras
        return F.l1_loss(made["cycle_a"], a) + F.l1_loss(made["cycle_b"], b)


class IdentityMapping(LossTerm):
    name = "identity"

    def compute(self, ctx: StepContext) -> torch.Tensor:
        a, b = ctx.batch.g_inputs[:2]
        made = ctx.g_extras
        return F.l1_loss(made["identity_b"], b) + F.l1_loss(made["identity_a"], a)

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


class _L1ToBothInputs(LossTerm):
    """|extras[made_of[0]] - a|_1 + |extras[made_of[1]] - b|_1 for the batch's real (a, b)."""

    made_of: tuple[str, str]

    def compute(self, ctx: StepContext) -> torch.Tensor:
        a, b = ctx.batch.g_inputs[:2]
        like_a, like_b = (ctx.g_extras[key] for key in self.made_of)
        return F.l1_loss(like_a, a) + F.l1_loss(like_b, b)


class CycleConsistency(_L1ToBothInputs):
    name, made_of = "cycle", ("cycle_a", "cycle_b")


class IdentityMapping(_L1ToBothInputs):
    name, made_of = "identity", ("identity_a", "identity_b")

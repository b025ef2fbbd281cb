"""Loss terms: small modules with a name and a weight, summed into one objective.

The training loop builds one objective for the discriminator and one for the generator.
Teacher training uses the adversarial terms below; distillation adds its own terms to the
same lists (the loop does not change), and every term is logged under its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from kdgan.data.sampling import StepBatch
from kdgan.losses.adversarial import discriminator_loss, generator_loss
from kdgan.losses.penalties import gradient_penalty, r1_penalty


@dataclass
class StepContext:
    """Everything a term may look at in one step. Tensors are computed once by the loop and
    shared by all terms, so adding a term never adds a forward pass of G or D."""

    phase: str  # "d" (discriminator update) or "g" (generator update)
    batch: StepBatch
    fake: torch.Tensor  # generator(*batch.g_inputs): detached in the D objective
    fake_logits: torch.Tensor  # discriminator(fake, *batch.d_inputs)
    discriminator: nn.Module
    noise: torch.Generator  # CPU generator for any randomness a term needs (reproducible)
    real_logits: torch.Tensor | None = None  # discriminator(real, ...): D objective only
    extra: dict = field(default_factory=dict)  # tensors added by distillation (teacher outputs, ...)


class LossTerm(nn.Module):
    """One weighted term. Subclasses set `name`, the `phase` whose objective they join
    ("g" or "d"), the `ctx.extra` entries they read (`needs`), and implement `compute(ctx)`."""

    name: str = "term"
    phase: str = "g"
    needs: tuple[str, ...] = ()

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = float(weight)

    def compute(self, ctx: StepContext) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, ctx: StepContext) -> torch.Tensor:
        return self.compute(ctx)


class Objective(nn.Module):
    """sum_i weight_i * term_i. Returns the total and each term's unweighted value."""

    def __init__(self, symbol: str, terms: list[LossTerm]):
        super().__init__()
        names = [t.name for t in terms]
        if len(set(names)) != len(names):
            raise ValueError(f"loss term names must be unique, got {names}")
        self.symbol, self.terms = symbol, nn.ModuleList(terms)

    def forward(self, ctx: StepContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        values = {t.name: t(ctx) for t in self.terms}
        total = sum(t.weight * values[t.name] for t in self.terms)
        return total, values

    def formula(self) -> str:
        return f"{self.symbol} = " + " + ".join(f"{t.weight:g}*{t.name}" for t in self.terms)


class AdversarialD(LossTerm):
    name, phase = "d_adv", "d"

    def __init__(self, loss: str, weight: float = 1.0):
        super().__init__(weight)
        self.loss = loss

    def compute(self, ctx: StepContext) -> torch.Tensor:
        on_real, on_fake = discriminator_loss(self.loss, ctx.real_logits, ctx.fake_logits)
        return on_real + on_fake


class AdversarialG(LossTerm):
    name = "g_adv"

    def __init__(self, loss: str, weight: float = 1.0):
        super().__init__(weight)
        self.loss = loss

    def compute(self, ctx: StepContext) -> torch.Tensor:
        return generator_loss(self.loss, ctx.fake_logits)


class Reconstruction(LossTerm):
    """|G(x) - y| (or squared) against the task's ground truth y = batch.real."""

    name = "recon"

    def __init__(self, loss: str = "l1", weight: float = 1.0):
        super().__init__(weight)
        self.loss = loss

    def compute(self, ctx: StepContext) -> torch.Tensor:
        target = ctx.batch.real.to(ctx.fake.dtype)
        return F.l1_loss(ctx.fake, target) if self.loss == "l1" else F.mse_loss(ctx.fake, target)


class R1(LossTerm):
    """Weight is gamma / 2 (Mescheder et al.)."""

    name, phase = "d_r1", "d"

    def compute(self, ctx: StepContext) -> torch.Tensor:
        return r1_penalty(ctx.discriminator, ctx.batch.real, ctx.batch.d_inputs)


class GradientPenalty(LossTerm):
    name, phase = "d_gp", "d"

    def compute(self, ctx: StepContext) -> torch.Tensor:
        return gradient_penalty(ctx.discriminator, ctx.batch.real, ctx.fake, ctx.batch.d_inputs, ctx.noise)

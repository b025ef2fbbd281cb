"""Loss terms: small modules with a name and a weight, summed into one objective.

The training loop builds one objective for the discriminator and one for the generator.
Teacher training uses the adversarial terms below; distillation adds its own terms to the
same lists (the loop does not change), and every term is logged under its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from kdgan.data.sampling import StepBatch
from kdgan.errors import UserError
from kdgan.losses.adversarial import discriminator_loss, features_of, generator_loss
from kdgan.losses.penalties import gradient_penalty, r1_penalty


class GeneratorOutput(NamedTuple):
    """A generator's output when it has a distribution beside its sample (a token
    generator's per-position logits), so that distillation terms can compare distributions;
    a generator may also return just the sample tensor. `extras` are other tensors its
    forward made for loss terms (a cycle generator's reconstructions, kdgan.nets.cycle)."""

    sample: torch.Tensor
    logits: torch.Tensor | None = None
    extras: dict | None = None


def generator_output(output) -> GeneratorOutput:
    """Any generator's return value as a GeneratorOutput. A tuple/list whose first element is
    a tensor (as many codebases return `(images, features)`) counts as that tensor."""
    if isinstance(output, GeneratorOutput):
        return output
    if isinstance(output, (tuple, list)) and output and torch.is_tensor(output[0]):
        return GeneratorOutput(output[0])
    return GeneratorOutput(output)


@dataclass
class StepContext:
    """Everything a term may look at in one step. Tensors are computed once by the loop and
    shared by all terms, so adding a term never adds a forward pass of G or D."""

    phase: str  # "d" (discriminator update) or "g" (generator update)
    batch: StepBatch
    fake: torch.Tensor  # the generator's sample for batch.g_inputs: detached in the D objective
    # discriminator(fake as the task shows it, *batch.d_inputs): a tensor of logits or a
    # DiscriminatorOutput (several heads, with feature maps)
    fake_logits: object
    discriminator: nn.Module
    noise: torch.Generator  # CPU generator for any randomness a term needs (reproducible)
    real_logits: object = None  # discriminator(real, ...): D objective only
    extra: dict = field(default_factory=dict)  # tensors added by distillation (teacher outputs, ...)
    g_logits: torch.Tensor | None = None  # the generator's logits, when its output has them
    # what the discriminator saw of `fake` (the task's relaxation of a discrete output); None: `fake`
    view: torch.Tensor | None = None
    adversarial: bool = True  # False in the steps before train.adversarial_start: no discriminator runs
    g_extras: dict = field(default_factory=dict)  # GeneratorOutput.extras of this step's forward

    @property
    def judged(self) -> torch.Tensor:
        """The generator's output as discriminators take it (teacher critics score this too)."""
        return self.fake if self.view is None else self.view


class LossTerm(nn.Module):
    """One weighted term. Subclasses set `name`, the `phase` whose objective they join
    ("g" or "d"), the `ctx.extra` entries they read (`needs`), and implement `compute(ctx)`."""

    name: str = "term"
    phase: str = "g"
    needs: tuple[str, ...] = ()
    # runs a discriminator (the one being trained, or the teacher's): left out before
    # train.adversarial_start, whose steps run no discriminator at all
    adversarial: bool = False

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

    def forward(self, ctx: StepContext, adversarial: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """adversarial=False: only the terms that run no discriminator."""
        terms = [t for t in self.terms if adversarial or not t.adversarial]
        values = {t.name: t(ctx) for t in terms}
        total = sum(t.weight * values[t.name] for t in terms)
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
    name, adversarial = "g_adv", True

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


class FeatureMatching(LossTerm):
    """HiFi-GAN's feature matching: the mean L1 between the discriminator's feature maps on
    real data and on the generator's samples, averaged over the maps. The real pass runs here,
    without a graph (D's weights are frozen in the G step)."""

    name, adversarial = "g_fm", True

    def compute(self, ctx: StepContext) -> torch.Tensor:
        fake = features_of(ctx.fake_logits)
        if not fake:
            raise UserError("train.loss.feature_matching: this discriminator returns no feature maps "
                            "(return a kdgan.losses.DiscriminatorOutput with features), or set it to 0")
        with torch.no_grad():
            real = features_of(ctx.discriminator(ctx.batch.real, *ctx.batch.d_inputs))
        return torch.stack([F.l1_loss(f.float(), r.float()) for f, r in zip(fake, real)]).mean()

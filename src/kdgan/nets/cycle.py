"""CycleGAN's pair of translators and pair of judges, as one generator and one discriminator
for the one training loop (train.cycle; kdgan.train.cycle makes the batches).

Any generator family serves as each direction and any discriminator family as each judge:
the composite specs hold the two inner specs, so a checkpoint rebuilds all four networks.

    generator(a)     -> G_AB(a): what sampling, evaluation and export call
    generator(a, b)  -> samples stacked on dim 1 as (G_AB(a), G_BA(b)), with the
                        reconstructions G_BA(G_AB(a)), G_AB(G_BA(b)) and, for the identity
                        term, G_AB(b), G_BA(a) in GeneratorOutput.extras
    discriminator(x) -> D_B(x[:, 0]) and D_A(x[:, 1]) as the heads of one output, so every
                        adversarial loss sums the two, as CycleGAN does

A trained cycle is used as its A -> B half: kdgan.loading unwraps a loaded one, so
distillation, export and pruning init see an ordinary generator of the inner family (the
B -> A half stays in the run's checkpoints).
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, model_validator

import torch
from torch import nn

from kdgan.families import (Family, build_discriminator, build_generator, read_discriminator_spec,
                            read_generator_spec)
from kdgan.losses.adversarial import DiscriminatorOutput, features_of, logits_of
from kdgan.losses.terms import GeneratorOutput, generator_output
from kdgan.registry import DISCRIMINATORS, GENERATORS
from kdgan.schema import Strict


class CycleGeneratorSpec(Strict):
    arch: Literal["cycle"] = "cycle"
    a_to_b: dict  # the inner family's saved spec (kdgan.families.saved_spec)
    b_to_a: dict
    identity: bool = True  # the training forward also makes G_AB(b), G_BA(a)

    @property
    def width(self) -> int:
        return read_generator_spec(self.a_to_b, "generator_spec.a_to_b").width


class CycleDiscriminatorSpec(Strict):
    arch: Literal["cycle"] = "cycle"
    judge_b: dict  # judges samples of domain B (G_AB's outputs)
    judge_a: dict

    @property
    def width(self) -> int:
        return read_discriminator_spec(self.judge_b, "discriminator_spec.judge_b").width


class CycleGenerator(nn.Module):
    def __init__(self, spec: CycleGeneratorSpec):
        super().__init__()
        self.a_to_b = build_generator(read_generator_spec(spec.a_to_b, "generator_spec.a_to_b"))
        self.b_to_a = build_generator(read_generator_spec(spec.b_to_a, "generator_spec.b_to_a"))
        self.identity = spec.identity

    def forward(self, a: torch.Tensor, b: torch.Tensor | None = None):
        ab = lambda x: generator_output(self.a_to_b(x)).sample  # noqa: E731
        ba = lambda x: generator_output(self.b_to_a(x)).sample  # noqa: E731
        fake_b = ab(a)
        if b is None:
            return fake_b
        fake_a = ba(b)
        extras = {"cycle_a": ba(fake_b), "cycle_b": ab(fake_a)}
        if self.identity:
            extras.update(identity_b=ab(b), identity_a=ba(a))
        return GeneratorOutput(torch.stack([fake_b, fake_a], 1), extras=extras)


class CycleDiscriminator(nn.Module):
    def __init__(self, spec: CycleDiscriminatorSpec):
        super().__init__()
        self.judge_b = build_discriminator(read_discriminator_spec(spec.judge_b, "discriminator_spec.judge_b"))
        self.judge_a = build_discriminator(read_discriminator_spec(spec.judge_a, "discriminator_spec.judge_a"))

    def forward(self, x: torch.Tensor, *d_inputs: torch.Tensor) -> DiscriminatorOutput:
        on_b, on_a = self.judge_b(x[:, 0], *d_inputs), self.judge_a(x[:, 1], *d_inputs)
        return DiscriminatorOutput([*logits_of(on_b), *logits_of(on_a)], [*features_of(on_b), *features_of(on_a)])


class _NoConfig(Strict):
    """Not a model section of its own: train.cycle builds the pair from the task's families."""

    model_config = ConfigDict(extra="allow")  # whatever it holds, the one line below is the error
    arch: Literal["cycle"] = "cycle"

    @model_validator(mode="after")
    def _refuse(self):
        raise ValueError("'cycle' is not configured here: set train.cycle and give the family of each "
                         "direction (or judge) in this section")


GENERATORS.register("cycle", Family(build=CycleGenerator, spec=CycleGeneratorSpec, config=_NoConfig,
                                    configurable=False))
DISCRIMINATORS.register("cycle", Family(build=CycleDiscriminator, spec=CycleDiscriminatorSpec, config=_NoConfig,
                                        configurable=False))


"""The distillation terms a config names in `distill.terms`, each registered with its schema
and how it is built (kdgan.registry.TERMS).

A term of a task package registers the same way:

    @TERMS.register("mel_l1")
    class MelL1Entry:
        config = MelL1Config                      # the entry's schema (has `name`, `weight`)
        build = staticmethod(lambda tc, setup: MelL1(tc.weight))

`setup` (TermSetup) holds the teacher, the student, the adversarial loss's name and example
generator inputs; terms that read intermediate features register their taps on it, and the
provider that fills `ctx.extra` each step is made from it once all terms are built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from pydantic import Field
from torch import nn

from kdgan.distill.features import DiscriminatorPerceptual, FeatureDistill, LPIPSPerceptual, load_lpips
from kdgan.distill.taps import Taps, default_attention_taps, default_discriminator_taps, default_generator_taps
from kdgan.loading import GAN
from kdgan.errors import UserError
from kdgan.losses.distill import DiscriminatorKL, OutputKL, OutputL1, OutputL2, TeacherCritic, TeacherFeatureMatching
from kdgan.losses.terms import LossTerm
from kdgan.registry import TERMS
from kdgan.schema import Strict


@dataclass
class TermSetup:
    teacher: GAN
    student: nn.Module
    adversarial_loss: str  # train.loss.name: the teacher critic scores with the same loss
    probe_inputs: tuple  # generator inputs for two samples, to measure feature shapes
    field: str = "distill.terms"  # the entry being built, for error lines
    student_taps: Taps | None = None
    teacher_taps: Taps | None = None
    d_taps: Taps | None = None

    def teacher_discriminator(self, term: str) -> nn.Module:
        if self.teacher.discriminator is None:
            raise UserError(f"{self.field}: {term} needs the teacher's discriminator, and this teacher has none")
        return self.teacher.discriminator


@dataclass(frozen=True)
class TermEntry:
    config: type[Strict]  # the schema of a distill.terms entry; has `name` and `weight`
    build: Callable[[Strict, TermSetup], LossTerm]


def register(name: str, config: type[Strict]):
    """`@class TeacherFeatureMatchingTerm(Strict):
    name: Literal["teacher_fm"]
    weight: float = 1.0


register("l1", L1Term)` on a function (config, setup) -> LossTerm."""

    def add(build):
        TERMS.register(name, TermEntry(config, build))
        return build

    return add


class L1Term(Strict):
    name: Literal["l1"]
    weight: float = 1.0


class L2Term(Strict):
    name: Literal["l2"]
    weight: float = 1.0


class KLTerm(Strict):
    """The seed's KL response distillation; see kdgan.losses.distill.OutputKL for `dim`."""

    name: Literal["kl"]
    weight: float = 1.0
    temperature: float = Field(1.0, gt=0)
    dim: Literal["pixels", "channels", "logits"] = "pixels"
    reduction: Literal["distribution", "elementwise"] = "distribution"


class PerceptualTerm(Strict):
    name: Literal["perceptual"]
    weight: float = 1.0
    network: Literal["teacher_discriminator", "lpips"] = "teacher_discriminator"
    layers: list[str] | None = None  # teacher-discriminator module paths; default: its stages


class FeatureTerm(Strict):
    name: Literal["feature"]
    weight: float = 1.0
    loss: Literal["mse", "kernel", "relation", "attention"] = "mse"
    # (student path, teacher path); default: stage outputs, or for attention the networks'
    # `attention_taps` (a text transformer's last cross-attention maps)
    taps: list[tuple[str, str]] | None = None
    temperature: float = Field(1.0, gt=0)  # relation only
    # mse: where the features' channels are: channels_first (B, C, ...) as convolutions give
    # them; channels_last (B, ..., C) as transformers do (the adapter maps the last axis)
    layout: Literal["channels_first", "channels_last"] = "channels_first"


class DiscriminatorKLTerm(Strict):
    name: Literal["d_kl"]
    weight: float = 1.0
    temperature: float = Field(1.0, gt=0)


class TeacherCriticTerm(Strict):
    name: Literal["g_teacher_adv"]
    weight: float = 1.0


class TeacherFeatureMatchingTerm(Strict):
    name: Literal["teacher_fm"]
    weight: float = 1.0


register("l1", L1Term)(lambda tc, setup: OutputL1(tc.weight))
register("l2", L2Term)(lambda tc, setup: OutputL2(tc.weight))
register("kl", KLTerm)(lambda tc, setup: OutputKL(tc.weight, tc.temperature, tc.dim, tc.reduction))


@register("d_kl", DiscriminatorKLTerm)
def _d_kl(tc: DiscriminatorKLTerm, setup: TermSetup) -> LossTerm:
    setup.teacher_discriminator(tc.name)
    return DiscriminatorKL(tc.weight, tc.temperature)


@register("g_teacher_adv", TeacherCriticTerm)
def _teacher_critic(tc: TeacherCriticTerm, setup: TermSetup) -> LossTerm:
    setup.teacher_discriminator(tc.name)
    return TeacherCritic(setup.adversarial_loss, tc.weight)


@register("teacher_fm", TeacherFeatureMatchingTerm)
def _teacher_fm(tc: TeacherFeatureMatchingTerm, setup: TermSetup) -> LossTerm:
    setup.teacher_discriminator(tc.name)
    return TeacherFeatureMatching(tc.weight)


@register("perceptual", PerceptualTerm)
def _perceptual(tc: PerceptualTerm, setup: TermSetup) -> LossTerm:
    if tc.network == "lpips":
        return LPIPSPerceptual(load_lpips(f"{setup.field}.network"), tc.weight)
    critic = setup.teacher_discriminator(tc.name)
    if setup.d_taps is not None:
        raise UserError(f"{setup.field}: only one perceptual term is supported")
    setup.d_taps = Taps(critic, tc.layers or default_discriminator_taps(critic), "teacher discriminator",
                        f"{setup.field}.layers")
    return DiscriminatorPerceptual(tc.weight)


@register("feature", FeatureTerm)
def _feature(tc: FeatureTerm, setup: TermSetup) -> LossTerm:
    teacher, student = setup.teacher.generator, setup.student
    defaults = default_attention_taps if tc.loss == "attention" else default_generator_taps
    pairs = [tuple(p) for p in (tc.taps or defaults(student, teacher))]
    field = f"{setup.field}.taps"
    student_paths, teacher_paths = [s for s, _ in pairs], [t for _, t in pairs]
    # every feature term's taps share one set of hooks per network (one snapshot per step)
    for side, net, paths in (("student", student, student_paths), ("teacher", teacher, teacher_paths)):
        taps = getattr(setup, f"{side}_taps")
        if taps is None:
            setattr(setup, f"{side}_taps", Taps(net, paths, side, field))
        else:
            taps.extend(paths, field)
    shapes = None
    if tc.loss == "mse":  # the adapters are sized from one probe forward of each network
        shapes = list(zip(probe_shapes(student, setup.student_taps, setup.probe_inputs, student_paths),
                          probe_shapes(teacher, setup.teacher_taps, setup.probe_inputs, teacher_paths)))
    return FeatureDistill(pairs, tc.loss, shapes, tc.weight, tc.temperature, tc.layout)


def probe_shapes(net: nn.Module, taps: Taps, inputs: tuple, paths: list[str]) -> list[tuple]:
    """Per-sample feature shapes at `paths`, from one eval-mode forward on two samples."""
    was = net.training
    net.eval()
    with torch.no_grad():
        net(*inputs)
    net.train(was)
    return [tuple(taps.outputs[p].shape[1:]) for p in paths]

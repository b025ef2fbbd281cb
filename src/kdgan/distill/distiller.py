"""Distillation as extra loss terms plus one provider of teacher outputs per step.

The provider runs the teacher generator once per step, without a graph, on the student's
own inputs, and the teacher discriminator only where a term reads its output. The student
forward pass that the loop already made is reused: its feature taps were recorded by hooks
during that pass. So a distillation step costs one student forward, one teacher forward,
and whatever teacher-discriminator passes the chosen terms need.
"""

from __future__ import annotations

import torch
from torch import nn

from kdgan.config import (
    DiscriminatorKLTerm,
    FeatureTerm,
    KLTerm,
    L1Term,
    L2Term,
    PerceptualTerm,
    TeacherCriticTerm,
)
from kdgan.distill.features import DiscriminatorPerceptual, FeatureDistill, LPIPSPerceptual, load_lpips
from kdgan.distill.taps import Taps, default_discriminator_taps, default_generator_taps
from kdgan.distill.teacher import Teacher
from kdgan.errors import UserError
from kdgan.losses.distill import DiscriminatorKL, OutputKL, OutputL1, OutputL2, TeacherCritic
from kdgan.losses.terms import LossTerm, StepContext


class TeacherProvider:
    """Fills `ctx.extra` with what the distillation terms read (see losses/distill.py and
    distill/features.py for the names). Only what some term needs is computed."""

    def __init__(self, teacher: Teacher, needs: set[str], student_taps: Taps | None,
                 teacher_taps: Taps | None, d_taps: Taps | None):
        self.teacher, self.needs = teacher, needs
        self.student_taps, self.teacher_taps, self.d_taps = student_taps, teacher_taps, d_taps

    @property
    def taps(self) -> list[Taps]:
        return [t for t in (self.student_taps, self.teacher_taps, self.d_taps) if t is not None]

    def on_fit_start(self) -> None:
        for t in self.taps:
            t.attach()

    def on_fit_end(self) -> None:
        """Unhook the networks: the user's teacher and the student leave training without kdgan's hooks."""
        for t in self.taps:
            t.remove()

    def __call__(self, ctx: StepContext) -> None:
        t, extra, batch = self.teacher, ctx.extra, ctx.batch
        if ctx.phase == "d":
            if "teacher_real_logits" in self.needs:
                with torch.no_grad():
                    extra["teacher_real_logits"] = t.discriminator(batch.real, *batch.d_inputs)
                    extra["teacher_fake_logits"] = t.discriminator(ctx.fake, *batch.d_inputs)
            return
        g_needs = self.needs & {"teacher_out", "teacher_features", "d_features_teacher"}
        if g_needs:
            with torch.no_grad():
                extra["teacher_out"] = t.generate(*batch.g_inputs)
        if self.teacher_taps is not None:
            extra["teacher_features"] = self.teacher_taps.snapshot()
            extra["student_features"] = self.student_taps.snapshot()  # from the loop's student pass
        if self.needs & {"teacher_d_on_fake", "d_features_fake"}:
            # Gradients flow through D_t into the student's fakes; D_t's weights are frozen.
            extra["teacher_d_on_fake"] = t.discriminator(ctx.fake, *batch.d_inputs)
            if self.d_taps is not None:
                extra["d_features_fake"] = self.d_taps.snapshot()
                with torch.no_grad():
                    t.discriminator(extra["teacher_out"], *batch.d_inputs)
                extra["d_features_teacher"] = self.d_taps.snapshot()


def probe_shapes(net: nn.Module, taps: Taps, inputs: tuple) -> list[tuple]:
    """Per-sample feature shapes at the taps, from one eval-mode forward on two samples."""
    was = net.training
    net.eval()
    with torch.no_grad():
        net(*inputs)
    net.train(was)
    return [tuple(taps.outputs[p].shape[1:]) for p in taps.paths]


def build_terms(terms_cfg: list, teacher: Teacher, student: nn.Module, adv_loss: str,
                probe_inputs: tuple) -> tuple[list[LossTerm], TeacherProvider]:
    """Distillation LossTerms from the config's `distill.terms`, and the provider that feeds them."""
    terms: list[LossTerm] = []
    student_taps = teacher_taps = d_taps = None
    for i, tc in enumerate(terms_cfg):
        field = f"distill.terms.{i}"
        needs_d = isinstance(tc, (DiscriminatorKLTerm, TeacherCriticTerm)) or (
            isinstance(tc, PerceptualTerm) and tc.network == "teacher_discriminator"
        )
        if needs_d and teacher.discriminator is None:
            raise UserError(f"{field}: {tc.name} needs the teacher's discriminator, and this teacher has none")
        if isinstance(tc, L1Term):
            terms.append(OutputL1(tc.weight))
        elif isinstance(tc, L2Term):
            terms.append(OutputL2(tc.weight))
        elif isinstance(tc, KLTerm):
            terms.append(OutputKL(tc.weight, tc.temperature, tc.dim, tc.reduction))
        elif isinstance(tc, DiscriminatorKLTerm):
            terms.append(DiscriminatorKL(tc.weight, tc.temperature))
        elif isinstance(tc, TeacherCriticTerm):
            terms.append(TeacherCritic(adv_loss, tc.weight))
        elif isinstance(tc, PerceptualTerm):
            if tc.network == "lpips":
                terms.append(LPIPSPerceptual(load_lpips(f"{field}.network"), tc.weight))
                continue
            if d_taps is not None:
                raise UserError(f"{field}: only one perceptual term is supported")
            d_taps = Taps(teacher.discriminator, tc.layers or default_discriminator_taps(teacher.discriminator),
                          "teacher discriminator", f"{field}.layers")
            terms.append(DiscriminatorPerceptual(tc.weight))
        elif isinstance(tc, FeatureTerm):
            pairs = [tuple(p) for p in (tc.taps or default_generator_taps(student, teacher.generator))]
            if student_taps is not None:
                raise UserError(f"{field}: only one feature term is supported; list all taps in it")
            student_taps = Taps(student, [s for s, _ in pairs], "student", f"{field}.taps")
            teacher_taps = Taps(teacher.generator, [t for _, t in pairs], "teacher", f"{field}.taps")
            shapes = None
            if tc.loss == "mse":
                ss = probe_shapes(student, student_taps, probe_inputs)
                st = probe_shapes(teacher.generator, teacher_taps, probe_inputs)
                shapes = list(zip(ss, st))
            terms.append(FeatureDistill(pairs, tc.loss, shapes, tc.weight, tc.temperature))
    needs = {n for t in terms for n in t.needs}
    return terms, TeacherProvider(teacher, needs, student_taps, teacher_taps, d_taps)

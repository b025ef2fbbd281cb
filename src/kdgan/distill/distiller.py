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

from kdgan.distill.taps import Taps
from kdgan.loading import GAN
from kdgan.distill.terms import TermSetup
from kdgan.losses.terms import LossTerm, StepContext, generator_output
from kdgan.registry import TERMS


class TeacherProvider:
    """Fills `ctx.extra` with what the distillation terms read (see losses/distill.py and
    distill/features.py for the names). Only what some term needs is computed."""

    def __init__(self, teacher: GAN, needs: set[str], student_taps: Taps | None,
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
                    extra["teacher_fake_logits"] = t.discriminator(ctx.judged, *batch.d_inputs)
            return
        g_needs = self.needs & {"teacher_out", "teacher_logits", "teacher_features", "d_features_teacher",
                                 "teacher_d_on_teacher"}
        if g_needs:
            with torch.no_grad():
                output = generator_output(t.generator(*batch.g_inputs))
            extra["teacher_out"], extra["teacher_logits"] = output.sample, output.logits
        if self.teacher_taps is not None:
            extra["teacher_features"] = self.teacher_taps.snapshot()
            extra["student_features"] = self.student_taps.snapshot()  # from the loop's student pass
        if ctx.adversarial and self.needs & {"teacher_d_on_fake", "d_features_fake"}:
            # Gradients flow through D_t into the student's fakes; D_t's weights are frozen.
            extra["teacher_d_on_fake"] = t.discriminator(ctx.judged, *batch.d_inputs)
            if "teacher_d_on_teacher" in self.needs:
                with torch.no_grad():
                    extra["teacher_d_on_teacher"] = t.discriminator(extra["teacher_out"], *batch.d_inputs)
            if self.d_taps is not None:
                extra["d_features_fake"] = self.d_taps.snapshot()
                with torch.no_grad():
                    t.discriminator(extra["teacher_out"], *batch.d_inputs)
                extra["d_features_teacher"] = self.d_taps.snapshot()


def build_terms(terms_cfg: list, teacher: GAN, student: nn.Module, adv_loss: str,
                probe_inputs: tuple) -> tuple[list[LossTerm], TeacherProvider]:
    """Distillation LossTerms from the config's `distill.terms` (each built by its registered
    entry), and the provider that feeds them."""
    setup = TermSetup(teacher, student, adv_loss, probe_inputs)
    terms: list[LossTerm] = []
    for i, tc in enumerate(terms_cfg):
        setup.field = f"distill.terms.{i}"
        terms.append(TERMS.get(tc.name, f"{setup.field}.name").build(tc, setup))
    needs = {n for t in terms for n in t.needs}
    return terms, TeacherProvider(teacher, needs, setup.student_taps, setup.teacher_taps, setup.d_taps)

"""Distillation terms on outputs: generator response distillation and discriminator
distillation (seed sections 3-4), and the teacher discriminator as a frozen critic.

Each reads tensors the loop computed once per step (`ctx.extra`, filled by the distiller):

    teacher_out          T(*g_inputs), no graph              (B, C, H, W)
    teacher_real_logits  D_t(real), no graph                 (B,)
    teacher_fake_logits  D_t(fake.detach()), no graph         (B,)   D phase
    teacher_d_on_fake    D_t(fake) with a graph to the student (B,)  G phase, critic terms
    teacher_d_on_teacher D_t(T(*g_inputs)), no graph                 G phase, feature matching
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdgan.errors import UserError
from kdgan.losses.adversarial import features_of, generator_loss, logits_of
from kdgan.losses.terms import LossTerm, StepContext


class OutputL1(LossTerm):
    """mean |S(z) - T(z)| (GAN Compression, CAT, TinyGAN's pixel loss)."""

    name, phase, needs = "l1", "g", ("teacher_out",)

    def compute(self, ctx: StepContext) -> torch.Tensor:
        return F.l1_loss(ctx.fake, ctx.extra["teacher_out"])


class OutputL2(LossTerm):
    """mean (S(z) - T(z))^2."""

    name, phase, needs = "l2", "g", ("teacher_out",)

    def compute(self, ctx: StepContext) -> torch.Tensor:
        return F.mse_loss(ctx.fake, ctx.extra["teacher_out"])


def kl_softmax(student: torch.Tensor, teacher: torch.Tensor, dim: int, temperature: float, reduction: str) -> torch.Tensor:
    """tau^2 * KL(softmax(t / tau) || softmax(s / tau)) along `dim` (Hinton et al.'s scaling,
    so gradients keep their size as tau changes).

    reduction='elementwise' averages over every element, which is what the seed's
    `nn.KLDivLoss()` (reduction='mean') does: it is the per-distribution KL divided by the
    size of `dim`. reduction='distribution' sums along `dim` and averages over the rest: a
    true mean KL, whose scale does not depend on how many entries each distribution has.
    """
    log_p_s = F.log_softmax(student / temperature, dim=dim)
    p_t = F.softmax(teacher / temperature, dim=dim)
    pointwise = F.kl_div(log_p_s, p_t, reduction="none")
    value = pointwise.mean() if reduction == "elementwise" else pointwise.sum(dim).mean()
    return value * temperature**2


class OutputKL(LossTerm):
    """KL between softmax distributions of teacher and student outputs, the seed's
    `KLDivLoss(log_softmax(S(z)), softmax(T(z)))`.

    Over which dimension the softmax runs decides what it means:
      * dim: channels (the seed's dim=1): for each pixel, a distribution over the image's
        channels, i.e. its colour balance. With one channel (grey images) every softmax is
        1 and the term is identically 0: it cannot distil anything.
      * dim: pixels: for each image channel, a distribution over its H*W pixels, i.e. where
        the intensity sits (as channel-wise distillation does for dense outputs). Meaningful
        for any channel count; insensitive to a constant brightness offset. For any sample
        shape (B, C, ...): over everything after the channel axis.
      * dim: logits: the generators' own distributions (GeneratorOutput.logits), over their
        last axis, e.g. the vocabulary at each position of a token generator: the seed's
        formula exactly, teacher logits rather than samples. Where the student's output marks
        the positions that hold a token (GeneratorOutput.extras["mask"]), padding is left out.
    """

    name, phase = "kl", "g"

    def __init__(self, weight: float = 1.0, temperature: float = 1.0, dim: str = "pixels",
                 reduction: str = "distribution"):
        super().__init__(weight)
        self.temperature, self.dim, self.reduction = temperature, dim, reduction
        self.needs = ("teacher_logits",) if dim == "logits" else ("teacher_out",)

    def compute(self, ctx: StepContext) -> torch.Tensor:
        if self.dim == "logits":
            s, t = ctx.g_logits, ctx.extra.get("teacher_logits")
            if s is None or t is None:
                who = "student" if s is None else "teacher"
                raise UserError(f"distill.terms: kl with dim: logits needs generators that return logits "
                                f"(kdgan.losses.GeneratorOutput); the {who}'s output has none")
            mask = ctx.g_extras.get("mask")  # positions that hold a token (not padding), if the output says
            if mask is not None:
                s, t = s[mask], t[mask]
            return kl_softmax(s, t, -1, self.temperature, self.reduction)
        s, t = ctx.fake, ctx.extra["teacher_out"]
        if self.dim == "pixels":
            s, t = s.flatten(2), t.flatten(2)  # (B, C, H*W)
            return kl_softmax(s, t, -1, self.temperature, self.reduction)
        return kl_softmax(s, t, 1, self.temperature, self.reduction)


def bernoulli_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """tau^2 * mean KL(Bern(sigma(t / tau)) || Bern(sigma(s / tau))): a discriminator's
    'real' probability is a two-class distribution p(y|x) = (sigma(l), 1 - sigma(l))."""
    t, s = teacher_logits / temperature, student_logits / temperature
    p_t = torch.sigmoid(t)
    # log sigma(x) = -softplus(-x), log(1 - sigma(x)) = -softplus(x): exact for large |x|
    kl = p_t * (F.softplus(-s) - F.softplus(-t)) + (1 - p_t) * (F.softplus(s) - F.softplus(t))
    return kl.mean() * temperature**2


class DiscriminatorKL(LossTerm):
    """Seed section 4.2: the student discriminator matches the teacher discriminator's soft
    labels, E_x KL(p_t(y|x) || p_s(y|x)), on real images and on the student's fakes."""

    name, phase, needs = "d_kl", "d", ("teacher_real_logits", "teacher_fake_logits")

    def __init__(self, weight: float = 1.0, temperature: float = 1.0):
        super().__init__(weight)
        self.temperature = temperature

    def compute(self, ctx: StepContext) -> torch.Tensor:
        """Averaged over the heads of a discriminator with several (teacher and student
        heads paired in order)."""
        kls = [bernoulli_kl(t, s, self.temperature)
               for which in ("real", "fake")
               for t, s in zip(logits_of(ctx.extra[f"teacher_{which}_logits"]),
                               logits_of(getattr(ctx, f"{which}_logits")))]
        return torch.stack(kls).mean()


class TeacherCritic(LossTerm):
    """The frozen teacher discriminator as a second critic of the student's fakes (TinyGAN,
    DCD): the generator's adversarial loss evaluated on D_t(S(z))."""

    name, phase, needs, adversarial = "g_teacher_adv", "g", ("teacher_d_on_fake",), True

    def __init__(self, loss: str, weight: float = 1.0):
        super().__init__(weight)
        self.loss = loss

    def compute(self, ctx: StepContext) -> torch.Tensor:
        return generator_loss(self.loss, ctx.extra["teacher_d_on_fake"])


class TeacherFeatureMatching(LossTerm):
    """HiFi-GAN's feature matching with the frozen teacher discriminator and the teacher's
    output as the target: mean over D_t's feature maps of |phi(S(x)) - phi(T(x))|. Where
    the student's own feature matching pulls towards real data through a discriminator that
    is still learning, this pulls towards the teacher through one that has converged. Needs a
    discriminator that returns its feature maps (a DiscriminatorOutput)."""

    name, phase, needs, adversarial = "teacher_fm", "g", ("teacher_d_on_fake", "teacher_d_on_teacher"), True

    def compute(self, ctx: StepContext) -> torch.Tensor:
        student, teacher = features_of(ctx.extra["teacher_d_on_fake"]), features_of(ctx.extra["teacher_d_on_teacher"])
        if not teacher:
            raise UserError("distill.terms: teacher_fm needs a teacher discriminator that returns its feature maps "
                            "(a DiscriminatorOutput, as the mpd-mrd family does); use perceptual for one that does not")
        return torch.stack([F.l1_loss(s, t) for s, t in zip(student, teacher)]).mean()

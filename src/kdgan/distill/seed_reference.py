"""The seed's distillation step, implemented literally (seed section 5), as a reference.

It is what kdgan's step is tested against (same losses and gradients on the same inputs)
and what the throughput benchmark measures kdgan against. Per step it runs the student
generator three times and the teacher twice, the second time with autograd recording, as
the seed's code does. Not used for training.

The seed's discriminator ends in a sigmoid and is trained with `nn.BCELoss`; kdgan's
discriminators return logits, so the sigmoid is applied here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def seed_step(
    student: nn.Module,
    discriminator: nn.Module,
    teacher: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z_d: torch.Tensor,
    z_g: torch.Tensor,
    alpha: float,
) -> dict:
    """One step of the seed's loop. z_d / z_g: the two latent draws the seed makes per step.
    Returns the losses and the discriminator's gradients as they were after its update's
    backward pass (the seed's generator backward later adds to them, as it never freezes D)."""
    criterion_adv = nn.BCELoss()
    criterion_distill = nn.KLDivLoss()
    d = lambda x: torch.sigmoid(discriminator(x))  # noqa: E731

    opt_d.zero_grad()
    real_outputs = d(real)
    real_loss = criterion_adv(real_outputs, torch.ones_like(real_outputs))
    fake_images = student(z_d)
    fake_outputs = d(fake_images.detach())
    fake_loss = criterion_adv(fake_outputs, torch.zeros_like(fake_outputs))
    loss_d = real_loss + fake_loss
    loss_d.backward()
    d_grads = [p.grad.clone() for p in discriminator.parameters()]
    opt_d.step()

    opt_g.zero_grad()
    fake_images = student(z_g)
    fake_outputs = d(fake_images)
    loss_adv = criterion_adv(fake_outputs, torch.ones_like(fake_outputs))
    with torch.no_grad():
        teacher_fake_images = teacher(z_g)  # computed and, as in the seed, never used
    loss_distill = criterion_distill(F.log_softmax(student(z_g), dim=1), F.softmax(teacher(z_g), dim=1))
    loss_g = loss_adv + alpha * loss_distill
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d.detach(), "loss_adv": loss_adv.detach(), "loss_distill": loss_distill.detach(),
            "loss_g": loss_g.detach(), "d_grads": d_grads, "unused": teacher_fake_images}

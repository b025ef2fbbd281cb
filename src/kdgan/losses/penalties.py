"""Gradient penalties on the discriminator, each a mean over the batch."""

from __future__ import annotations

from typing import Callable

import torch

from kdgan.losses.adversarial import logits_of


def _grad_sq_norm(d: Callable[..., torch.Tensor], x: torch.Tensor, d_inputs: tuple) -> torch.Tensor:
    """||dD(x)/dx||^2 per sample, with a graph so that the penalty itself can be minimised."""
    # fp32 even inside an autocast region: a second-order gradient in fp16 under-/overflows
    with torch.autocast(x.device.type, enabled=False):
        x = x.detach().float().requires_grad_(True)
        total = sum(t.float().sum() for t in logits_of(d(x, *d_inputs)))  # every head's logits
        (grad,) = torch.autograd.grad(total, x, create_graph=True)
        return grad.pow(2).flatten(1).sum(1)


def r1_penalty(d: Callable[..., torch.Tensor], real: torch.Tensor, d_inputs: tuple = ()) -> torch.Tensor:
    """R1 (Mescheder et al., 2018): E ||grad_x D(x_real)||^2. The config's gamma/2 is its weight."""
    return _grad_sq_norm(d, real, d_inputs).mean()


def gradient_penalty(
    d: Callable[..., torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    d_inputs: tuple = (),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al., 2017): E (||grad D(x_hat)|| - 1)^2 at x_hat on the line between
    a real and a fake sample. The mixing weights come from `generator` (CPU) for reproducibility."""
    # one mixing weight per sample, broadcast over the rest of its shape (any modality)
    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    alpha = torch.rand(shape, generator=generator).to(real.device, real.dtype)
    x_hat = alpha * real.detach() + (1 - alpha) * fake.detach()
    return (_grad_sq_norm(d, x_hat, d_inputs).add(1e-12).sqrt() - 1).pow(2).mean()

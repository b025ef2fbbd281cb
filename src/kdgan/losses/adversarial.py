"""Adversarial losses on raw discriminator logits, selectable by name.

Each loss gives the discriminator's two halves (on real, on fake) and the generator's
term. Notation: r = D(x_real), f = D(G(z)), sigma = sigmoid.

| name          | discriminator                              | generator            |
|---------------|--------------------------------------------|----------------------|
| bce           | BCE(sigma(r), 1) + BCE(sigma(f), 0)        | BCE(sigma(f), 1)     |
| nonsaturating | softplus(-r) + softplus(f)                 | softplus(-f)         |
| hinge         | relu(1 - r) + relu(1 + f)                  | -f                   |
| lsgan         | (r - 1)^2 / 2 + f^2 / 2                    | (f - 1)^2 / 2        |
| wgan-gp       | f - r  (+ gradient penalty, see penalties) | -f                   |

A discriminator may return one tensor of logits, or several (HiFi-GAN's multi-period and
multi-scale discriminators) as a `DiscriminatorOutput`: each loss is then the sum over
sub-discriminators, as HiFi-GAN sums them; one tensor gives exactly the single-D value.

`bce` is the seed's recipe literally: `nn.BCELoss` on sigmoid outputs. It equals
`nonsaturating` mathematically, but BCELoss clamps log() at -100, so once sigma(f) rounds to
0 or 1 its gradient vanishes; `nonsaturating` works on logits and stays exact.
Every value is a mean over the batch.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

Pair = tuple[torch.Tensor, torch.Tensor]


class DiscriminatorOutput(NamedTuple):
    """What a discriminator with several heads returns: their logits and the feature maps
    that feature matching compares (any shapes, batch first)."""

    logits: list[torch.Tensor]
    features: list[torch.Tensor] = []


def logits_of(output) -> list[torch.Tensor]:
    """A discriminator's output as a list of logit tensors (one for a plain tensor)."""
    if torch.is_tensor(output):
        return [output]
    if isinstance(output, DiscriminatorOutput):
        return list(output.logits)
    if isinstance(output, (list, tuple)) and all(torch.is_tensor(t) for t in output):
        return list(output)
    raise TypeError(f"a discriminator must return a tensor of logits or a DiscriminatorOutput, "
                    f"got {type(output).__name__}")


def features_of(output) -> list[torch.Tensor]:
    """The feature maps a discriminator returned beside its logits (none for a plain tensor)."""
    return list(output.features) if isinstance(output, DiscriminatorOutput) else []


def mean_logit(output) -> torch.Tensor:
    """The mean logit over every head, for the training log."""
    return torch.stack([t.float().mean() for t in logits_of(output)]).mean()


def _bce_d(r: torch.Tensor, f: torch.Tensor) -> Pair:
    sr, sf = torch.sigmoid(r), torch.sigmoid(f)
    return F.binary_cross_entropy(sr, torch.ones_like(sr)), F.binary_cross_entropy(sf, torch.zeros_like(sf))


def _bce_g(f: torch.Tensor) -> torch.Tensor:
    sf = torch.sigmoid(f)
    return F.binary_cross_entropy(sf, torch.ones_like(sf))


D_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], Pair]] = {
    "bce": _bce_d,
    "nonsaturating": lambda r, f: (F.softplus(-r).mean(), F.softplus(f).mean()),
    "hinge": lambda r, f: (F.relu(1 - r).mean(), F.relu(1 + f).mean()),
    "lsgan": lambda r, f: (0.5 * (r - 1).pow(2).mean(), 0.5 * f.pow(2).mean()),
    "wgan-gp": lambda r, f: (-r.mean(), f.mean()),
}

G_LOSSES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "bce": _bce_g,
    "nonsaturating": lambda f: F.softplus(-f).mean(),
    "hinge": lambda f: -f.mean(),
    "lsgan": lambda f: 0.5 * (f - 1).pow(2).mean(),
    "wgan-gp": lambda f: -f.mean(),
}

ADVERSARIAL_LOSSES = tuple(D_LOSSES)


def discriminator_loss(name: str, real_output, fake_output) -> Pair:
    """(loss on real, loss on fake) for the discriminator, in fp32 under any autocast,
    summed over its heads."""
    reals, fakes = logits_of(real_output), logits_of(fake_output)
    with torch.autocast(reals[0].device.type, enabled=False):
        halves = [D_LOSSES[name](r.float(), f.float()) for r, f in zip(reals, fakes)]
    return sum(h[0] for h in halves), sum(h[1] for h in halves)


def generator_loss(name: str, fake_output) -> torch.Tensor:
    """The generator's adversarial loss, summed over the discriminator's heads."""
    fakes = logits_of(fake_output)
    with torch.autocast(fakes[0].device.type, enabled=False):  # BCELoss is not autocast-safe
        return sum(G_LOSSES[name](f.float()) for f in fakes)

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

`bce` is the seed's recipe literally: `nn.BCELoss` on sigmoid outputs. It equals
`nonsaturating` mathematically, but BCELoss clamps log() at -100, so once sigma(f) rounds to
0 or 1 its gradient vanishes; `nonsaturating` works on logits and stays exact.
Every value is a mean over the batch.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Pair = tuple[torch.Tensor, torch.Tensor]


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


def discriminator_loss(name: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> Pair:
    """(loss on real, loss on fake) for the discriminator, in fp32 under any autocast."""
    with torch.autocast(real_logits.device.type, enabled=False):
        return D_LOSSES[name](real_logits.float(), fake_logits.float())


def generator_loss(name: str, fake_logits: torch.Tensor) -> torch.Tensor:
    with torch.autocast(fake_logits.device.type, enabled=False):  # BCELoss is not autocast-safe
        return G_LOSSES[name](fake_logits.float())

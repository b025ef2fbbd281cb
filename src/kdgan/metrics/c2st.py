"""Classifier two-sample test (C2ST, Lopez-Paz & Oquab 2017): a metric that needs no feature
network, so it means the same on a user's own data as on a benchmark, in any modality.

A small classifier learns to tell real from generated samples on one half of each set; its
accuracy on the other half is the metric, with a 95% confidence interval (Wilson). 0.5 means
it cannot tell them apart (within the interval); 1.0 means every sample gives itself away.
Samples of any shape work: 4-D batches (images) get a small CNN, anything else an MLP on the
flattened values; a modality may pass its own `make_classifier`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

STEPS = 400
BATCH = 128


def default_classifier(sample_shape: tuple[int, ...]) -> nn.Module:
    """A small CNN for (C, H, W) samples, an MLP for anything else."""
    if len(sample_shape) == 3:
        c = sample_shape[0]
        return nn.Sequential(
            nn.Conv2d(c, 32, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(32, 64, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 64, 3, 2, 1), nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 1))
    size = math.prod(sample_shape)
    return nn.Sequential(nn.Flatten(), nn.Linear(size, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1))


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% confidence interval of a proportion (Wilson score interval)."""
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def c2st(real: torch.Tensor, fake: torch.Tensor, seed: int = 0, steps: int = STEPS,
         make_classifier: Callable[[tuple[int, ...]], nn.Module] = default_classifier) -> dict:
    """Held-out accuracy of a classifier trained to tell `real` from `fake` (tensors of the
    same sample shape, values roughly in [-1, 1]). Equal counts of each are used (the smaller
    set's size), half of each for training and half for the test."""
    gen = torch.Generator().manual_seed(seed)
    n = min(len(real), len(fake))
    if n < 4:
        raise ValueError(f"c2st needs at least 4 samples of each set, got {n}")
    real = real[torch.randperm(len(real), generator=gen)[:n]].float()
    fake = fake[torch.randperm(len(fake), generator=gen)[:n]].float()
    half = n // 2
    train_x = torch.cat([real[:half], fake[:half]])
    train_y = torch.cat([torch.ones(half), torch.zeros(half)])
    test_x = torch.cat([real[half:], fake[half:]])
    test_y = torch.cat([torch.ones(n - half), torch.zeros(n - half)])
    with torch.random.fork_rng():  # the classifier's initial weights come from the seed, not the caller's RNG
        torch.manual_seed(seed)
        model = make_classifier(tuple(real.shape[1:]))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(train_x), (min(BATCH, len(train_x)),), generator=gen)
        loss = F.binary_cross_entropy_with_logits(model(train_x[idx]).squeeze(1), train_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(c).squeeze(1) for c in test_x.split(512)])
    correct = int(((logits > 0).float() == test_y).sum())
    low, high = wilson_interval(correct, len(test_y))
    return {"accuracy": correct / len(test_y), "ci95": [low, high], "test_samples": len(test_y), "steps": steps}

"""Building blocks shared by the network families."""

from __future__ import annotations

import torch
from torch import nn


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift are looked up per class (Miyato & Koyama, 2018).

    With `num_classes == 0` it is a plain affine BatchNorm, so one block class serves the
    unconditional and the class-conditional generator.
    """

    def __init__(self, channels: int, num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.bn = nn.BatchNorm2d(channels, affine=num_classes == 0)
        if num_classes:
            self.gamma = nn.Embedding(num_classes, channels)
            self.beta = nn.Embedding(num_classes, channels)
            nn.init.ones_(self.gamma.weight)
            nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.bn(x)
        if not self.num_classes:
            return h
        if y is None:
            raise ValueError("a class-conditional generator needs labels y")
        return h * self.gamma(y)[:, :, None, None] + self.beta(y)[:, :, None, None]


def spectral(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap a conv/linear layer in spectral normalisation when `enabled`."""
    return nn.utils.parametrizations.spectral_norm(module) if enabled else module


class ProjectionHead(nn.Module):
    """Discriminator output: linear score plus, when conditional, the projection <embed(y), phi(x)>
    (Miyato & Koyama, 2018). Input: pooled features (B, C); output: logits (B,)."""

    def __init__(self, channels: int, num_classes: int, sn: bool):
        super().__init__()
        self.linear = spectral(nn.Linear(channels, 1), sn)
        self.embed = spectral(nn.Embedding(num_classes, channels), sn) if num_classes else None

    def forward(self, features: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        out = self.linear(features).squeeze(1)
        if self.embed is not None:
            if y is None:
                raise ValueError("a class-conditional discriminator needs labels y")
            out = out + (self.embed(y) * features).sum(1)
        return out


def num_upsamplings(resolution: int) -> int:
    """Stages from the 4x4 seed to `resolution` (a power of two, 8..256)."""
    n = resolution.bit_length() - 1 - 2
    if resolution != 1 << (n + 2) or n < 1:
        raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
    return n


def stage_channels(width: int, n_stages: int) -> list[int]:
    """Channels at 4x4, 8x8, ...: width * 2^k shrinking to `width`, capped at 8 * width.

    Every layer's channel count is proportional to `width`, so MACs fall with its square.
    """
    return [width * min(8, 2 ** (n_stages - i)) for i in range(n_stages + 1)]

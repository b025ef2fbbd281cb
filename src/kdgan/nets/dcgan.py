"""DCGAN-style generator and discriminator (Radford et al., 2016), any power-of-two size."""

from __future__ import annotations

import torch
from torch import nn

from kdgan.nets.layers import (
    ConditionalBatchNorm2d,
    ProjectionHead,
    num_upsamplings,
    spectral,
    stage_channels,
)


class UpBlock(nn.Module):
    """ConvTranspose x2 -> (conditional) BatchNorm -> ReLU."""

    def __init__(self, cin: int, cout: int, num_classes: int, first: bool = False):
        super().__init__()
        # The first block maps a 1x1 latent to 4x4; the others double the resolution.
        self.conv = nn.ConvTranspose2d(cin, cout, 4, 1 if first else 2, 0 if first else 1, bias=False)
        self.norm = ConditionalBatchNorm2d(cout, num_classes)

    def forward(self, h: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(h), y))


class DCGANGenerator(nn.Module):
    """z (B, latent_dim) [, y (B,)] -> image (B, channels, resolution, resolution) in [-1, 1].

    Feature taps: `stem` (4x4) and `stages.i` (8x8, 16x16, ...), one per resolution.
    """

    # Subclasses swap the doubling blocks and the last layer (see nets/separable.py).
    up_block = UpBlock

    def __init__(self, latent_dim: int, width: int, resolution: int, channels: int, num_classes: int = 0):
        super().__init__()
        n = num_upsamplings(resolution)
        ch = stage_channels(width, n - 1)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.stem = UpBlock(latent_dim, ch[0], num_classes, first=True)
        self.stages = nn.ModuleList(self.up_block(a, b, num_classes) for a, b in zip(ch[:-1], ch[1:]))
        self.to_image = self.make_to_image(ch[-1], channels)
        self.init_weights()

    def make_to_image(self, cin: int, channels: int) -> nn.Module:
        """The last doubling, to image channels."""
        return nn.ConvTranspose2d(cin, channels, 4, 2, 1)

    def init_weights(self) -> None:
        self.apply(_dcgan_init)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.stem(z[:, :, None, None], y)
        for stage in self.stages:
            h = stage(h, y)
        return torch.tanh(self.to_image(h))


class DCGANDiscriminator(nn.Module):
    """image (B, C, R, R) [, y (B,)] -> logits (B,). Strided convs down to 4x4, then a
    linear score over the flattened 4x4 map (DCGAN's final 4x4 conv) plus a projection term
    on the pooled features when class-conditional."""

    def __init__(
        self,
        width: int,
        resolution: int,
        channels: int,
        num_classes: int = 0,
        spectral_norm: bool = False,
        batch_norm: bool = True,
    ):
        super().__init__()
        n = num_upsamplings(resolution)
        ch = stage_channels(width, n - 1)[::-1]  # width, 2*width, ... towards 4x4
        self.from_image = nn.Sequential(
            spectral(nn.Conv2d(channels, ch[0], 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2)
        )
        self.stages = nn.ModuleList(
            nn.Sequential(
                spectral(nn.Conv2d(a, b, 4, 2, 1, bias=not batch_norm), spectral_norm),
                nn.BatchNorm2d(b) if batch_norm else nn.Identity(),
                nn.LeakyReLU(0.2),
            )
            for a, b in zip(ch[:-1], ch[1:])
        )
        self.score = spectral(nn.Conv2d(ch[-1], 1, 4, 1, 0), spectral_norm)
        self.projection = ProjectionHead(ch[-1], num_classes, spectral_norm) if num_classes else None
        self.apply(_dcgan_init)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.from_image(x)
        for stage in self.stages:
            h = stage(h)  # ends at (B, C, 4, 4)
        out = self.score(h).flatten(1).squeeze(1)
        if self.projection is not None:
            out = out + self.projection(h.sum((2, 3)), y)
        return out


def _dcgan_init(m: nn.Module) -> None:
    # DCGAN's N(0, 0.02) init; spectral-normed layers keep their own (their weight is reparametrised).
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and not hasattr(m, "parametrizations"):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d) and m.affine:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)

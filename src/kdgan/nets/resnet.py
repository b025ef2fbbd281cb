"""ResNet generator and discriminator in the style of SNGAN (Miyato et al., 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kdgan.nets.layers import (
    ConditionalBatchNorm2d,
    ProjectionHead,
    num_upsamplings,
    spectral,
    stage_channels,
)


class GBlock(nn.Module):
    """Pre-activation residual block that doubles the resolution: BN-ReLU-up-conv-BN-ReLU-conv."""

    def __init__(self, cin: int, cout: int, num_classes: int, sn: bool):
        super().__init__()
        self.norm1 = ConditionalBatchNorm2d(cin, num_classes)
        self.conv1 = spectral(nn.Conv2d(cin, cout, 3, 1, 1), sn)
        self.norm2 = ConditionalBatchNorm2d(cout, num_classes)
        self.conv2 = spectral(nn.Conv2d(cout, cout, 3, 1, 1), sn)
        self.skip = spectral(nn.Conv2d(cin, cout, 1), sn)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = F.interpolate(torch.relu(self.norm1(x, y)), scale_factor=2.0)
        h = self.conv2(torch.relu(self.norm2(self.conv1(h), y)))
        return h + self.skip(F.interpolate(x, scale_factor=2.0))


class ResNetGenerator(nn.Module):
    """z (B, latent_dim) [, y (B,)] -> image (B, channels, R, R) in [-1, 1].

    Feature taps: `stages.i`, the output of each resolution (8x8, 16x16, ...).
    """

    def __init__(
        self,
        latent_dim: int,
        width: int,
        resolution: int,
        channels: int,
        num_classes: int = 0,
        spectral_norm: bool = False,
    ):
        super().__init__()
        n = num_upsamplings(resolution)
        ch = stage_channels(width, n - 1) + [width]
        self.latent_dim, self.num_classes, self._c0 = latent_dim, num_classes, ch[0]
        self.stem = spectral(nn.Linear(latent_dim, 4 * 4 * ch[0]), spectral_norm)
        self.stages = nn.ModuleList(
            GBlock(a, b, num_classes, spectral_norm) for a, b in zip(ch[:-1], ch[1:])
        )
        self.out_norm = nn.BatchNorm2d(ch[-1])
        self.to_image = spectral(nn.Conv2d(ch[-1], channels, 3, 1, 1), spectral_norm)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.stem(z).view(z.shape[0], self._c0, 4, 4)
        for stage in self.stages:
            h = stage(h, y)
        return torch.tanh(self.to_image(torch.relu(self.out_norm(h))))


class DBlock(nn.Module):
    """Residual block, optionally halving the resolution. The first block of the network
    skips the leading ReLU so that the raw image is not rectified (SNGAN's OptimizedBlock)."""

    def __init__(self, cin: int, cout: int, down: bool, first: bool, sn: bool):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = spectral(nn.Conv2d(cin, cout, 3, 1, 1), sn)
        self.conv2 = spectral(nn.Conv2d(cout, cout, 3, 1, 1), sn)
        self.skip = spectral(nn.Conv2d(cin, cout, 1), sn) if (cin != cout or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else torch.relu(x)
        h = self.conv2(torch.relu(self.conv1(h)))
        s = x
        if self.down:
            h = F.avg_pool2d(h, 2)
        if self.skip is not None:
            # Pool after the 1x1 conv on the first block (as SNGAN), before it elsewhere: same
            # function, fewer MACs.
            s = F.avg_pool2d(self.skip(s), 2) if self.first else self.skip(F.avg_pool2d(s, 2) if self.down else s)
        return h + s


class ResNetDiscriminator(nn.Module):
    """image (B, C, R, R) [, y (B,)] -> logits (B,): residual blocks down to 4x4, one more
    block at 4x4, ReLU, global sum pooling, linear score (+ projection when conditional)."""

    def __init__(
        self,
        width: int,
        resolution: int,
        channels: int,
        num_classes: int = 0,
        spectral_norm: bool = True,
        batch_norm: bool = False,
    ):
        super().__init__()
        if batch_norm:
            raise ValueError("the ResNet discriminator has no BatchNorm; set batch_norm: false")
        n = num_upsamplings(resolution)
        ch = stage_channels(width, n - 1)[::-1]  # width ... at R/2 ... 4x4
        blocks = [DBlock(channels, ch[0], down=True, first=True, sn=spectral_norm)]
        blocks += [DBlock(a, b, down=True, first=False, sn=spectral_norm) for a, b in zip(ch[:-1], ch[1:])]
        blocks.append(DBlock(ch[-1], ch[-1], down=False, first=False, sn=spectral_norm))
        self.stages = nn.ModuleList(blocks)
        self.head = ProjectionHead(ch[-1], num_classes, spectral_norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for stage in self.stages:
            h = stage(h)
        return self.head(torch.relu(h).sum((2, 3)), y)

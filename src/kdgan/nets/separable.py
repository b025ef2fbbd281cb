"""Mobile generators: the DCGAN and ResNet generators with every spatial convolution made
depthwise-separable (a per-channel 3x3 conv, then a 1x1 conv across channels), as in GAN
Compression's MobileNet-style generators. At equal width they cost about 1/8 of the MACs,
so at an equal MACs budget a separable student can be about 2.8x wider than a plain one.

Module paths match the plain families (`stem`, `stages.i`, `to_image`) so that feature taps
and their defaults carry over.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kdgan.nets.layers import ConditionalBatchNorm2d, num_upsamplings, stage_channels
from kdgan.nets.dcgan import DCGANGenerator


class SeparableConv2d(nn.Module):
    """depthwise k x k (groups = in channels) -> pointwise 1x1."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, bias: bool = True):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, kernel, 1, kernel // 2, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class SeparableUpBlock(nn.Module):
    """nearest x2 -> separable 3x3 -> (conditional) BatchNorm -> ReLU: the separable
    counterpart of DCGAN's ConvTranspose(4, stride 2) block."""

    def __init__(self, cin: int, cout: int, num_classes: int):
        super().__init__()
        self.conv = SeparableConv2d(cin, cout, bias=False)
        self.norm = ConditionalBatchNorm2d(cout, num_classes)

    def forward(self, h: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(F.interpolate(h, scale_factor=2.0)), y))


class SeparableDCGANGenerator(DCGANGenerator):
    """z (B, latent_dim) [, y] -> (B, channels, R, R). The 1x1 -> 4x4 stem stays a dense
    transposed conv (it is a linear layer on z); everything spatial is separable."""

    up_block = SeparableUpBlock

    def make_to_image(self, cin: int, channels: int) -> nn.Module:
        return nn.Sequential(nn.Upsample(scale_factor=2.0), SeparableConv2d(cin, channels))

    def init_weights(self) -> None:
        pass  # PyTorch's default initialisation: DCGAN's N(0, 0.02) suits dense convolutions


class SeparableGBlock(nn.Module):
    """The ResNet generator block with separable 3x3 convs."""

    def __init__(self, cin: int, cout: int, num_classes: int):
        super().__init__()
        self.norm1 = ConditionalBatchNorm2d(cin, num_classes)
        self.conv1 = SeparableConv2d(cin, cout)
        self.norm2 = ConditionalBatchNorm2d(cout, num_classes)
        self.conv2 = SeparableConv2d(cout, cout)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = F.interpolate(torch.relu(self.norm1(x, y)), scale_factor=2.0)
        h = self.conv2(torch.relu(self.norm2(self.conv1(h), y)))
        return h + self.skip(F.interpolate(x, scale_factor=2.0))


class SeparableResNetGenerator(nn.Module):
    def __init__(self, latent_dim: int, width: int, resolution: int, channels: int, num_classes: int = 0):
        super().__init__()
        n = num_upsamplings(resolution)
        ch = stage_channels(width, n - 1) + [width]
        self.latent_dim, self.num_classes, self._c0 = latent_dim, num_classes, ch[0]
        self.stem = nn.Linear(latent_dim, 4 * 4 * ch[0])
        self.stages = nn.ModuleList(SeparableGBlock(a, b, num_classes) for a, b in zip(ch[:-1], ch[1:]))
        self.out_norm = nn.BatchNorm2d(ch[-1])
        self.to_image = SeparableConv2d(ch[-1], channels)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.stem(z).view(z.shape[0], self._c0, 4, 4)
        for stage in self.stages:
            h = stage(h, y)
        return torch.tanh(self.to_image(torch.relu(self.out_norm(h))))

"""A DCGAN generator laid out for CPU latency: the same doubling blocks, fewer of them, with
the last doublings done by one sub-pixel convolution (ESPCN's conv + PixelShuffle).

Why: a width-scaled DCGAN student cuts MACs with the square of the width but its time far
less, because its narrow transposed convolutions at 16x16 and 32x32 run at a quarter of the
teacher's arithmetic rate and the 1-channel output deconvolution costs as much as a wide one
(measured in benchmarks/README.md, "Speed"). Here the work sits where it is cheap per MAC:

- `stem`: the 1x1 -> 4x4 block as one matrix product (a 4x4 transposed conv on a 1x1 input
  is a linear layer; this is the same function, computed as a GEMM);
- `stages`: DCGAN's ConvTranspose(4, stride 2) blocks up to resolution / head_scale;
- `to_image`: a 3x3 conv to channels * head_scale^2, then PixelShuffle(head_scale); with
  `head_blocks` > 0, that many 3x3 conv + BatchNorm + ReLU layers first and a 1x1 conv last.
- `head_residual` (`head_residual` > 0 channels): a nonlinear branch (3x3 conv, BatchNorm,
  ReLU, 1x1 conv) whose output is added to the linear head's before the pixel shuffle. Its
  last conv starts at zero, so training starts from the linear head (which pruning init fits
  to the teacher by least squares) and the branch adds what a linear map of one 3x3 window
  cannot: at the same MACs it gave better FID than a wider purely linear head.

Feature taps `stem` (4x4) and `stages.i` pair with a DCGAN teacher's taps of the same name
and resolution.
"""

from __future__ import annotations

import torch
from torch import nn

from kdgan.nets.dcgan import UpBlock, _dcgan_init
from kdgan.nets.layers import ConditionalBatchNorm2d, num_upsamplings, stage_channels


class LinearStem(nn.Module):
    """z (B, latent) -> (B, C, 4, 4): Linear -> (conditional) BatchNorm -> ReLU."""

    def __init__(self, latent_dim: int, cout: int, num_classes: int):
        super().__init__()
        self.cout = cout
        self.linear = nn.Linear(latent_dim, cout * 16, bias=False)
        self.norm = ConditionalBatchNorm2d(cout, num_classes)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear(z).view(z.shape[0], self.cout, 4, 4)
        return torch.relu(self.norm(h, y))


class SubpixelGenerator(nn.Module):
    """z (B, latent_dim) [, y (B,)] -> (B, channels, R, R) in [-1, 1]."""

    def __init__(self, latent_dim: int, width: int, resolution: int, channels: int, num_classes: int = 0,
                 head_scale: int = 4, head_blocks: int = 0, head_residual: int = 0):
        super().__init__()
        n = num_upsamplings(resolution)
        head_doublings = head_scale.bit_length() - 1
        if head_scale != 1 << head_doublings or not 1 <= head_doublings <= n:
            raise ValueError(f"head_scale must be a power of two from 2 to resolution / 4, got {head_scale}")
        # The DCGAN channel schedule of the same width, cut after the last transposed conv.
        ch = stage_channels(width, n - 1)[: n - head_doublings + 1]
        self.latent_dim, self.num_classes, self.head_scale = latent_dim, num_classes, head_scale
        self.stem = LinearStem(latent_dim, ch[0], num_classes)
        self.stages = nn.ModuleList(UpBlock(a, b, num_classes) for a, b in zip(ch[:-1], ch[1:]))
        c = ch[-1]
        hidden = [m for _ in range(head_blocks) for m in (nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())]
        last = nn.Conv2d(c, channels * head_scale**2, 1 if head_blocks else 3, 1, 0 if head_blocks else 1)
        self.to_image = nn.Sequential(*hidden, last, nn.PixelShuffle(head_scale))
        self.apply(_dcgan_init)
        nn.init.normal_(self.stem.linear.weight, 0.0, 0.02)
        self.head_residual = None
        if head_residual:
            if head_blocks:
                raise ValueError("head_residual and head_blocks: choose one")
            # PyTorch's default init here (its BatchNorm sets the scale anyway); the last conv
            # at zero makes the branch silent at the start.
            self.head_residual = nn.Sequential(nn.Conv2d(c, head_residual, 3, 1, 1, bias=False),
                                               nn.BatchNorm2d(head_residual), nn.ReLU(),
                                               nn.Conv2d(head_residual, channels * head_scale**2, 1))
            nn.init.zeros_(self.head_residual[-1].weight)
            nn.init.zeros_(self.head_residual[-1].bias)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.stem(z, y)
        for stage in self.stages:
            h = stage(h, y)
        if self.head_residual is None:
            return torch.tanh(self.to_image(h))
        conv, shuffle = self.to_image  # head_residual comes without hidden head layers
        return torch.tanh(shuffle(conv(h) + self.head_residual(h)))

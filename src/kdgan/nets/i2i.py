"""Image-to-image networks: the generators of pix2pix / CycleGAN (ResNet, U-Net), a
super-resolution generator (EDSR/ESRGAN-lite) and the PatchGAN discriminator.

Every channel count is a multiple of `width`, so MACs fall with its square, as in the
latent generators. Generators map an image batch (B, in_channels, H, W) to (B, channels,
H', W') in [-1, 1]; H and W need only be multiples of `size_multiple` (full-image and tiled
inference rely on that).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kdgan.nets.layers import spectral


def conv_norm_relu(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False, padding_mode="reflect"),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """x + conv-BN-ReLU-conv-BN(x): the CycleGAN / pix2pix ResNet block."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_relu(channels, channels, 3),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False, padding_mode="reflect"), nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetI2IGenerator(nn.Module):
    """Johnson et al. / CycleGAN: c7s1-w, two stride-2 downsamplings (2w, 4w), `blocks`
    residual blocks at 4w, two x2 upsamplings back to w, c7s1-channels + tanh.

    Feature taps: `down.0` (H/2), `down.1` (H/4), `blocks.K` (H/4), `up.0` (H/2), `up.1` (H).
    """

    size_multiple = 4

    def __init__(self, in_channels: int, channels: int, width: int, blocks: int = 6):
        super().__init__()
        w = width
        self.stem = conv_norm_relu(in_channels, w, 7)
        self.down = nn.ModuleList([conv_norm_relu(w, 2 * w, 3, 2), conv_norm_relu(2 * w, 4 * w, 3, 2)])
        self.blocks = nn.Sequential(*(ResidualBlock(4 * w) for _ in range(blocks)))
        # Upsample + conv instead of ConvTranspose: no checkerboard artefacts, and faster on CPUs.
        self.up = nn.ModuleList([self._up(4 * w, 2 * w), self._up(2 * w, w)])
        self.to_image = nn.Conv2d(w, channels, 7, 1, 3, padding_mode="reflect")
        self.feature_taps = ("down.1", "blocks", "up.0", "up.1")  # default distillation taps

    @staticmethod
    def _up(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv_norm_relu(cin, cout, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for down in self.down:
            h = down(h)
        h = self.blocks(h)
        for up in self.up:
            h = up(h)
        return torch.tanh(self.to_image(h))


class UNetGenerator(nn.Module):
    """pix2pix's U-Net: `depth` stride-2 4x4 convs (w, 2w, 4w, 8w, 8w, ...) down, transposed
    convs up, each up level concatenated with the down level of the same size.

    Feature taps: `downs.i` and `ups.i` (each resolution level).
    """

    def __init__(self, in_channels: int, channels: int, width: int, depth: int = 4):
        super().__init__()
        if depth < 2:
            raise ValueError(f"U-Net depth must be >= 2, got {depth}")
        chans = [width * min(8, 2**i) for i in range(depth)]
        self.size_multiple = 2**depth
        self.downs = nn.ModuleList()
        cin = in_channels
        for i, c in enumerate(chans):
            layers = [nn.Conv2d(cin, c, 4, 2, 1, bias=i == 0)]
            if 0 < i < depth - 1:  # pix2pix: no norm on the first layer or the bottleneck
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            self.downs.append(nn.Sequential(*layers))
            cin = c
        self.ups = nn.ModuleList()
        for i in reversed(range(1, depth)):
            c_in = chans[i] if i == depth - 1 else 2 * chans[i]  # the bottleneck has no skip yet
            self.ups.append(nn.Sequential(nn.ConvTranspose2d(c_in, chans[i - 1], 4, 2, 1, bias=False),
                                          nn.BatchNorm2d(chans[i - 1]), nn.ReLU(inplace=True)))
        self.to_image = nn.ConvTranspose2d(2 * chans[0], channels, 4, 2, 1)
        self.feature_taps = (*(f"downs.{i}" for i in range(depth)), *(f"ups.{i}" for i in range(depth - 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for down in self.downs:
            h = down(h)
            skips.append(h)
        skips.pop()  # the bottleneck is the input of the first up level, not a skip
        for up in self.ups:
            h = torch.cat([up(h), skips.pop()], 1)
        return torch.tanh(self.to_image(h))


class SRBlock(nn.Module):
    """EDSR's residual block: conv-ReLU-conv, no BatchNorm (it hurts SR), residual scale 1."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def bicubic_subpixel_kernel(scale: int, size: int = 5) -> torch.Tensor:
    """(scale^2, 1, size, size) weights with which a conv (replicate padding) followed by
    PixelShuffle(scale) is exactly F.interpolate(mode="bicubic", align_corners=False): each
    output phase (py, px) of an upsampled pixel is a fixed mix of its size x size
    low-resolution neighbours. Read off by upsampling unit impulses."""
    r = size // 2
    weights = torch.zeros(scale * scale, 1, size, size)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            impulse = torch.zeros(1, 1, 2 * size + 1, 2 * size + 1)
            impulse[0, 0, size + dy, size + dx] = 1
            up = F.interpolate(impulse, scale_factor=scale, mode="bicubic", align_corners=False)[0, 0]
            phases = up[size * scale : (size + 1) * scale, size * scale : (size + 1) * scale]
            weights[:, 0, dy + r, dx + r] = phases.reshape(-1)
    return weights


class SRGenerator(nn.Module):
    """Low-resolution image (B, C, h, w) -> (B, C, scale*h, scale*w), ESPCN/EDSR-style: every
    convolution runs at the low resolution (head, `blocks` residual blocks with a long skip),
    and one sub-pixel convolution + PixelShuffle makes the output. The network predicts the
    residual over bicubic upsampling, itself done as a sub-pixel convolution initialised to
    exactly bicubic (`interpolate`, learnable), so the whole network is convolutions and one
    shuffle: fast on CPUs and in ONNX Runtime, where a separate resize op and per-stage shuffles
    were a fixed cost that a small student could not shrink. The residual conv starts at zero,
    so an untrained network is exactly bicubic interpolation.

    Feature taps: `head`, `blocks` (the residual trunk's output).
    """

    size_multiple = 1

    def __init__(self, in_channels: int, channels: int, width: int, blocks: int = 8, scale: int = 4):
        super().__init__()
        if scale not in (2, 4, 8):
            raise ValueError(f"SR scale must be 2, 4 or 8, got {scale}")
        self.scale, self.channels = scale, channels
        self.head = nn.Conv2d(in_channels, width, 3, 1, 1)
        self.blocks = nn.Sequential(*(SRBlock(width) for _ in range(blocks)))
        self.body_end = nn.Conv2d(width, width, 3, 1, 1)
        self.to_subpixels = nn.Conv2d(width, channels * scale * scale, 3, 1, 1)
        nn.init.zeros_(self.to_subpixels.weight)
        nn.init.zeros_(self.to_subpixels.bias)
        self.interpolate = nn.Conv2d(channels, channels * scale * scale, 5, 1, 2, groups=channels, bias=False,
                                     padding_mode="replicate")
        with torch.no_grad():
            self.interpolate.weight.copy_(bicubic_subpixel_kernel(scale).repeat(channels, 1, 1, 1))
        self.shuffle = nn.PixelShuffle(scale)
        self.feature_taps = ("head", "blocks")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.body_end(self.blocks(h))
        return self.shuffle(self.to_subpixels(h) + self.interpolate(x[:, : self.channels])).clamp(-1, 1)


class PatchDiscriminator(nn.Module):
    """pix2pix's PatchGAN: `layers` stride-2 4x4 convs (w, 2w, 4w, ... capped at 8w), one
    stride-1 conv, a 1-channel map of logits (B, 1, h, w), one per overlapping patch.

    Conditional (in_channels > 0): the generator's input is concatenated with the image
    judged, resized to its size first (nearest; e.g. the low-resolution input of SR), so D
    judges the pair, as in pix2pix. Feature taps: `stages.i`.
    """

    def __init__(self, channels: int, width: int, in_channels: int = 0, layers: int = 3,
                 sn: bool = False, batch_norm: bool = True):
        super().__init__()
        chans = [width * min(8, 2**i) for i in range(layers + 1)]
        stages, cin = [], channels + in_channels
        for i, c in enumerate(chans):
            stride = 2 if i < layers else 1
            block = [spectral(nn.Conv2d(cin, c, 4, stride, 1, bias=not batch_norm or i == 0), sn)]
            if batch_norm and i > 0:
                block.append(nn.BatchNorm2d(c))
            block.append(nn.LeakyReLU(0.2, inplace=True))
            stages.append(nn.Sequential(*block))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.to_logits = spectral(nn.Conv2d(cin, 1, 4, 1, 1), sn)
        self.conditional = in_channels > 0

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditional:
            if condition is None:
                raise ValueError("a conditional PatchGAN needs the generator's input")
            if condition.shape[-2:] != x.shape[-2:]:
                condition = F.interpolate(condition, size=x.shape[-2:], mode="nearest")
            x = torch.cat([x, condition.to(x.dtype)], 1)
        for stage in self.stages:
            x = stage(x)
        return self.to_logits(x)

"""GAN vocoder networks: HiFi-GAN's generator (mel -> waveform), its multi-period
discriminator and a multi-resolution spectrogram discriminator (UnivNet), all scaled by one
width so that they fit a CPU.

Shapes: mel (B, n_mels, F) -> audio (B, 1, F * hop); a discriminator takes audio (B, 1, T)
and returns DiscriminatorOutput(one logit map per sub-discriminator, every layer's features).
Convolutions are plain (HiFi-GAN trains with weight norm; without it the networks export to
ONNX as they are and prune like any conv net).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from kdgan.losses import DiscriminatorOutput

LRELU = 0.1  # HiFi-GAN's leaky-ReLU slope


class HiFiGANSpec(BaseModel):
    """HiFi-GAN V1: width 512, V2: width 128 (both resblock 1); V3: width 256, upsample
    [8, 8, 4] with kernels [16, 16, 8], resblock 2 with dilations [[1, 2], [2, 6], [3, 12]]."""

    model_config = ConfigDict(extra="forbid")
    arch: Literal["hifigan"] = "hifigan"
    width: int = Field(512, ge=2)  # channels after the first conv; halved at each upsampling
    n_mels: int = 80
    upsample_rates: list[int] = [8, 8, 2, 2]  # their product is the mel hop
    upsample_kernels: list[int] = [16, 16, 4, 4]
    resblock: Literal[1, 2] = 1
    resblock_kernels: list[int] = [3, 7, 11]
    resblock_dilations: list[list[int]] = [[1, 3, 5], [1, 3, 5], [1, 3, 5]]

    @model_validator(mode="after")
    def _consistent(self) -> "HiFiGANSpec":
        if len(self.upsample_rates) != len(self.upsample_kernels):
            raise ValueError("upsample_rates and upsample_kernels need one entry per upsampling")
        if len(self.resblock_kernels) != len(self.resblock_dilations):
            raise ValueError("resblock_kernels and resblock_dilations need one entry per residual block")
        if self.width >> len(self.upsample_rates) < 1:
            raise ValueError(f"width {self.width} cannot be halved {len(self.upsample_rates)} times")
        return self

    @property
    def hop(self) -> int:
        return math.prod(self.upsample_rates)


def _same(kernel: int, dilation: int = 1) -> int:
    return dilation * (kernel - 1) // 2


class ResBlock(nn.Module):
    """HiFi-GAN's residual block: per dilation, x + conv(lrelu(x)) (type 2), or
    x + conv_1(lrelu(conv_d(lrelu(x)))) (type 1)."""

    def __init__(self, channels: int, kernel: int, dilations: list[int], kind: int):
        super().__init__()
        self.dilated = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_same(kernel, d))
                                     for d in dilations)
        self.plain = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=_same(kernel))
                                   for _ in dilations) if kind == 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.dilated):
            h = conv(F.leaky_relu(x, LRELU))
            if self.plain is not None:
                h = self.plain[i](F.leaky_relu(h, LRELU))
            x = x + h
        return x


class UpStage(nn.Module):
    """One upsampling (transposed conv) and the multi-receptive-field fusion after it: the
    mean of residual blocks with different kernels."""

    def __init__(self, channels: int, rate: int, kernel: int, spec: HiFiGANSpec):
        super().__init__()
        out = channels // 2
        self.up = nn.ConvTranspose1d(channels, out, kernel, rate, padding=(kernel - rate) // 2)
        self.mrf = nn.ModuleList(ResBlock(out, k, d, spec.resblock)
                                 for k, d in zip(spec.resblock_kernels, spec.resblock_dilations))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(F.leaky_relu(x, LRELU))
        return sum(block(x) for block in self.mrf) / len(self.mrf)


class HiFiGANGenerator(nn.Module):
    """mel (B, n_mels, F) -> audio (B, 1, F * hop) in [-1, 1]. Feature taps: `stem`, `stages.i`."""

    def __init__(self, spec: HiFiGANSpec):
        super().__init__()
        self.spec = spec
        self.stem = nn.Conv1d(spec.n_mels, spec.width, 7, padding=3)
        channels = [spec.width >> i for i in range(len(spec.upsample_rates) + 1)]
        self.stages = nn.ModuleList(UpStage(c, r, k, spec)
                                    for c, r, k in zip(channels, spec.upsample_rates, spec.upsample_kernels))
        self.to_audio = nn.Conv1d(channels[-1], 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.stem(mel)
        for stage in self.stages:
            x = stage(x)
        return torch.tanh(self.to_audio(F.leaky_relu(x)))


class VocoderDiscriminatorSpec(BaseModel):
    """HiFi-GAN's multi-period discriminator (periods 2, 3, 5, 7, 11, channels 32 ... 1024 at
    width 32) beside a multi-resolution spectrogram discriminator (UnivNet: (n_fft, hop,
    window) per resolution, 32 channels at width 32). Both scale with `width`."""

    model_config = ConfigDict(extra="forbid")
    arch: Literal["mpd-mrd"] = "mpd-mrd"
    width: int = Field(32, ge=1)
    periods: list[int] = [2, 3, 5, 7, 11]
    resolutions: list[tuple[int, int, int]] = [(1024, 120, 600), (2048, 240, 1200), (512, 50, 240)]


def conv_stack(x: torch.Tensor, convs: nn.ModuleList, post: nn.Module) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A sub-discriminator's layers: (flattened logits, every layer's output as features)."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU)
        features.append(x)
    x = post(x)
    features.append(x)
    return x.flatten(1), features


class PeriodDiscriminator(nn.Module):
    """Audio folded into (B, 1, T / p, p) by its period p (the end reflect-padded to a
    multiple of p), then 2-D convs along time only: it sees every p-th sample together."""

    def __init__(self, period: int, width: int):
        super().__init__()
        self.period = period
        chans = [1, width, 4 * width, 16 * width, 32 * width, 32 * width]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, (5, 1), (3 if i < 4 else 1, 1), padding=(2, 0)) for i, (a, b) in enumerate(zip(chans, chans[1:])))
        self.post = nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0))

    def fold(self, audio: torch.Tensor) -> torch.Tensor:
        b, c, t = audio.shape
        if t % self.period:
            audio = F.pad(audio, (0, self.period - t % self.period), mode="reflect")
        return audio.view(b, c, -1, self.period)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return conv_stack(self.fold(audio), self.convs, self.post)


class SpectrogramDiscriminator(nn.Module):
    """The magnitude spectrogram at one (n_fft, hop, window), as a (B, 1, frames, bins) image."""

    def __init__(self, n_fft: int, hop: int, window: int, width: int):
        super().__init__()
        self.n_fft, self.hop, self.window_length = n_fft, hop, window
        self.register_buffer("window", torch.hann_window(window), persistent=False)
        self.convs = nn.ModuleList([nn.Conv2d(1, width, (3, 9), padding=(1, 4)),
                                    *[nn.Conv2d(width, width, (3, 9), (1, 2), padding=(1, 4)) for _ in range(3)],
                                    nn.Conv2d(width, width, (3, 3), padding=(1, 1))])
        self.post = nn.Conv2d(width, 1, (3, 3), padding=(1, 1))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(audio[:, 0].float(), self.n_fft, self.hop, self.window_length, self.window,
                          return_complex=True).abs()  # (B, bins, frames)
        return conv_stack(spec.transpose(1, 2)[:, None], self.convs, self.post)


class VocoderDiscriminator(nn.Module):
    def __init__(self, spec: VocoderDiscriminatorSpec):
        super().__init__()
        self.periods = nn.ModuleList(PeriodDiscriminator(p, spec.width) for p in spec.periods)
        self.resolutions = nn.ModuleList(SpectrogramDiscriminator(n, h, w, spec.width) for n, h, w in spec.resolutions)

    def forward(self, audio: torch.Tensor) -> DiscriminatorOutput:
        logits, features = [], []
        for sub in (*self.periods, *self.resolutions):
            logit, feats = sub(audio)
            logits.append(logit)
            features.extend(feats)
        return DiscriminatorOutput(logits, features)

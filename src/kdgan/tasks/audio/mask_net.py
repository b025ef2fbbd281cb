"""A spectral-mask speech enhancer (`arch: spectral-mask`), MetricGAN+'s generator in a layout
that prunes and exports: the noisy waveform's STFT (512 points, hop 256, Hann; MetricGAN+'s
framing at 16 kHz), a network that sees the compressed magnitudes of every frame and predicts
one gain per frequency bin, and the inverse STFT of the gained spectrum with the noisy phase.

The network is the ConvNeXt-1D backbone of Vocos and the mel converter (frames along time, the
257 bins as input channels; kdgan.tasks.audio.vocos), so pruning init is the same rule
(kdgan.tasks.audio.prune.prune_convnext). The gain is MetricGAN+'s learnable sigmoid,
beta * sigmoid(alpha * x) with beta 1.2 and a learned alpha per bin: a gain a little above 1
restores speech the noise estimate took away.

Shapes: noisy (B, 1, T) -> enhanced (B, 1, T), any T. The STFT and its inverse are FFTs (not
counted in MACs: O(n log n) per frame, about 2% of the width-64 student's counted MACs). The
inverse is an inverse real FFT and an overlap-add by `fold` divided by the window's squared sum,
because torch.istft does not export to ONNX; it equals torch.istft to 1e-6 (tested).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from kdgan.errors import UserError
from kdgan.tasks.audio.prune import prune_convnext
from kdgan.tasks.audio.vocos import add_convnext_backbone, run_convnext_backbone

N_FFT, HOP, BETA = 512, 256, 1.2


class SpectralMaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: Literal["spectral-mask"] = "spectral-mask"
    width: int = Field(256, ge=1)
    layers: int = Field(6, ge=1)
    expansion: int = Field(3, ge=1)


def overlap_add(frames: torch.Tensor, window: torch.Tensor, hop: int) -> torch.Tensor:
    """(B, n_fft, F) windowed frames -> (B, (F - 1) * hop + n_fft) signal, divided by the
    overlapped squared window (the inverse STFT's normalisation)."""
    n_fft, count = frames.shape[1], frames.shape[2]
    length = (count - 1) * hop + n_fft
    signal = F.fold(frames, (1, length), (1, n_fft), stride=(1, hop))[:, 0, 0]
    envelope = F.fold((window**2)[None, :, None].expand(1, n_fft, count), (1, length), (1, n_fft), stride=(1, hop))
    return signal / envelope[:, 0, 0].clamp(min=1e-8)


class SpectralMaskGenerator(nn.Module):
    def __init__(self, spec: SpectralMaskSpec):
        super().__init__()
        self.spec = spec
        bins = N_FFT // 2 + 1
        add_convnext_backbone(self, bins, spec.width, spec.layers, spec.expansion)
        self.to_gain = nn.Linear(spec.width, bins)
        self.alpha = nn.Parameter(torch.ones(bins))  # the learnable sigmoid's slope per bin
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def gains(self, magnitude: torch.Tensor) -> torch.Tensor:
        """(B, bins, F) magnitudes -> (B, bins, F) gains in [0, BETA]."""
        h = run_convnext_backbone(self, torch.log1p(magnitude))  # (B, F, width)
        return BETA * torch.sigmoid(self.alpha * self.to_gain(h)).transpose(1, 2)

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        x = noisy.reshape(noisy.shape[0], -1)
        spectrum = torch.view_as_real(torch.stft(x, N_FFT, HOP, N_FFT, self.window, center=True, return_complex=True))
        magnitude = torch.sqrt(spectrum.pow(2).sum(-1) + 1e-9)
        gained = torch.view_as_complex((spectrum * self.gains(magnitude)[..., None]).contiguous())
        frames = torch.fft.irfft(gained, n=N_FFT, dim=1) * self.window[:, None]
        return overlap_add(frames, self.window, HOP)[:, N_FFT // 2: N_FFT // 2 + x.shape[-1]].reshape(noisy.shape)


@torch.no_grad()
def prune_mask(student: SpectralMaskGenerator, teacher: SpectralMaskGenerator,
               importance: str = "l1") -> list[torch.Tensor]:
    """The backbone as Vocos's is pruned (prune_convnext); the gain layer keeps every bin."""
    s, t = student.spec, teacher.spec
    if s.width > t.width or s.layers > t.layers:
        raise UserError("distill.student.init: prune needs a spectral-mask student no wider or deeper than the "
                        "teacher; use init: scratch")
    keep, layers = prune_convnext(student, teacher)
    student.to_gain.weight.copy_(teacher.to_gain.weight[:, keep])
    student.to_gain.bias.copy_(teacher.to_gain.bias)
    student.alpha.copy_(teacher.alpha)
    return [keep, torch.tensor(layers)]

"""Distillation terms for waveform generators (registered in kdgan.registry.TERMS), each
between the student's output and the teacher's on the same mel (`teacher_out`, (B, 1, T)):

  stft         multi-resolution STFT distance (Parallel WaveGAN): per resolution, spectral
               convergence ||S_t| - |S_s||_F / ||S_t||_F plus mean |log|S_t| - log|S_s||,
               averaged over the resolutions
  mel_teacher  mean |log-mel(student) - log-mel(teacher)|
  spectral_kl  the seed's KL for audio: each frame's magnitude spectrum as a distribution
               over frequency bins, softmax(log|S| / tau), and tau^2 * KL(teacher || student)
               averaged over frames. It compares where each frame's energy sits across
               frequencies (its spectral envelope and harmonics), not how loud it is: a
               constant gain on either side leaves it unchanged.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from kdgan.distill.terms import register
from kdgan.losses.distill import kl_softmax
from kdgan.losses.terms import LossTerm, StepContext
from kdgan.schema import Strict
from kdgan.tasks.audio.mel import LogMel

RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))  # (n_fft, hop, window)


def stft_magnitude(audio: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """(B, 1, T) -> |STFT| (B, frames, bins), floored at 1e-7 for the logs."""
    spec = torch.stft(audio.reshape(audio.shape[0], -1).float(), n_fft, hop, len(window), window,
                      return_complex=True)
    return spec.abs().clamp(min=1e-7).transpose(1, 2)


class MultiResolutionSTFT(LossTerm):
    name, phase, needs = "stft", "g", ("teacher_out",)

    def __init__(self, weight: float = 1.0, resolutions=RESOLUTIONS):
        super().__init__(weight)
        self.resolutions = [tuple(r) for r in resolutions]
        for i, (_, _, win) in enumerate(self.resolutions):
            self.register_buffer(f"window_{i}", torch.hann_window(win), persistent=False)

    def compute(self, ctx: StepContext) -> torch.Tensor:
        windows = [getattr(self, f"window_{i}") for i in range(len(self.resolutions))]
        return stft_distance(ctx.fake, ctx.extra["teacher_out"], self.resolutions, windows)


def stft_distance(audio: torch.Tensor, target: torch.Tensor, resolutions, windows) -> torch.Tensor:
    """Parallel WaveGAN's multi-resolution STFT distance of (B, 1, T) audio to a target: per
    resolution ||S_t| - |S||_F / ||S_t||_F + mean |log|S_t| - log|S||, averaged."""
    losses = []
    for (n_fft, hop, _), window in zip(resolutions, windows):
        s, t = stft_magnitude(audio, n_fft, hop, window), stft_magnitude(target, n_fft, hop, window)
        losses.append(torch.linalg.norm(t - s) / torch.linalg.norm(t) + (t.log() - s.log()).abs().mean())
    return torch.stack(losses).mean()


class MelToTeacher(LossTerm):
    name, phase, needs = "mel_teacher", "g", ("teacher_out",)

    def __init__(self, weight: float = 1.0):
        super().__init__(weight)
        self.mel = LogMel()

    def compute(self, ctx: StepContext) -> torch.Tensor:
        return (self.mel(ctx.fake) - self.mel(ctx.extra["teacher_out"])).abs().mean()


class SpectralKL(LossTerm):
    name, phase, needs = "spectral_kl", "g", ("teacher_out",)

    def __init__(self, weight: float = 1.0, temperature: float = 1.0, n_fft: int = 1024, hop: int = 256):
        super().__init__(weight)
        self.temperature, self.n_fft, self.hop = temperature, n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def compute(self, ctx: StepContext) -> torch.Tensor:
        s = stft_magnitude(ctx.fake, self.n_fft, self.hop, self.window).log()  # (B, frames, bins)
        t = stft_magnitude(ctx.extra["teacher_out"], self.n_fft, self.hop, self.window).log()
        return kl_softmax(s, t, -1, self.temperature, "distribution")


class STFTTerm(Strict):
    name: Literal["stft"]
    weight: float = 1.0
    resolutions: list[tuple[int, int, int]] = list(RESOLUTIONS)


class MelTeacherTerm(Strict):
    name: Literal["mel_teacher"]
    weight: float = 1.0


class SpectralKLTerm(Strict):
    name: Literal["spectral_kl"]
    weight: float = 1.0
    temperature: float = Field(1.0, gt=0)


register("stft", STFTTerm)(lambda tc, setup: MultiResolutionSTFT(tc.weight, tc.resolutions))
register("mel_teacher", MelTeacherTerm)(lambda tc, setup: MelToTeacher(tc.weight))
register("spectral_kl", SpectralKLTerm)(lambda tc, setup: SpectralKL(tc.weight, tc.temperature))

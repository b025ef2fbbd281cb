"""HiFi-GAN's log-mel front-end, with torch.stft and librosa's mel filters (torchaudio's
wheels cannot load beside this CPU torch).

For 16 kHz speech kdgan uses n_fft 1024, a 1024-sample Hann window, hop 256 (16 ms, 62.5
frames a second), 80 mel bands from 0 to 8 kHz (Slaney-normalised, as librosa's default):
HiFi-GAN's 22,050 Hz settings with fmax at the 16 kHz Nyquist frequency. As in HiFi-GAN the
signal is reflect-padded by (n_fft - hop) / 2 on both sides and framed without centring,
so T samples give exactly T / hop frames; magnitudes are sqrt(|STFT|^2 + 1e-9), and the
log is taken of max(mel, 1e-5).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field
from torch import nn


class MelSettings(BaseModel):
    sample_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = Field(256, ge=1)
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0


def mel_filters(s: MelSettings) -> torch.Tensor:
    import librosa

    basis = librosa.filters.mel(sr=s.sample_rate, n_fft=s.n_fft, n_mels=s.n_mels, fmin=s.fmin, fmax=s.fmax)
    return torch.from_numpy(basis).float()  # (n_mels, n_fft // 2 + 1)


class LogMel(nn.Module):
    """audio (B, T) or (B, 1, T) -> log-mel (B, n_mels, T // hop)."""

    def __init__(self, settings: MelSettings = MelSettings()):
        super().__init__()
        self.settings = settings
        self.register_buffer("basis", mel_filters(settings), persistent=False)
        self.register_buffer("window", torch.hann_window(settings.win_length), persistent=False)

    def magnitudes(self, audio: torch.Tensor) -> torch.Tensor:
        s = self.settings
        x = audio.reshape(-1, audio.shape[-1]).float()
        pad = (s.n_fft - s.hop_length) // 2
        x = F.pad(x[:, None], (pad, pad), mode="reflect")[:, 0]
        spec = torch.stft(x, s.n_fft, s.hop_length, s.win_length, self.window, center=False, return_complex=True)
        return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)  # (B, n_fft // 2 + 1, frames)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.clamp(self.basis @ self.magnitudes(audio), min=1e-5))


@functools.lru_cache(maxsize=64)
def warp_matrix(factor: float, n_mels: int = MelSettings().n_mels, fmin: float = MelSettings().fmin,
                fmax: float = MelSettings().fmax) -> torch.Tensor:
    """(n_mels, n_mels) linear interpolation between mel bands such that `matrix @ log_mel`
    is the log-mel of the spectrum S'(f) = S(f / factor): factor > 1 moves every frequency up
    (a shorter vocal tract). Bands whose source frequency lies past the edges repeat the edge."""
    import librosa

    centres = librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax)[1:-1]
    position = np.interp(centres / factor, centres, np.arange(n_mels))  # fractional source band
    low = np.floor(position).astype(int)
    high, frac = np.minimum(low + 1, n_mels - 1), position - low
    matrix = np.zeros((n_mels, n_mels))
    rows = np.arange(n_mels)
    np.add.at(matrix, (rows, low), 1 - frac)
    np.add.at(matrix, (rows, high), frac)
    return torch.from_numpy(matrix).float()

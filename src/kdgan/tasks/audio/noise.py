"""Noise for speech enhancement, and mixing it into clean speech at a chosen SNR.

Kinds (`data.noises`), each made at the length asked for and returned at unit RMS:
  white   Gaussian samples: a flat spectrum
  pink    power falling as 1/f (3 dB per octave): white noise shaped in the frequency domain
  brown   power falling as 1/f^2 (6 dB per octave), shaped the same way
  hum     mains hum: 50 or 60 Hz and its harmonics up to 1 kHz, amplitude 1/k for harmonic k,
          random phases
  babble  3 to 6 other speech clips summed (other voices of the corpus, or other files of the
          user's folder), each from a random offset, looped to the length
  folder  a random stretch of a random file of the user's noise folder (`data.noise`), looped

SNR: 10 log10(P_speech / P_noise), P the mean square over the mixed segment, silence
included. When the mixture would clip (a peak above 0.99), mixture and clean target are scaled
down together, which keeps the SNR.
"""

from __future__ import annotations

import math

import torch

KINDS = ("white", "pink", "brown", "hum", "babble", "folder")
PEAK = 0.99


def _unit_rms(x: torch.Tensor) -> torch.Tensor:
    return x / x.pow(2).mean().sqrt().clamp(min=1e-12)


def coloured(length: int, exponent: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise whose power spectrum falls as 1/f^exponent (0 white, 1 pink, 2 brown)."""
    white = torch.randn(length, generator=gen, dtype=torch.float64)
    if exponent == 0:
        return _unit_rms(white).float()
    spectrum = torch.fft.rfft(white)
    f = torch.arange(len(spectrum), dtype=torch.float64)
    spectrum = spectrum * f.clamp(min=1).pow(-exponent / 2)  # amplitude ~ f^(-exponent/2)
    spectrum[0] = 0  # no DC offset
    return _unit_rms(torch.fft.irfft(spectrum, n=length)).float()


def hum(length: int, rate: int, gen: torch.Generator) -> torch.Tensor:
    mains = 50.0 if torch.rand(1, generator=gen).item() < 0.5 else 60.0
    t = torch.arange(length, dtype=torch.float64) / rate
    wave = torch.zeros(length, dtype=torch.float64)
    for k in range(1, int(1000 // mains) + 1):
        phase = 2 * math.pi * torch.rand(1, generator=gen, dtype=torch.float64)
        wave += torch.sin(2 * math.pi * k * mains * t + phase) / k
    return _unit_rms(wave).float()


def looped(audio: torch.Tensor, length: int, gen: torch.Generator) -> torch.Tensor:
    """`length` samples of `audio` from a random offset, wrapping round to its start."""
    start = int(torch.randint(len(audio), (1,), generator=gen))
    reps = (start + length) // len(audio) + 1
    return audio.repeat(reps)[start: start + length]


def babble(length: int, talkers: list[torch.Tensor], gen: torch.Generator) -> torch.Tensor:
    n = int(torch.randint(3, 7, (1,), generator=gen))
    picks = torch.randint(len(talkers), (n,), generator=gen).tolist()
    return _unit_rms(sum(_unit_rms(looped(talkers[i], length, gen)) for i in picks))


def make_noise(kind: str, length: int, rate: int, gen: torch.Generator, talkers: list[torch.Tensor] = (),
               recordings: list[torch.Tensor] = ()) -> torch.Tensor:
    """`length` samples of the kind's noise at unit RMS; babble draws on `talkers`, folder on
    `recordings`."""
    if kind in ("white", "pink", "brown"):
        return coloured(length, {"white": 0, "pink": 1, "brown": 2}[kind], gen)
    if kind == "hum":
        return hum(length, rate, gen)
    if kind == "babble":
        return babble(length, list(talkers), gen)
    if kind == "folder":
        pick = int(torch.randint(len(recordings), (1,), generator=gen))
        return _unit_rms(looped(recordings[pick], length, gen))
    raise ValueError(f"unknown noise kind {kind!r}; valid: {', '.join(KINDS)}")


def mix(clean: torch.Tensor, noise: torch.Tensor, snr_db: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy, clean): `noise` scaled so that the mixture has `snr_db`, both scaled down
    together when the mixture would clip. A silent `clean` gets no noise (no SNR exists)."""
    p_clean = clean.double().pow(2).mean()
    p_noise = noise.double().pow(2).mean().clamp(min=1e-20)
    gain = torch.sqrt(p_clean / (p_noise * 10 ** (snr_db / 10)))
    noisy = clean.double() + gain * noise.double()
    peak = noisy.abs().max()
    scale = PEAK / peak if peak > PEAK else 1.0
    return (noisy * scale).float(), (clean.double() * scale).float()


def snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    """The SNR of a mixture: 10 log10(P_clean / P_(noisy - clean))."""
    noise = noisy.double() - clean.double()
    return float(10 * torch.log10(clean.double().pow(2).mean() / noise.pow(2).mean()))

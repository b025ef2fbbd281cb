"""Signal-processing speech enhancement: the baselines an enhancement teacher has to beat.

Both work on the noisy recording's STFT (512 points, hop 128, Hann) and keep its phase. The
noise power spectrum is estimated from the recording itself, as the mean power per frequency
bin over its quietest 10 % of frames (the pauses between words; no voice-activity detector).

  spectral_subtraction  power spectral subtraction with over-subtraction and a spectral floor
                        (Berouti et al. 1979): |S|^2 = max(|Y|^2 - alpha N, beta |Y|^2),
                        alpha 2, beta 0.01
  wiener                a Wiener gain xi / (1 + xi) with the a-priori SNR xi from the
                        decision-directed rule (Ephraim & Malah 1984):
                        xi_t = a |S_(t-1)|^2 / N + (1 - a) max(|Y_t|^2 / N - 1, 0), a 0.98,
                        floored at -25 dB
"""

from __future__ import annotations

import torch

N_FFT, HOP = 512, 128


def _stft(audio: torch.Tensor) -> torch.Tensor:
    return torch.stft(audio.double(), N_FFT, HOP, window=torch.hann_window(N_FFT, dtype=torch.float64),
                      return_complex=True)  # (bins, frames)


def _istft(spec: torch.Tensor, length: int) -> torch.Tensor:
    return torch.istft(spec, N_FFT, HOP, window=torch.hann_window(N_FFT, dtype=torch.float64), length=length).float()


def noise_power(power: torch.Tensor, quietest: float = 0.1) -> torch.Tensor:
    """(bins,) mean power of the quietest `quietest` share of the frames of `power` (bins, frames)."""
    frames = power.sum(0)
    n = max(1, int(round(quietest * power.shape[1])))
    return power[:, frames.argsort()[:n]].mean(1)


def spectral_subtraction(noisy: torch.Tensor, alpha: float = 2.0, beta: float = 0.01) -> torch.Tensor:
    """(T,) -> (T,)."""
    spec = _stft(noisy)
    power = spec.abs() ** 2
    clean_power = torch.maximum(power - alpha * noise_power(power)[:, None], beta * power)
    gain = torch.sqrt(clean_power / power.clamp(min=1e-20))
    return _istft(spec * gain, len(noisy))


def wiener(noisy: torch.Tensor, smoothing: float = 0.98, floor_db: float = -25.0) -> torch.Tensor:
    """(T,) -> (T,)."""
    spec = _stft(noisy)
    power = spec.abs() ** 2
    noise = noise_power(power).clamp(min=1e-20)
    floor = 10 ** (floor_db / 10)
    gains, previous = [], torch.zeros_like(noise)  # previous: the last frame's clean power estimate
    for t in range(power.shape[1]):
        posterior = power[:, t] / noise
        prior = (smoothing * previous / noise + (1 - smoothing) * (posterior - 1).clamp(min=0)).clamp(min=floor)
        gain = prior / (1 + prior)
        previous = gain**2 * power[:, t]
        gains.append(gain)
    return _istft(spec * torch.stack(gains, 1), len(noisy))


BASELINES = {"spectral subtraction": spectral_subtraction, "Wiener filter": wiener}

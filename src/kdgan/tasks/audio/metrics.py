"""How good a vocoder's speech is, clip by clip against the recording its mel came from:

  mel_l1  mean |log-mel(output) - log-mel(recording)| (HiFi-GAN's validation number; lower is better)
  pesq    wide-band PESQ (ITU-T P.862.2, the `pesq` package), -0.5 ... 4.5, higher is better
  stoi    short-time objective intelligibility (the `pystoi` package), 0 ... 1, higher is better
  dnsmos  DNSMOS P.835 overall quality (`speechmos`, its ONNX models ship in the package), a
          1 ... 5 MOS estimate that needs no reference: asked for with --metrics

and the same for Griffin-Lim (32 iterations) on the recording's mel: the signal-processing
baseline a neural vocoder has to beat.
"""

from __future__ import annotations

import numpy as np
import torch

from kdgan.errors import UserError
from kdgan.tasks.audio.corpus import SAMPLE_RATE
from kdgan.tasks.audio.mel import LogMel

AUDIO_METRICS = ("mel_l1", "pesq", "stoi")  # the defaults
OPTIONAL_METRICS = ("dnsmos",)


def clip_scores(output: torch.Tensor, reference: torch.Tensor, mel: LogMel, metrics) -> dict[str, float]:
    """Scores of one output waveform (T,) against its reference (T,)."""
    scores = {}
    if "mel_l1" in metrics:
        scores["mel_l1"] = float((mel(output[None]) - mel(reference[None])).abs().mean())
    ref, out = reference.double().numpy(), output.double().numpy()
    if "pesq" in metrics:
        scores["pesq"] = float(_pesq()(SAMPLE_RATE, ref, out, "wb"))
    if "stoi" in metrics:
        from pystoi import stoi

        scores["stoi"] = float(stoi(ref, out, SAMPLE_RATE, extended=False))
    if "dnsmos" in metrics:
        scores["dnsmos"] = dnsmos(output)
    return scores


def dnsmos(audio: torch.Tensor) -> float:
    """DNSMOS overall MOS of one 16 kHz clip (no reference)."""
    try:
        from speechmos import dnsmos as model
    except ImportError:
        raise UserError("--metrics dnsmos: the speechmos package is not installed (pip install speechmos)") from None
    return float(model.run(audio.float().numpy(), sr=SAMPLE_RATE)["ovrl_mos"])


def _pesq():
    try:
        from pesq import pesq
    except ImportError:
        raise UserError("--metrics pesq: the pesq package is not installed (pip install pesq)") from None
    return pesq


def griffin_lim(log_mel: torch.Tensor, mel: LogMel, length: int, iterations: int = 32) -> torch.Tensor:
    """A waveform (length,) from a log-mel (n_mels, frames): the mel inverted to a linear
    magnitude spectrogram by librosa's non-negative least squares, then Griffin-Lim."""
    import librosa

    s = mel.settings
    magnitude = librosa.feature.inverse.mel_to_stft(np.exp(log_mel.double().numpy()), sr=s.sample_rate,
                                                    n_fft=s.n_fft, power=1.0, fmin=s.fmin, fmax=s.fmax)
    # librosa centres frame k on sample k * hop; kdgan's mel frames (HiFi-GAN's padding) are
    # centred `offset` samples later, so the reconstruction is delayed by that much
    offset = s.n_fft // 2 - (s.n_fft - s.hop_length) // 2
    magnitude = np.pad(magnitude, ((0, 0), (0, 1)), mode="edge")  # librosa's centred frames: T / hop + 1
    audio = librosa.griffinlim(magnitude, n_iter=iterations, hop_length=s.hop_length, win_length=s.win_length,
                               window="hann", center=True, length=length, random_state=0)
    audio = np.concatenate([np.zeros(offset), audio])[:length]
    return torch.from_numpy(audio.astype(np.float32))


def mean_scores(per_clip: list[dict[str, float]]) -> dict[str, float]:
    keys = per_clip[0].keys() if per_clip else []
    return {k: float(np.mean([s[k] for s in per_clip])) for k in keys} | \
           {f"{k}_std": float(np.std([s[k] for s in per_clip])) for k in keys}

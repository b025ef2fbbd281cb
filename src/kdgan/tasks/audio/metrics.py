"""How good a vocoder's speech is, clip by clip against the recording its mel came from:

  mel_l1     mean |log-mel(output) - log-mel(recording)| (HiFi-GAN's validation number; lower is better)
  pesq       wide-band PESQ (ITU-T P.862.2, the `pesq` package), -0.5 ... 4.5, higher is better
  stoi       short-time objective intelligibility (the `pystoi` package), 0 ... 1, higher is better
  mrstft     multi-resolution STFT distance (Parallel WaveGAN's: spectral convergence + log-magnitude
             L1, averaged over three resolutions; the `stft` distillation term's formula, here
             against the recording); lower is better
  mcd        mel-cepstral distortion in dB, from MFCCs 1-12 of kdgan's 80-band mel (c0, the
             loudness, left out): (10 / ln 10) sqrt(2 sum_d (c_d - c'_d)^2), averaged over frames;
             the frames are aligned (a vocoder resynthesises in time), so no DTW; lower is better
  f0_rmse    RMSE in Hz of the pitch (librosa's pYIN, 60-500 Hz, the mel's frames) over the frames
             both the output and the recording voice (a clip with no such frame is left out of
             the mean); asked for with --metrics
  vuv_error  fraction of frames whose voiced/unvoiced decision differs; asked for with --metrics
  si_sdr     scale-invariant signal-to-distortion ratio in dB (torchmetrics; Le Roux et al. 2019), the
             enhancement number: how much of the output is the reference, at any gain; higher is better
  dnsmos     DNSMOS P.835 overall quality (`speechmos`, its ONNX models ship in the package), a
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

AUDIO_METRICS = ("mel_l1", "pesq", "stoi", "mrstft", "mcd")  # the defaults
OPTIONAL_METRICS = ("f0_rmse", "vuv_error", "dnsmos")


def clip_scores(output: torch.Tensor, reference: torch.Tensor, mel: LogMel, metrics) -> dict[str, float]:
    """Scores of one output waveform (T,) against its reference (T,)."""
    scores = {}
    if "mel_l1" in metrics:
        scores["mel_l1"] = float((mel(output[None]) - mel(reference[None])).abs().mean())
    ref, out = reference.double().numpy(), output.double().numpy()
    if "pesq" in metrics:
        scores["pesq"] = pesq_score(ref, out)
    if "stoi" in metrics:
        from pystoi import stoi

        scores["stoi"] = float(stoi(ref, out, SAMPLE_RATE, extended=False))
    if "mrstft" in metrics:
        scores["mrstft"] = mrstft_distance(output, reference)
    if "mcd" in metrics:
        scores["mcd"] = mel_cepstral_distortion(output, reference, mel)
    if "f0_rmse" in metrics or "vuv_error" in metrics:
        pitch = pitch_errors(out, ref, mel)
        scores.update({k: v for k, v in pitch.items() if k in metrics})
    if "si_sdr" in metrics:
        from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

        scores["si_sdr"] = float(scale_invariant_signal_distortion_ratio(output.double(), reference.double()))
    if "dnsmos" in metrics:
        scores["dnsmos"] = dnsmos(output)
    return scores


def mrstft_distance(output: torch.Tensor, reference: torch.Tensor) -> float:
    from kdgan.tasks.audio.terms import RESOLUTIONS, stft_distance

    windows = [torch.hann_window(win) for _, _, win in RESOLUTIONS]
    return float(stft_distance(output[None, None], reference[None, None], RESOLUTIONS, windows))


def mel_cepstral_distortion(output: torch.Tensor, reference: torch.Tensor, mel: LogMel) -> float:
    import scipy.fft

    def cepstrum(audio):  # the DCT-II of the log-mel, as MFCCs are; coefficients 1..12
        return scipy.fft.dct(mel(audio[None])[0].double().numpy(), axis=0, type=2, norm="ortho")[1:13]

    diff = cepstrum(output) - cepstrum(reference)
    return float(np.mean(10 / np.log(10) * np.sqrt(2 * (diff**2).sum(0))))


def pitch_errors(output: np.ndarray, reference: np.ndarray, mel: LogMel) -> dict[str, float]:
    import librosa

    s = mel.settings

    def pitch(audio):
        f0, voiced, _ = librosa.pyin(audio.astype(np.float32), fmin=60, fmax=500, sr=s.sample_rate,
                                     frame_length=s.n_fft, hop_length=s.hop_length)
        return f0, voiced

    (f_out, v_out), (f_ref, v_ref) = pitch(output), pitch(reference)
    both = v_out & v_ref
    rmse = float(np.sqrt(np.mean((f_out[both] - f_ref[both]) ** 2))) if both.any() else float("nan")
    return {"f0_rmse": rmse, "vuv_error": float(np.mean(v_out != v_ref))}


def dnsmos(audio: torch.Tensor) -> float:
    """DNSMOS overall MOS of one 16 kHz clip (no reference)."""
    try:
        from speechmos import dnsmos as model
    except ImportError:
        raise UserError("--metrics dnsmos: the speechmos package is not installed (pip install speechmos)") from None
    return float(model.run(audio.float().numpy(), sr=SAMPLE_RATE)["ovrl_mos"])


def pesq_score(reference: np.ndarray, output: np.ndarray) -> float:
    """Wide-band PESQ; NaN where PESQ finds no speech in the reference (a near-silent
    reference, e.g. an untrained teacher's output): left out of the mean like f0_rmse."""
    from pesq import NoUtterancesError

    try:
        return float(_pesq()(SAMPLE_RATE, reference, output, "wb"))
    except NoUtterancesError:
        return float("nan")


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
    """Mean and std over clips; a clip without a value (f0_rmse where no frame is voiced in
    both) is left out of that metric's."""
    keys = per_clip[0].keys() if per_clip else []

    def over_clips(reduce, k):
        values = [s[k] for s in per_clip if not np.isnan(s[k])]
        return float(reduce(values)) if values else float("nan")

    return {k: over_clips(np.mean, k) for k in keys} | {f"{k}_std": over_clips(np.std, k) for k in keys}

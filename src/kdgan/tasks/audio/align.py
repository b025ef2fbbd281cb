"""Time alignment of two recordings of the same sentence (parallel voice conversion): dynamic
time warping (librosa.sequence.dtw) between their mel-cepstra (coefficients 1-12 of the
log-mel: the spectral envelope, without loudness c0, so that voices of different level and
pitch still match on what is said), with Euclidean frame distances and the standard step
pattern (diagonal, horizontal, vertical).

The result maps every target frame to the source frame it is paired with (of several on the
warping path, the nearest in cepstral distance), so `source[:, mapping]` is the source re-timed to the
target: the pairs a frame-to-frame converter trains on.
"""

from __future__ import annotations

import numpy as np
import torch


def mel_cepstrum(log_mel: torch.Tensor) -> np.ndarray:
    """(n_mels, F) log-mel -> (12, F) cepstral coefficients 1-12 (DCT-II, as MFCCs)."""
    import scipy.fft

    return scipy.fft.dct(log_mel.double().numpy(), axis=0, type=2, norm="ortho")[1:13]


def warp_mapping(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(Ft,) indices into the source's frames, one per target frame; source and target are
    log-mels (n_mels, F)."""
    import librosa

    x, y = mel_cepstrum(source), mel_cepstrum(target)
    _, path = librosa.sequence.dtw(X=x, Y=y, metric="euclidean")
    distance = np.linalg.norm(x[:, path[:, 0]] - y[:, path[:, 1]], axis=0)
    # per target frame, the nearest of its path's source frames (ties: the first on the path)
    ranked = path[np.lexsort((distance, path[:, 1]))]
    nearest = np.r_[True, ranked[1:, 1] != ranked[:-1, 1]]
    mapping = np.full(y.shape[1], -1)
    mapping[ranked[nearest, 1]] = ranked[nearest, 0]
    return torch.from_numpy(mapping)

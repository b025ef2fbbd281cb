"""The standard Inception-v3 FID features (pool3, 2048-d) and logits, through torch-fidelity.

These are the features every published FID uses; they describe natural photographs, so
they suit RGB image-to-image work more than 32x32 glyphs. torch-fidelity and its weights
are optional: on a machine without them (or offline) the user gets one line saying how to
get them. The weights download is bounded in time, so an offline machine fails fast
instead of hanging in DNS or TCP.
"""

from __future__ import annotations

import os
import threading
import urllib.request
from pathlib import Path

import torch
from torch import nn

from kdgan.errors import UserError

WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
DOWNLOAD_TIMEOUT_S = 20.0
HOW = ("install it with `pip install torch-fidelity torchvision` (a torchvision built for your torch); "
       "the features are then available as --features inception")


def weights_path() -> Path:
    """KDGAN_INCEPTION_WEIGHTS, or torch.hub's checkpoint folder (where torch-fidelity looks)."""
    if os.environ.get("KDGAN_INCEPTION_WEIGHTS"):
        return Path(os.environ["KDGAN_INCEPTION_WEIGHTS"])
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_URL.rsplit("/", 1)[1]


def download(url: str, path: Path, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Fetch url to path atomically, or raise UserError within about timeout_s seconds.
    urlopen's timeout does not cover name resolution, so the fetch runs in a daemon thread
    that is abandoned when the deadline passes."""
    outcome: dict = {}

    def fetch() -> None:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                outcome["data"] = response.read()
        except Exception as err:  # network errors come in many types; all mean "not here"
            outcome["error"] = err

    worker = threading.Thread(target=fetch, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if "data" not in outcome:
        reason = outcome.get("error", f"no answer in {timeout_s:g} s")
        raise UserError(f"--features inception: the Inception-v3 weights are not at {path} and could not be "
                        f"downloaded from {url} ({reason}); download that file on a connected machine and copy "
                        "it there, or set KDGAN_INCEPTION_WEIGHTS to its path")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(outcome["data"])
    os.replace(partial, path)


class InceptionFeatures(nn.Module):
    """Images in [-1, 1], any size, 1 or 3 channels -> (2048-d pool features, 1008 logits).
    torch-fidelity's extractor takes uint8 RGB and resizes to 299x299 itself (as the
    original TensorFlow FID code does), so grey images are repeated over RGB first."""

    spec = None  # any resolution and channel count

    def __init__(self, extractor: nn.Module):
        super().__init__()
        self.extractor = extractor.eval().requires_grad_(False)

    @staticmethod
    def to_uint8_rgb(x: torch.Tensor) -> torch.Tensor:
        x = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    @torch.no_grad()
    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, logits = self.extractor(self.to_uint8_rgb(x))
        return feats.float(), logits.float()


def load_inception() -> InceptionFeatures:
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except Exception as err:  # ImportError, or torchvision failing to load its operators
        raise UserError(f"--features inception: torch-fidelity is not usable here ({err}); {HOW}") from None
    path = weights_path()
    if not path.is_file():
        download(WEIGHTS_URL, path)
    extractor = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                            feature_extractor_weights_path=str(path))
    return InceptionFeatures(extractor)

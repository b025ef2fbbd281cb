"""The standard Inception-v3 FID features (pool3, 2048-d) and logits: torch-fidelity's port
of the TensorFlow FID network, without torchvision.

These are the features every published FID uses; they describe natural photographs, so
they suit RGB image-to-image work more than 32x32 glyphs. torch-fidelity's package imports
torchvision for its other extractors, and torchvision's wheels cannot load beside a CPU-only
torch; its Inception module itself needs only torch, so kdgan imports that module alone
(`pip install --no-deps torch-fidelity`, which `make` does).

The weights are the standard FID file (`pt_inception-2015-12-05`, converted by
torch-fidelity): `--inception-weights PATH`, $KDGAN_INCEPTION_WEIGHTS, or torch.hub's cache,
where a bounded download puts it when the machine is online (an offline machine fails fast
with one line instead of hanging). kdgan reads the file with weights-only unpickling or as
safetensors, so a crafted file cannot run code.
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
HOW = ("install it with `pip install --no-deps torch-fidelity` (kdgan needs only its Inception module, "
       "not torchvision); the features are then available as --features inception")


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


def inception_module():
    """torch-fidelity's Inception-v3 module (importable without torchvision: kdgan.fidelity_shim)."""
    import importlib

    return importlib.import_module("torch_fidelity.feature_extractor_inceptionv3")


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a torch.save file of tensors, never unpickling code."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged or foreign file: say which and why, in one line
        raise UserError(f"--inception-weights: cannot read {path} as Inception-v3 weights "
                        f"({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''})") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"--inception-weights: {path} is not a state dict of tensors")
    return state


def load_inception(weights: Path | None = None) -> InceptionFeatures:
    try:
        module = inception_module()
    except Exception as err:  # ImportError, or a broken install
        raise UserError(f"--features inception: torch-fidelity is not usable here ({err}); {HOW}") from None
    path = Path(weights) if weights is not None else weights_path()
    if not path.is_file():
        if weights is not None or os.environ.get("KDGAN_INCEPTION_WEIGHTS"):
            raise UserError(f"--inception-weights: {path} does not exist; give the FID Inception-v3 weights file "
                            f"({WEIGHTS_URL.rsplit('/', 1)[1]}, from {WEIGHTS_URL})")
        download(WEIGHTS_URL, path)
    state = read_weights(path)
    # torch-fidelity's constructor unpickles its weights file in full; hand it a file kdgan
    # wrote itself from the tensors read above, so the user's file is never fully unpickled.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        safe = Path(tmp) / "inception.pt"
        torch.save(state, safe)
        try:
            extractor = module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                                           feature_extractor_weights_path=str(safe))
        except RuntimeError as err:  # load_state_dict: missing or mis-shaped parameters
            raise UserError(f"--inception-weights: {path} does not fit torch-fidelity's Inception-v3 "
                            f"({str(err).splitlines()[0][:200]})") from None
    return InceptionFeatures(extractor)

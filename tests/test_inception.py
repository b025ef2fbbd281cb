"""The Inception-v3 features: the adapter's input contract, the network run from torch-fidelity's
module without torchvision on a weights file of the right structure (random weights: the real
file cannot be fetched offline), and the ways it can be unavailable (torch-fidelity missing,
weights missing offline or not where --inception-weights says), each one line that comes back
quickly."""

import sys
import time

import pytest
import torch
from torch import nn

from kdgan.errors import UserError
from kdgan.metrics import inception


class FakeExtractor(nn.Module):
    """Records what it is given, as torch-fidelity's extractor would receive it."""

    def forward(self, x):
        self.seen = x
        return x.float().mean((2, 3)).repeat(1, 4), x.float().amax((2, 3))


def test_adapter_gives_uint8_rgb_to_the_extractor():
    fake = FakeExtractor()
    model = inception.InceptionFeatures(fake)
    grey = torch.tensor([-1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 2, 2)
    feats, logits = model.features_and_logits(grey)
    assert fake.seen.dtype == torch.uint8 and fake.seen.shape == (1, 3, 2, 2)
    assert fake.seen[0, 1].flatten().tolist() == [0, 128, 255, 255]  # clamped, rounded
    assert feats.shape == (1, 12) and logits.dtype == torch.float32


def test_missing_torch_fidelity_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # import now raises ImportError
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", None)
    with pytest.raises(UserError, match="torch-fidelity is not usable here.*pip install --no-deps torch-fidelity"):
        inception.load_inception()


def test_offline_weights_download_fails_fast_with_instructions(tmp_path):
    target = tmp_path / "w.pth"
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        inception.download("http://127.0.0.1:9/weights.pth", target, timeout_s=3)  # port 9: nothing listens
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert str(target) in message and "KDGAN_INCEPTION_WEIGHTS" in message and "\n" not in message
    assert not target.exists()


def test_weights_path_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KDGAN_INCEPTION_WEIGHTS", str(tmp_path / "x.pth"))
    assert inception.weights_path() == tmp_path / "x.pth"
    monkeypatch.delenv("KDGAN_INCEPTION_WEIGHTS")
    assert inception.weights_path().name == "weights-inception-2015-12-05-6726825d.pth"


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    """A state dict of the real network's structure with random weights: the plumbing is
    tested; the real weights cannot be fetched offline."""
    module = inception.inception_module()
    cls = module.FeatureExtractorInceptionV3
    with pytest.MonkeyPatch.context() as patch:  # build the modules, skip loading a weights file
        patch.setattr(torch, "load", lambda *a, **k: {})
        patch.setattr(cls, "load_state_dict", lambda self, state, strict=True: None)
        torch.manual_seed(0)
        net = cls("inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path="unused")
    path = tmp_path_factory.mktemp("inception") / "weights.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def test_inception_runs_without_torchvision_from_a_weights_file(run_cli, tmp_path, monkeypatch,
                                                                random_inception_weights):
    """torch-fidelity's Inception module alone (torchvision is not importable here), weights
    from --inception-weights, read without unpickling; FID and IS come out finite."""
    import json

    import numpy as np
    from PIL import Image

    from conftest import ROOT, set_args, tiny_overrides

    monkeypatch.setitem(sys.modules, "torchvision", None)  # as on this project's CPU machines
    monkeypatch.setenv("KDGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KDGAN_INCEPTION_WEIGHTS", raising=False)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(8):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(images / f"{i}.png")
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--config", ROOT / "configs/digits_teacher.yaml", "--out", run, *set_args(
        tiny_overrides(**{"data.name": "folder", "data.path": images, "data.channels": 3, "train.batch_size": 4,
                          "train.steps": 2, "log.checkpoint_every": 2})))
    assert code == 0, err
    code, out, err = run_cli("evaluate", run, "--features", "inception", "--inception-weights", tmp_path / "nope.pth",
                             "--samples", 4)
    assert code == 2 and err.strip().splitlines() == [f"kdgan: --inception-weights: {tmp_path / 'nope.pth'} does not exist"]
    code, out, err = run_cli("evaluate", run, "--features", "inception", "--inception-weights",
                             random_inception_weights, "--samples", 4, "--metrics", "fid,is", "--no-profile")
    assert code == 0, err
    result = json.loads((run / "eval.json").read_text())["evaluations"][-1]
    assert result["features"] == "inception" and result["real_samples"] == 8
    assert np.isfinite(result["fid"]) and np.isfinite(result["is"])

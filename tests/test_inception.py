"""The optional Inception-v3 features: the adapter's input contract, and the two ways it can
be unavailable (torch-fidelity missing, weights missing offline), each a one-line error that
comes back quickly. The real network needs torch-fidelity + torchvision, not installed in CI."""

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
    with pytest.raises(UserError, match="torch-fidelity is not usable here.*pip install torch-fidelity"):
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

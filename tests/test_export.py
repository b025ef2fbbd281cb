
import pytest
import torch

from conftest import set_args, tiny_overrides
from kdgan.errors import UserError
from kdgan.pretrained import load_pretrained


def test_export_round_trip(run_cli, tmp_path):
    from conftest import ROOT

    run = tmp_path / "run"
    code, _, err = run_cli("train", "--config", ROOT / "configs/glyph_teacher.yaml", "--out", run,
                           *set_args(tiny_overrides(**{"train.steps": 3})))
    assert code == 0, err
    code, out, err = run_cli("export", run, "--format", "safetensors", "--out", tmp_path / "pre")
    assert code == 0, err
    generator, discriminator, config = load_pretrained(tmp_path / "pre")
    assert config["source"]["generator_weights"] == "generator_ema" and config["source"]["step"] == 3
    # the exported generator is the run's EMA generator, weight for weight
    from kdgan.train.checkpoint import load_checkpoint, unprefixed

    _, tensors = load_checkpoint(run)
    for k, v in generator.state_dict().items():
        assert torch.equal(v, unprefixed("generator_ema", tensors)[k]), k
    x = generator(torch.randn(2, config["generator"]["latent_dim"]))
    assert x.shape == (2, 1, 16, 16) and discriminator(x).shape == (2,)


def test_export_errors(run_cli, tmp_path):
    code, _, err = run_cli("export", tmp_path / "nothing", "--out", tmp_path / "o")
    assert code == 2 and "does not exist" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("export", tmp_path / "empty", "--out", tmp_path / "o")
    assert code == 2 and "no complete, intact checkpoint" in err
    with pytest.raises(UserError, match="not a pretrained folder"):
        load_pretrained(tmp_path / "empty")

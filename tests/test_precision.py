"""Mixed precision and memory format on CPU."""

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, set_args, tiny_overrides
from kdgan.losses import discriminator_loss, generator_loss, r1_penalty


@pytest.mark.parametrize("precision,channels_last", [("bf16", True), ("fp16", False)])
def test_autocast_steps_run(run_cli, tmp_path, precision, channels_last):
    out = tmp_path / precision
    code, _, err = run_cli("train", "--config", ROOT / "configs/glyph_teacher.yaml", "--out", out,
                           *set_args(tiny_overrides(**{"train.precision": precision, "train.steps": 6,
                                                       "train.channels_last": str(channels_last).lower(),
                                                       "train.loss.r1_gamma": 1.0})))
    assert code == 0, err
    last = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert all(v == v and abs(v) != float("inf") for v in last.values())
    weights = load_file(sorted((out / "checkpoints").glob("*.safetensors"))[-1])
    assert all(t.dtype != torch.bfloat16 for t in weights.values())  # master weights stay fp32


def test_fp16_resume_restores_the_grad_scaler(run_cli, tmp_path):
    common = tiny_overrides(**{"train.precision": "fp16", "train.steps": 8, "log.checkpoint_every": 4})
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_cli("train", "--config", ROOT / "configs/glyph_teacher.yaml", "--out", a, *set_args(common))[0] == 0
    assert run_cli("train", "--config", ROOT / "configs/glyph_teacher.yaml", "--out", b,
                   *set_args(common + ["train.steps=4"]))[0] == 0
    assert json.loads((b / "checkpoints/step_0000004.json").read_text())["grad_scalers"]["d"]["scale"] > 0
    assert run_cli("train", "--out", b, "--resume", "--set", "train.steps=8")[0] == 0
    wa, wb = (load_file(p / "checkpoints/step_0000008.safetensors") for p in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_losses_are_fp32_inside_autocast():
    logits = torch.randn(8, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert generator_loss("bce", logits).dtype == torch.float32
        assert all(t.dtype == torch.float32 for t in discriminator_loss("hinge", logits, logits))
        d = torch.nn.Linear(4, 1)
        assert r1_penalty(lambda x: d(x).squeeze(1), torch.randn(3, 4)).dtype == torch.float32

"""Divergence guards, pre-emption signals, damaged checkpoints, mode-collapse flag."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, set_args, tiny_overrides
from kdgan.config import load_config
from kdgan.errors import TrainingStopped, UserError
from kdgan.losses.terms import LossTerm
from kdgan.train.checkpoint import load_checkpoint
from kdgan.train.guards import FiniteWatch, diversity
from kdgan.train.run import start_run


class NaNAt(LossTerm):
    """A probe term that is NaN at one step (counting calls), 0 otherwise."""

    name = "nan_probe"

    def __init__(self, at: int):
        super().__init__(1.0)
        self.at, self.calls = at, 0

    def compute(self, ctx):
        self.calls += 1
        return ctx.fake.sum() * (float("nan") if self.calls == self.at else 0.0)


def trainer_with_probe(tmp_path, at, **extra):
    cfg = load_config(ROOT / "configs/glyph_teacher.yaml", tiny_overrides(**{
        "train.steps": 8, "log.checkpoint_every": 2, "log.log_every": 2, "log.tensorboard": "false", **extra}))
    trainer = start_run(cfg, tmp_path / "run", resume=False, overwrite=False)
    trainer.g_objective.terms.append(NaNAt(at))
    return trainer


def test_nonfinite_loss_stops_with_the_terms_name(tmp_path):
    trainer = trainer_with_probe(tmp_path, at=5)
    with pytest.raises(TrainingStopped, match=r"loss term nan_probe is NaN/Inf at step 5"):
        trainer.fit(tmp_path / "run")
    meta, tensors = load_checkpoint(tmp_path / "run")  # the last checkpoint is intact and finite
    assert meta["step"] == 4 and all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())


def test_nonfinite_rolls_back_with_lower_learning_rates(tmp_path):
    trainer = trainer_with_probe(tmp_path, at=5, **{"guard.nonfinite": "rollback"})
    trainer.fit(tmp_path / "run")
    assert trainer.step == 8
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5)
    events = [json.loads(l) for l in (tmp_path / "run/events.jsonl").read_text().splitlines()]
    rollback = [e for e in events if e.get("event") == "rollback"]
    assert len(rollback) == 1 and rollback[0]["step"] == 4 and "nan_probe" in rollback[0]["reason"]


def test_nonfinite_weights_are_named():
    good, bad = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        bad.weight[0, 0] = float("inf")
    watch = FiniteWatch()
    watch.observe({"g_adv": torch.tensor(1.0)}, step=1)
    assert watch.check({"generator": good}, step=1) is None
    assert watch.check({"generator": good, "discriminator": bad}, step=3) == "weights of discriminator is NaN/Inf at step 3"


def test_finite_watch_names_the_first_bad_term_and_step_without_reading_each_step():
    watch = FiniteWatch()
    for step, (a, b) in enumerate([(1.0, 2.0), (1.0, float("inf")), (float("nan"), float("nan")), (1.0, 2.0)], 1):
        watch.observe({"a": torch.tensor(a), "b": torch.tensor(b)}, step)
    assert watch.check({}, step=4) == "loss term b is NaN/Inf at step 2"
    watch.reset()
    watch.observe({"a": torch.tensor(1.0)}, step=5)
    assert watch.check({}, step=5) is None


def test_the_loop_reads_the_device_only_at_steps_that_log_or_save(tmp_path, monkeypatch):
    cfg = load_config(ROOT / "configs/glyph_teacher.yaml", tiny_overrides(**{
        "train.steps": 9, "log.log_every": 4, "log.sample_every": 8, "log.checkpoint_every": 8,
        "log.tensorboard": "false"}))
    trainer = start_run(cfg, tmp_path / "run", resume=False, overwrite=False)
    checked = []
    real_check = FiniteWatch.check
    monkeypatch.setattr(FiniteWatch, "check", lambda self, m, step, r=None: checked.append(step) or real_check(self, m, step, r))
    trainer.fit(tmp_path / "run")
    assert checked == [4, 8, 9]


def test_sigterm_saves_a_checkpoint_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "kdgan", "train", "--config", "configs/glyph_teacher.yaml", "--out", str(out),
            *set_args(tiny_overrides(**{"train.steps": 100000, "log.checkpoint_every": 100000,
                                        "log.sample_every": 100000, "log.tensorboard": "false"}))]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "log.jsonl").exists() and time.time() < deadline:  # training has started
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM after step" in err and "--resume" in err
    meta, _ = load_checkpoint(out)
    stopped = meta["step"]
    assert stopped >= 5
    resumed = subprocess.run(args[:4] + ["--out", str(out), "--resume", "--set", f"train.steps={stopped + 3}"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(out)[0]["step"] == stopped + 3


def test_damaged_checkpoint_is_skipped_on_resume(run_cli, tmp_path):
    out = tmp_path / "run"
    assert run_cli("train", "--config", ROOT / "configs/glyph_teacher.yaml", "--out", out,
                   *set_args(tiny_overrides(**{"log.keep_checkpoints": 3})))[0] == 0
    newest = out / "checkpoints/step_0000020.safetensors"
    data = bytearray(newest.read_bytes())
    data[-10] ^= 0xFF  # one flipped byte in the tensors
    newest.write_bytes(bytes(data))
    with pytest.raises(UserError, match="damaged checkpoint"):
        load_checkpoint(newest)
    meta, _ = load_checkpoint(out)  # the run folder resolves to the newest intact one
    assert meta["step"] == 10
    code, _, err = run_cli("train", "--out", out, "--resume")
    assert code == 0 and "skipping damaged checkpoint" in err


def test_mode_collapse_is_flagged(run_cli, tmp_path):
    same = torch.zeros(4, 1, 8, 8)
    spread = torch.linspace(-1, 1, 4)[:, None, None, None].expand(4, 1, 8, 8)
    assert diversity(same) == 0 and diversity(spread) == pytest.approx((2 / 3 + 4 / 3 + 2 + 2 / 3 + 4 / 3 + 2 / 3) / 6)
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--config", ROOT / "configs/glyph_teacher.yaml", "--out", out,
                           *set_args(tiny_overrides(**{"guard.collapse_threshold": 100.0})))
    assert code == 0 and "possible mode collapse at step 10" in err
    events = [json.loads(l) for l in (out / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events] == [10, 20] and all(e["collapse"] for e in events)


def test_disk_full_during_checkpoint_write(tmp_path, monkeypatch):
    import errno

    import kdgan.train.checkpoint as ckpt

    cfg = load_config(ROOT / "configs/glyph_teacher.yaml", tiny_overrides(**{
        "train.steps": 6, "log.checkpoint_every": 2, "log.tensorboard": "false"}))
    trainer = start_run(cfg, tmp_path / "run", resume=False, overwrite=False)
    real_save = ckpt.save_file
    calls = {"n": 0}

    def filling_disk(tensors, path):
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint: half a file, then ENOSPC
            with open(path, "wb") as f:
                f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(tensors, path)

    monkeypatch.setattr(ckpt, "save_file", filling_disk)
    with pytest.raises(TrainingStopped, match="cannot write the checkpoint of step 4 .*No space left on device; "
                                              "the earlier checkpoints are intact"):
        trainer.fit(tmp_path / "run")
    assert load_checkpoint(tmp_path / "run")[0]["step"] == 2  # the earlier one, complete and intact
    assert not list((tmp_path / "run").rglob("*.tmp"))

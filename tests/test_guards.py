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


class NaNFrom(NaNAt):
    """NaN at every call from `at` on: a run that no rollback can save."""

    def compute(self, ctx):
        self.calls += 1
        return ctx.fake.sum() * (float("nan") if self.calls >= self.at else 0.0)


def test_rollbacks_run_out_then_the_run_stops(tmp_path):
    trainer = trainer_with_probe(tmp_path, at=99, **{"guard.nonfinite": "rollback", "guard.max_rollbacks": 2})
    trainer.g_objective.terms[-1] = NaNFrom(5)
    with pytest.raises(TrainingStopped, match=r"nan_probe is NaN/Inf .*\(after 2 rollbacks\)"):
        trainer.fit(tmp_path / "run")
    events = [json.loads(l) for l in (tmp_path / "run/events.jsonl").read_text().splitlines()]
    assert [e["lr_factor"] for e in events if e.get("event") == "rollback"] == [0.5, 0.25]
    assert load_checkpoint(tmp_path / "run")[0]["step"] == 4  # still the last finite one


def test_a_rollback_before_any_checkpoint_says_so(tmp_path):
    trainer = trainer_with_probe(tmp_path, at=1, **{"guard.nonfinite": "rollback"})
    with pytest.raises(TrainingStopped, match="no checkpoint to roll back to yet"):
        trainer.fit(tmp_path / "run")


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


def train_until_signalled(out, signum) -> tuple[list, str]:
    """Start a long `kdgan train`, send `signum` once training runs; (its args, its stderr)."""
    args = [sys.executable, "-m", "kdgan", "train", "--config", "configs/glyph_teacher.yaml", "--out", str(out),
            *set_args(tiny_overrides(**{"train.steps": 100000, "log.checkpoint_every": 100000,
                                        "log.sample_every": 100000, "log.tensorboard": "false"}))]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "log.jsonl").exists() and time.time() < deadline:  # training has started
        time.sleep(0.2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert f"stopped by {signal.Signals(signum).name} after step" in err and "--resume" in err
    return args, err


def test_sigterm_saves_a_checkpoint_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    args, _ = train_until_signalled(out, signal.SIGTERM)
    meta, _ = load_checkpoint(out)
    stopped = meta["step"]
    assert stopped >= 5
    resumed = subprocess.run(args[:4] + ["--out", str(out), "--resume", "--set", f"train.steps={stopped + 3}"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(out)[0]["step"] == stopped + 3
    # the same log as a run never stopped: no extra line at the stop, no shorter interval after it
    straight = tmp_path / "straight"
    args[args.index(str(out))] = str(straight)
    done = subprocess.run(args + ["--set", f"train.steps={stopped + 3}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert (out / "log.jsonl").read_text() == (straight / "log.jsonl").read_text()


def test_sigint_saves_a_checkpoint_like_sigterm(tmp_path):
    """Ctrl-C: a checkpoint at the step boundary and exit status 130 (128 + SIGINT)."""
    train_until_signalled(tmp_path / "run", signal.SIGINT)
    assert load_checkpoint(tmp_path / "run")[0]["step"] >= 5


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


@pytest.mark.parametrize("damage,reason", [
    ("json", "its JSON does not parse"),
    ("no sha256 + truncated tensors", "its JSON records no sha256 of the tensors"),
])
def test_each_kind_of_damage_is_named_and_the_older_checkpoint_used(run_cli, tmp_path, damage, reason):
    out = tmp_path / "run"
    assert run_cli("train", "--config", ROOT / "configs/glyph_teacher.yaml", "--out", out,
                   *set_args(tiny_overrides(**{"log.keep_checkpoints": 3})))[0] == 0
    newest = out / "checkpoints/step_0000020.json"
    if damage == "json":
        newest.write_text(newest.read_text()[:-40])  # cut mid-file
    else:
        meta = json.loads(newest.read_text())
        del meta["sha256"]
        newest.write_text(json.dumps(meta))
        tensors = newest.with_suffix(".safetensors")
        tensors.write_bytes(tensors.read_bytes()[: tensors.stat().st_size // 2])
    with pytest.raises(UserError, match=f"damaged checkpoint: {reason}"):
        load_checkpoint(newest)
    assert load_checkpoint(out)[0]["step"] == 10  # falls back to the intact older one
    code, _, err = run_cli("evaluate", out, "--samples", 2, "--features", "digits", "--no-profile")
    assert f"skipping damaged checkpoint {newest}: {reason}" in err


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


@pytest.fixture
def small_disk(tmp_path):
    """A real 6 MB filesystem (tmpfs) at tmp_path/disk; skipped where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def test_disk_full_during_checkpoint_write(run_cli, tmp_path, small_disk):
    """The disk fills up during the second checkpoint: one line, exit 2, the first checkpoint
    intact and no temporary file left; once space is freed the run resumes to the end."""
    args = ["--config", ROOT / "configs/glyph_teacher.yaml", *set_args(tiny_overrides(**{
        "train.steps": 6, "log.log_every": 2, "log.checkpoint_every": 2, "log.sample_every": 100,
        "log.tensorboard": "false"}))]
    probe = tmp_path / "probe"
    assert run_cli("train", *args, "--out", probe, "--set", "train.steps=2")[0] == 0
    size = sum(p.stat().st_size for p in (probe / "checkpoints").iterdir())
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (free - size * 3 // 2 - 64 * 1024))  # room for one checkpoint and a half
    run = small_disk / "run"
    code, _, err = run_cli("train", *args, "--out", run)
    assert code == 2, err
    assert err.strip().splitlines()[1:] == [f"kdgan: cannot write the checkpoint of step 4 to {run / 'checkpoints'}: "
                                        "No space left on device; the earlier checkpoints are intact"]
    assert load_checkpoint(run)[0]["step"] == 2  # the earlier one, complete and intact
    assert not list(run.rglob("*.tmp"))
    filler.unlink()
    code, _, err = run_cli("train", "--resume", "--out", run)
    assert code == 0, err
    assert load_checkpoint(run)[0]["step"] == 6

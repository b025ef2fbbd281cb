"""Fault suite: SIGKILL a real `kdgan distill` at random moments and resume each time.

Run alone with `pytest -m fault -s` to see its report. Each kill lands at a random time
(seeded), checkpoints are written every step so many kills fall inside a checkpoint write,
and after every kill the run is resumed (or restarted, if no checkpoint was complete yet).
The final weights must equal those of an uninterrupted run with the same seed.
"""

import json
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, set_args

pytestmark = pytest.mark.fault  # also runs in the normal suite (about a minute)

STEPS = 60  # long enough that most of the random kills land before the run ends
ARGS = ["--config", "configs/distill_full.yaml", *set_args([
    "data.name=digits", "data.resolution=16", "model.latent_dim=16", "train.batch_size=8", f"train.steps={STEPS}",
    "distill.student.width_multiplier=null", "distill.discriminator.width_multiplier=null",
    "model.generator.width=4", "model.discriminator.width=4", "log.log_every=1", "log.checkpoint_every=1",
    "log.sample_every=10", "log.progress=false", "log.tensorboard=false", "log.num_samples=4",
])]


def kdgan(*args, **popen):
    return subprocess.Popen([sys.executable, "-m", "kdgan", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def last_step(run):
    steps = [int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.json")] if run.exists() else []
    return max(steps, default=0)


def test_sigkill_at_random_moments_then_resume(tmp_path):
    teacher = tmp_path / "teacher"
    proc = kdgan("train", "--config", "configs/glyph_teacher.yaml", "--out", teacher, *set_args([
        "data.name=digits", "data.resolution=16", "model.latent_dim=16", "model.generator.width=8",
        "model.discriminator.width=8", "train.batch_size=8", "train.steps=2", "log.progress=false"]))
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    straight = tmp_path / "straight"
    proc = kdgan("distill", "--teacher", teacher, "--out", straight, *ARGS)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()

    run, rng = tmp_path / "killed", random.Random(1234)

    def start():  # resume when a checkpoint is complete, else start over
        if last_step(run):
            return kdgan("distill", "--resume", "--out", run)
        return kdgan("distill", "--overwrite", "--out", run, "--teacher", teacher, *ARGS)

    kills, lost, attempts = 0, 0, 0
    while kills < 5 and attempts < 30:
        attempts += 1
        before = last_step(run)
        proc = start()
        # Kill a few checkpoints after this start's first one, plus a random fraction of a
        # step, so kills land mid-run (often inside a checkpoint write) on any machine speed.
        target = min(STEPS - 1, before + rng.randint(1, 6))
        while last_step(run) < target and proc.poll() is None:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.05))
        if proc.poll() is not None:  # finished before the kill
            assert proc.returncode == 0, proc.stderr.read()
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        lost += max(0, before - last_step(run))  # checkpoints never go backwards
    while last_step(run) < STEPS:  # finish the run
        proc = start()
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    print(f"\nfault suite: {kills} SIGKILLs survived, {lost} checkpointed steps lost, {attempts} starts")
    assert kills >= 4  # enough kills actually landed mid-run
    assert lost == 0  # a kill never costs a complete checkpoint

    a = load_file(straight / f"checkpoints/step_{STEPS:07d}.safetensors")
    b = load_file(run / f"checkpoints/step_{STEPS:07d}.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the log reads as one uninterrupted run: one line per step, in order
    steps = [json.loads(l)["step"] for l in (run / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))
    assert not list(run.rglob("*.tmp"))  # a torn temporary file is always rewritten under the same name

"""Multi-process training with torchrun on CPU (gloo): same result as one process."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, set_args

pytestmark = pytest.mark.distributed

TINY = set_args([
    "data.name=digits", "data.resolution=16", "model.latent_dim=16", "model.generator.width=8",
    "model.discriminator.width=8", "train.batch_size=8", "train.steps=6", "log.log_every=3",
    "log.sample_every=6", "log.checkpoint_every=3", "log.keep_checkpoints=5", "log.progress=false",
    "log.tensorboard=false",
])


def kdgan(*args, procs: int = 1):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
    cmd = (launcher if procs > 1 else [sys.executable]) + ["-m", "kdgan", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def assert_same_weights(a_path, b_path, atol=1e-5):
    a, b = load_file(a_path), load_file(b_path)
    assert a.keys() == b.keys()
    for k in a:
        if a[k].dtype.is_floating_point:
            assert torch.allclose(a[k], b[k], rtol=1e-4, atol=atol), k
        else:
            assert torch.equal(a[k], b[k]), k


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    one = kdgan("train", "--config", "configs/glyph_teacher.yaml", "--out", tmp_path / "one", *TINY)
    two = kdgan("train", "--config", "configs/glyph_teacher.yaml", "--out", tmp_path / "two", *TINY, procs=2)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr[-3000:]  # clean exit: no abort in the process group teardown
    assert "2 processes" in two.stderr and two.stdout.count("done: 6 steps") == 1  # rank 0 reports
    assert_same_weights(tmp_path / "one/checkpoints/step_0000006.safetensors",
                        tmp_path / "two/checkpoints/step_0000006.safetensors")
    logs = [[json.loads(l) for l in (tmp_path / r / "log.jsonl").read_text().splitlines()] for r in ("one", "two")]
    for a, b in zip(*logs):  # loss terms averaged over processes = the single-process values
        assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], abs=1e-5) for k in a)


def test_distillation_with_adapters_over_two_processes(tmp_path):
    teacher = kdgan("train", "--config", "configs/glyph_teacher.yaml", "--out", tmp_path / "t", *TINY,
                    "--set", "train.steps=2")
    assert teacher.returncode == 0, teacher.stderr
    args = ["distill", "--config", "configs/distill_feature.yaml", "--teacher", tmp_path / "t", *TINY]
    one = kdgan(*args, "--out", tmp_path / "one")
    two = kdgan(*args, "--out", tmp_path / "two", procs=2)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    assert_same_weights(tmp_path / "one/checkpoints/step_0000006.safetensors",
                        tmp_path / "two/checkpoints/step_0000006.safetensors")


def test_checkpoint_of_two_processes_resumes_in_one(tmp_path):
    straight = kdgan("train", "--config", "configs/glyph_teacher.yaml", "--out", tmp_path / "a", *TINY)
    first = kdgan("train", "--config", "configs/glyph_teacher.yaml", "--out", tmp_path / "b", *TINY,
                  "--set", "train.steps=3", procs=2)
    assert straight.returncode == 0 and first.returncode == 0, first.stderr[-2000:]
    rest = kdgan("train", "--out", tmp_path / "b", "--resume", "--set", "train.steps=6")
    assert rest.returncode == 0, rest.stderr
    assert_same_weights(tmp_path / "a/checkpoints/step_0000006.safetensors",
                        tmp_path / "b/checkpoints/step_0000006.safetensors")


def test_global_batch_must_divide_over_processes(tmp_path):
    res = kdgan("train", "--config", "configs/glyph_teacher.yaml", "--out", tmp_path / "x", *TINY,
                "--set", "train.batch_size=7", procs=2)
    assert res.returncode != 0 and "train.batch_size: 7 is the global batch" in res.stderr
    assert not (tmp_path / "x").exists()

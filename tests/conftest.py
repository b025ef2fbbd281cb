import os
import sys
from pathlib import Path

import pytest

# Under pytest-xdist (`make test` runs a worker per core) each worker and the CLI processes it
# starts get one thread: two workers of two threads each on two cores thrash OpenMP.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
import torch  # noqa: E402

torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1))

ROOT = Path(__file__).resolve().parents[1]


def tiny_overrides(**extra) -> list[str]:
    """A GAN small enough for a CPU test step in milliseconds."""
    base = {
        "data.name": "digits",
        "data.resolution": 16,
        "model.latent_dim": 16,
        "model.generator.width": 8,
        "model.discriminator.width": 8,
        "train.batch_size": 8,
        "train.steps": 20,
        "log.log_every": 5,
        "log.sample_every": 10,
        "log.checkpoint_every": 10,
        "log.num_samples": 16,
        "log.progress": "false",
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def set_args(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run `kdgan ARGS...` in this process; returns (exit code, stdout, stderr)."""
    from kdgan.cli import main

    def run(*args: str):
        monkeypatch.setattr(sys, "argv", ["kdgan", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def digits16_features(tmp_path_factory):
    """A feature classifier for 16 px digits, trained once per session (3 epochs: held-out
    accuracy about 0.9; 1 epoch stays near chance and is refused by `features train`)."""
    import subprocess

    out = tmp_path_factory.mktemp("features") / "digits16"
    subprocess.run([sys.executable, "-m", "kdgan", "features", "train", "digits", "--resolution", "16",
                    "--epochs", "3", "--out", str(out)], check=True, capture_output=True)
    return out


def cli_in_process(*args) -> int:
    """`kdgan ARGS...` in this process for module-scoped fixtures (run_cli is per test); the
    exit status."""
    from kdgan.cli import main

    argv, sys.argv = sys.argv, ["kdgan", *map(str, args)]
    try:
        main()
    except SystemExit as exc:
        return exc.code
    finally:
        sys.argv = argv
    return 0


def teacher_and_student(root, teacher_config: str, distill_config: str, tiny: dict, student: dict):
    """A tiny teacher trained from `teacher_config` in root/teacher and a student distilled
    from it by `distill_config` in root/student (`student`: overrides on top of `tiny`)."""
    as_args = lambda values: set_args([f"{k}={v}" for k, v in values.items()])  # noqa: E731
    assert cli_in_process("train", "--config", teacher_config, "--out", root / "teacher", *as_args(tiny)) == 0
    assert cli_in_process("distill", "--config", distill_config, "--teacher", root / "teacher", "--out",
                          root / "student", *as_args({**tiny, **student})) == 0
    return root

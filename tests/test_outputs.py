"""Every command that writes checks its --out before any work: one line naming --out, exit 2,
and nothing already there is touched. Real paths: /proc and /sys refuse writes whatever the
permission bits say (root ignores those), a file stands where a folder is expected, a path
runs under a file."""

import pytest

from conftest import ROOT, set_args, tiny_overrides

TINY = set_args(tiny_overrides(**{"train.steps": 2, "log.checkpoint_every": 2}))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-step teacher run, shared by the commands that read one."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("outputs") / "run"
    subprocess.run([sys.executable, "-m", "kdgan", "train", "--config", ROOT / "configs/digits_teacher.yaml",
                    "--out", out, *TINY], check=True, capture_output=True)
    return out


def commands(run, bad):
    return {
        "train": ["train", "--config", ROOT / "configs/digits_teacher.yaml", "--out", bad, *TINY],
        "distill": ["distill", "--config", ROOT / "configs/distill_l1.yaml", "--teacher", run, "--out", bad, *TINY,
                    "--set", "distill.student.width_multiplier=0.5"],
        "evaluate": ["evaluate", run, "--samples", 10, "--out", bad],
        "export-safetensors": ["export", run, "--out", bad],
        "export-onnx": ["export", run, "--format", "onnx", "--out", bad],
        "export-torchscript-file": ["export", run, "--format", "torchscript", "--out", f"{bad}.pt"],
        "sample-grid": ["sample", run, "--out", f"{bad}.png"],
        "sample-folder": ["sample", run, "--out", bad],
        "compare": ["compare", run, "--out", bad],
        "features": ["features", "train", "digits", "--out", bad],
    }


PLACES = ["proc", "sys", "existing file", "under a file"]


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("command", list(commands(None, None)))
def test_unwritable_out_is_one_line_before_any_work(run_cli, run, tmp_path, command, place):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    bad = {"proc": "/proc/kdgan-test/out", "sys": "/sys/kdgan-test/out", "existing file": afile,
           "under a file": afile / "sub"}[place]
    if place == "existing file" and command in ("export-torchscript-file", "sample-grid"):
        bad = afile / "x"  # these name a file: an existing file would be overwritten on purpose
    code, out, err = run_cli(*commands(run, bad)[command])
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("kdgan: --out: "), err
    assert afile.read_text() == "keep me"
    assert not (run / "eval.json").exists()  # evaluate stopped before computing anything

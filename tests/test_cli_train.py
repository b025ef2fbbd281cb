import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from conftest import ROOT, set_args, tiny_overrides


def _train(run_cli, out, *extra, **overrides):
    return run_cli("train", "--config", "configs/glyph_teacher.yaml", "--out", out,
                   *set_args(tiny_overrides(**overrides)), *extra)


@pytest.fixture(scope="module")
def cwd_root():
    import os
    from conftest import ROOT

    old = os.getcwd()
    os.chdir(ROOT)
    yield ROOT
    os.chdir(old)


def test_twenty_steps_write_every_artifact(run_cli, cwd_root, tmp_path):
    out = tmp_path / "run"
    code, stdout, stderr = _train(run_cli, out)
    assert code == 0, stderr
    assert (out / "config.yaml").read_text().count("steps: 20") == 1
    lines = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [5, 10, 15, 20]
    assert {"d_adv", "g_adv", "d_real_logit", "d_fake_logit"} <= set(lines[0])
    assert list((out / "tb").glob("events.out.tfevents.*"))
    grids = sorted((out / "samples").glob("*.png"))
    assert [g.name for g in grids] == ["step_0000010.png", "step_0000020.png"]
    assert Image.open(grids[-1]).size[0] > 16 * 4
    # the grid sits under a white strip that names it (teacher | student when distilling)
    top = np.asarray(Image.open(grids[-1]).convert("L"))[:14]
    assert top[0].min() == 255 and top.min() < 128  # a white strip with dark text in it
    meta = json.loads((out / "checkpoints" / "step_0000020.json").read_text())
    assert meta["step"] == 20 and meta["generator_spec"]["arch"] == "dcgan"
    assert meta["config"]["train"]["steps"] == 20 and meta["objectives"][0] == "L_G = 1*g_adv"
    tensors = load_file(out / "checkpoints" / "step_0000020.safetensors")
    assert any(k.startswith("generator_ema.") for k in tensors)
    assert any(k.startswith("optim_d.") for k in tensors) and "rng.noise" in tensors


def test_resume_equals_uninterrupted(run_cli, cwd_root, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _train(run_cli, straight)[0] == 0
    assert _train(run_cli, split, **{"train.steps": 10})[0] == 0
    code, _, err = run_cli("train", "--out", split, "--resume", "--set", "train.steps=20")
    assert code == 0, err
    a = load_file(straight / "checkpoints" / "step_0000020.safetensors")
    b = load_file(split / "checkpoints" / "step_0000020.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert (straight / "log.jsonl").read_text() == (split / "log.jsonl").read_text()


def test_warm_up_rises_linearly_then_hands_over_to_the_decay():
    from kdgan.train.loop import LoopSettings

    s = LoopSettings(steps=8, batch_size=1, d_steps=1, seed=0, log_every=1, sample_every=1, checkpoint_every=1,
                     keep_checkpoints=1, num_samples=1, lr_decay_start=0.5, warmup_steps=4)
    assert [s.lr_factor(k) for k in range(8)] == [0.25, 0.5, 0.75, 1, 1, 0.75, 0.5, 0.25]


def test_linear_learning_rate_decay_and_resume_within_it(tmp_path):
    from kdgan.config import load_config
    from kdgan.train.run import start_run

    cfg = load_config(ROOT / "configs/glyph_teacher.yaml", tiny_overrides(**{
        "train.steps": 8, "train.lr_decay_start": 0.5, "log.checkpoint_every": 4, "log.tensorboard": "false"}))
    straight = start_run(cfg, tmp_path / "straight", resume=False, overwrite=False)
    assert [straight.settings.lr_factor(k) for k in range(8)] == [1, 1, 1, 1, 1, 0.75, 0.5, 0.25]
    seen, step = [], straight.train_step

    def recording_step():
        values = step()
        seen.append(straight.opt_d.param_groups[0]["lr"])  # the rate this step used
        return values

    straight.train_step = recording_step
    straight.fit(tmp_path / "straight")
    d_lr = cfg.train.d_optim.lr
    assert seen == pytest.approx([d_lr] * 5 + [0.75 * d_lr, 0.5 * d_lr, 0.25 * d_lr])
    # stopped at step 4 and resumed: the same schedule, the same weights
    split = start_run(cfg, tmp_path / "split", resume=False, overwrite=False)
    for _ in range(4):
        split.train_step()
    split.save(tmp_path / "split" / "checkpoints")
    resumed = start_run(cfg, tmp_path / "split", resume=True, overwrite=False)
    resumed.fit(tmp_path / "split")
    for name, value in straight.generator.state_dict().items():
        assert torch.equal(value, resumed.generator.state_dict()[name]), name


@pytest.mark.parametrize("loss", ["bce", "hinge", "lsgan", "wgan-gp"])
def test_every_loss_trains(run_cli, cwd_root, tmp_path, loss):
    extra = {"train.loss.name": loss, "train.steps": 4, "log.log_every": 2, "train.loss.r1_gamma": 1.0}
    if loss == "wgan-gp":
        extra["model.discriminator.batch_norm"] = "false"
    code, _, err = _train(run_cli, tmp_path / loss, **extra)
    assert code == 0, err
    last = json.loads((tmp_path / loss / "log.jsonl").read_text().splitlines()[-1])
    assert "d_r1" in last and (("d_gp" in last) == (loss == "wgan-gp"))
    assert all(v == v for v in last.values())  # no NaN


def test_conditional_resnet_on_glyphs(run_cli, cwd_root, tmp_path):
    code, _, err = _train(run_cli, tmp_path / "c", **{
        "data.name": "glyphs", "data.conditional": "true", "model.generator.arch": "resnet",
        "model.discriminator.arch": "resnet", "model.discriminator.spectral_norm": "true",
        "model.discriminator.batch_norm": "false", "train.loss.name": "hinge", "train.steps": 3,
    })
    assert code == 0, err
    meta = json.loads(next((tmp_path / "c" / "checkpoints").glob("*.json")).read_text())
    assert meta["generator_spec"]["num_classes"] == 62 and meta["class_names"][10] == "A"


def test_dry_run_prints_resolved_config(run_cli, cwd_root, tmp_path):
    code, out, _ = _train(run_cli, tmp_path / "dry", "--dry-run")
    assert code == 0 and "batch_size: 8" in out and "name: digits" in out
    assert not (tmp_path / "dry").exists()


@pytest.mark.parametrize("override,message", [
    ("train.loss.name=hing", "train.loss.name: unknown 'hing'; valid: bce, nonsaturating, hinge, lsgan, wgan-gp"),
    ("train.stepz=3", "train.stepz: unknown key; valid keys: steps,"),
    ("train.steps=many", "train.steps: Input should be a valid integer"),
    ("data.name=mnist", "data.name: unknown 'mnist'; valid: glyphs, digits, folder, npz"),
    ("model.generator.arch=vit", "model.generator.arch: unknown 'vit'; valid: dcgan, resnet"),
    ("train.loss.name=wgan-gp", "model.discriminator.batch_norm: must be false with wgan-gp"),
    ("data.name=folder", "data.path: dataset 'folder' needs a path"),
    ("train.batch_size=5000", "train.batch_size: 5000 is larger than the dataset"),
    ("model.generator.head_residual=8", "model.generator.head_residual: only a dcgan-subpixel generator"),
])
def test_config_errors_exit_2_with_one_line_and_no_run(run_cli, cwd_root, tmp_path, override, message):
    out = tmp_path / "bad"
    code, _, err = run_cli("train", "--config", "configs/glyph_teacher.yaml", "--out", out,
                           *set_args(tiny_overrides()), "--set", override)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_malformed_yaml_and_missing_config(run_cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {steps: 3\n")
    code, _, err = run_cli("train", "--config", bad, "--out", tmp_path / "r")
    assert code == 2 and "not valid YAML" in err and str(bad) in err
    code, _, err = run_cli("train", "--config", tmp_path / "nope.yaml", "--out", tmp_path / "r")
    assert code == 2 and "nope.yaml does not exist" in err
    assert not (tmp_path / "r").exists()


def test_existing_run_is_refused_then_overwritten(run_cli, cwd_root, tmp_path):
    out = tmp_path / "run"
    assert _train(run_cli, out, **{"train.steps": 2, "log.log_every": 1})[0] == 0
    before = (out / "log.jsonl").read_text()
    code, _, err = _train(run_cli, out, **{"train.steps": 2})
    assert code == 2 and "--resume" in err and "--overwrite" in err
    assert (out / "log.jsonl").read_text() == before  # untouched
    code, _, err = _train(run_cli, out, "--overwrite", **{"train.steps": 3, "log.log_every": 1})
    assert code == 0
    assert len((out / "log.jsonl").read_text().splitlines()) == 3


def test_console_script_exit_status(tmp_path):
    """The installed entry point, as a user runs it."""
    proc = subprocess.run([sys.executable, "-m", "kdgan", "train", "--config", str(tmp_path / "x.yaml"),
                           "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("kdgan: --config:")


def test_same_config_and_seed_give_identical_weights_and_metrics(run_cli, cwd_root, tmp_path, monkeypatch, digits16_features):
    """Determinism on CPU: two runs of one config are bit-identical, and so is their evaluation."""
    monkeypatch.setenv("KDGAN_CACHE", str(tmp_path / "cache"))
    feats = digits16_features
    evals = []
    for name in ("a", "b"):
        run = tmp_path / name
        code, _, err = run_cli("train", "--config", ROOT / "configs/digits_teacher.yaml", "--out", run,
                               *set_args(tiny_overrides(**{"model.latent_dim": 8})))
        assert code == 0, err
        assert run_cli("evaluate", run, "--samples", 64, "--features", feats, "--no-profile")[0] == 0
        evals.append(json.loads((run / "eval.json").read_text())["evaluations"][-1])
    a, b = (load_file(str(tmp_path / n / "checkpoints" / "step_0000020.safetensors")) for n in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for key in ("fid", "kid", "is", "precision", "recall"):
        assert evals[0][key] == evals[1][key]


def test_deterministic_flag_selects_deterministic_kernels(cwd_root, monkeypatch):
    from kdgan.config import load_config
    from kdgan.train.build import build_trainer

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    cfg = load_config(ROOT / "configs/digits_teacher.yaml", tiny_overrides(**{"deterministic": "true"}))
    try:
        build_trainer(cfg)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False


def test_top_level_help_lists_every_command_untruncated(run_cli):
    code, out, _ = run_cli("--help")
    commands = out.split("Commands:")[1]
    assert code == 0 and "..." not in commands
    for command in ("train", "distill", "evaluate", "compare", "export", "sample", "features"):
        assert f"  {command} " in out


def test_package_metadata_uses_the_spdx_licence_string():
    """A `license = {text = ...}` table makes setuptools print a deprecation warning at install."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"


def test_compiled_training_matches_eager(run_cli, cwd_root, tmp_path):
    """train.compile (torch.compile of G and D) computes the eager step: same weights after a
    few steps, to float rounding (inductor may fuse ops in another order)."""
    small = {"model.latent_dim": 8, "model.generator.width": 4, "model.discriminator.width": 4,
             "train.steps": 3, "log.checkpoint_every": 3, "log.tensorboard": "false"}
    assert _train(run_cli, tmp_path / "eager", **small)[0] == 0
    code, _, err = _train(run_cli, tmp_path / "compiled", **small, **{"train.compile": "true"})
    assert code == 0, err
    a = load_file(tmp_path / "eager" / "checkpoints" / "step_0000003.safetensors")
    b = load_file(tmp_path / "compiled" / "checkpoints" / "step_0000003.safetensors")
    assert a.keys() == b.keys()
    for key in (k for k in a if k.startswith(("generator.", "discriminator.")) and a[k].is_floating_point()):
        assert torch.allclose(a[key], b[key], atol=1e-5), key


def test_the_log_averages_each_value_over_the_steps_that_had_it(tmp_path):
    """A term absent from some steps of a log window (the adversarial terms before
    train.adversarial_start) is averaged over the steps it was computed in."""
    from kdgan.train.runlog import RunLog

    log = RunLog(tmp_path, 0, 2, progress=False, tensorboard=False)
    log.accumulate({"mel_l1": torch.tensor(1.0)})
    log.accumulate({"mel_l1": torch.tensor(3.0), "g_adv": torch.tensor(10.0)})
    assert log.pending()[1] == {"mel_l1": 2, "g_adv": 1}  # what a checkpoint keeps for an exact resume
    log.flush(2)
    assert json.loads((tmp_path / "log.jsonl").read_text()) == {"step": 2, "mel_l1": 2.0, "g_adv": 10.0}


def test_the_progress_line_estimates_the_time_left_from_the_recent_rate(tmp_path, monkeypatch, capsys):
    """10 steps in 1 s, then 2 steps in 20 s (the GAN steps after a warm-up): 8 steps are
    left at 0.1 steps/s, 80 s; the run's mean rate (12 steps in 21 s) would say 14 s."""
    from kdgan.train import runlog

    clock = iter([0.0, 1.0, 21.0])
    monkeypatch.setattr(runlog.time, "monotonic", lambda: next(clock))
    log = runlog.RunLog(tmp_path, 0, 20, progress=True, tensorboard=False)  # stderr is not a terminal here
    for step in (10, 12):
        log.accumulate({"mel_l1": torch.tensor(1.0)})
        log.flush(step)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("(10.0 steps/s, 1 s left)") and lines[1].endswith("(0.1 steps/s, 80 s left)")

"""Quality numbers a user can trust on their own data: the feature extractor's quality gate,
self-supervised features, C2ST, and how faithfully a student follows its teacher."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, set_args, tiny_overrides
from kdgan.metrics.c2st import c2st, wilson_interval
from kdgan.train.guards import FidelityWatch


def test_wilson_interval_by_hand():
    # p = 0.5, n = 100: centre 0.5, half-width 1.96 * sqrt(0.0025 + 1.96^2 / 40000) / (1 + 1.96^2 / 100)
    low, high = wilson_interval(50, 100)
    half = 1.96 * (0.0025 + 1.96**2 / 40000) ** 0.5 / (1 + 1.96**2 / 100)
    assert low == pytest.approx(0.5 - half) and high == pytest.approx(0.5 + half)
    assert wilson_interval(100, 100)[1] == pytest.approx(1.0) and wilson_interval(100, 100)[0] < 1.0


def test_c2st_cannot_tell_one_distribution_from_itself_but_tells_a_shift():
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(600, 1, 8, 8, generator=gen).tanh() for _ in range(2))
    same = c2st(a, b, seed=0, steps=200)
    assert same["ci95"][0] <= 0.5 <= same["ci95"][1] and same["test_samples"] == 600
    shifted = c2st(a, (b + 0.4).clamp(-1, 1), seed=0, steps=200)
    assert shifted["accuracy"] > 0.9 and shifted["ci95"][0] > 0.5
    flat = c2st(a.flatten(1), (b + 0.4).clamp(-1, 1).flatten(1), seed=0, steps=200)  # any sample shape: an MLP
    assert flat["accuracy"] > 0.9
    assert c2st(a, b, seed=3, steps=50) == c2st(a, b, seed=3, steps=50)  # seeded


def test_fidelity_watch_warns_once_per_steady_rise():
    watch = FidelityWatch(patience=3, rise=1.1)
    assert [watch.observe(s, d) for s, d in enumerate([0.5, 0.3, 0.2, 0.21, 0.22])] == [None] * 5
    assert watch.observe(5, 0.21) is None  # not a steady rise
    steps = [watch.observe(6 + i, d) for i, d in enumerate([0.22, 0.23, 0.24])]  # three rises, 1.2x the best
    assert steps[:2] == [None, None] and "drifting away from its teacher" in steps[2]
    assert watch.observe(9, 0.25) is None  # said once for this rise
    watch.observe(10, 0.2)
    assert [watch.observe(11 + i, d) for i, d in enumerate([0.21, 0.22, 0.3])][-1] is not None  # a new rise


def write_folder(root, classes, per_class, rng, make):
    for c in range(classes):
        folder = root / f"class_{c}" if classes > 1 else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(make(c, rng)).save(folder / f"{i}.png")


def noise_image(c, rng):
    return rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)


def test_a_classifier_no_better_than_the_majority_class_is_refused(run_cli, tmp_path):
    """Labels that carry no information (noise images in 4 folders): the classifier cannot beat
    the majority-class rate, its features would be meaningless, and the command says so."""
    write_folder(tmp_path / "noise", 4, 100, np.random.default_rng(0), noise_image)
    out = tmp_path / "feats"
    code, _, err = run_cli("features", "train", "folder", "--path", tmp_path / "noise", "--resolution", 16,
                           "--channels", 3, "--epochs", 2, "--out", out)
    assert code == 2 and "does not clearly beat the majority-class rate 0.250" in err and "--self-supervised" in err
    assert not out.exists()
    write_folder(tmp_path / "flat", 1, 20, np.random.default_rng(0), noise_image)
    code, _, err = run_cli("features", "train", "folder", "--path", tmp_path / "flat", "--resolution", 16,
                           "--channels", 3, "--out", out)
    assert code == 2 and "has no class labels" in err and "--self-supervised" in err


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes") / "shapes"
    subprocess.run([sys.executable, ROOT / "scripts/build_shapes.py", "--out", folder, "--per-class", "40"],
                   check=True, capture_output=True)
    return folder


def test_self_supervised_features_for_a_folder_then_evaluate(run_cli, tmp_path, shapes, monkeypatch):
    monkeypatch.setenv("KDGAN_CACHE", str(tmp_path / "cache"))
    feats = tmp_path / "feats"
    code, out, err = run_cli("features", "train", "folder", "--path", shapes, "--channels", 3, "--self-supervised",
                             "--epochs", 8, "--out", feats)
    assert code == 0, err
    report = json.loads((feats / "config.json").read_text())
    assert report["objective"] == "simclr" and report["fid_ratio"] < 0.1
    assert report["real_vs_real_fid"] < report["real_vs_noise_fid"] and report["majority_rate"] == 0.25
    assert 0 <= report["knn_accuracy"] <= 1 and "10-NN held-out accuracy" in out

    run = tmp_path / "run"
    data = ["data.name=folder", f"data.path={shapes}", "data.channels=3", "data.resolution=32"]
    code, _, err = run_cli("train", "--config", ROOT / "configs/glyph_teacher.yaml", "--out", run,
                           *set_args(tiny_overrides(**{"train.steps": 4, "data.resolution": 32}) + data))
    assert code == 0, err
    code, _, err = run_cli("evaluate", run, "--samples", 32)  # no extractor ships for a user's folder
    assert code == 2 and f"kdgan features train folder --path {shapes} --resolution 32 --channels 3 " \
                         "--self-supervised --out FEATURES" in err
    code, out, err = run_cli("evaluate", run, "--samples", 64, "--features", feats, "--no-profile")
    assert code == 0, err
    result = json.loads((run / "eval.json").read_text())["evaluations"][-1]
    assert result["features_kind"] == "self-supervised" and "is" not in result  # no class posterior
    assert {"fid", "kid", "precision", "recall", "c2st"} <= set(result)
    assert {"fid", "c2st"} <= set(result["real_vs_real"])
    code, _, err = run_cli("evaluate", run, "--samples", 16, "--features", feats, "--metrics", "is")
    assert code == 2 and "self-supervised" in err


def test_distilled_runs_report_their_fidelity_to_the_teacher(run_cli, tmp_path, monkeypatch):
    """At each sample grid (events.jsonl) and in evaluate: the student's distance to the
    teacher on the same inputs, checked against a direct computation."""
    from kdgan.config import validate
    from kdgan.loading import load_gan
    from kdgan.tasks import build_task

    monkeypatch.setenv("KDGAN_CACHE", str(tmp_path / "cache"))
    small = {"data.resolution": 32, "model.latent_dim": 8, "model.generator.width": 4, "model.discriminator.width": 4}
    teacher = tmp_path / "teacher"
    code, _, err = run_cli("train", "--config", ROOT / "configs/digits_teacher.yaml", "--out", teacher,
                           *set_args(tiny_overrides(**{**small, "train.steps": 2, "log.checkpoint_every": 2})))
    assert code == 0, err
    student = tmp_path / "student"
    code, _, err = run_cli("distill", "--config", ROOT / "configs/distill_l1.yaml", "--teacher", teacher,
                           "--out", student, *set_args(tiny_overrides(**{
                               **small, "train.steps": 6, "log.sample_every": 2, "data.name": "digits",
                               "log.checkpoint_every": 2, "log.eval_checkpoints": "true", "log.eval_samples": 40,
                               "distill.student.width_multiplier": 0.5, "distill.discriminator.width_multiplier": 1.0})))
    assert code == 0, err
    events = [e for e in map(json.loads, (student / "events.jsonl").read_text().splitlines()) if "teacher_l1" in e]
    assert [e["step"] for e in events] == [2, 4, 6]
    assert all(e["teacher_l1"] > 0 and e["teacher_feature_l2"] > 0 for e in events)  # digits features ship
    during = json.loads((student / "eval.json").read_text())["evaluations"]  # log.eval_checkpoints
    assert [e["step"] for e in during] == [2, 4, 6] and all(e["fidelity"]["fid"] >= 0 for e in during)
    # fid/kid only: C2ST trains a classifier for 400 steps and has its own tests above
    code, out, err = run_cli("evaluate", student, "--samples", 40, "--no-profile", "--metrics", "fid,kid")
    assert code == 0 and "fidelity to the teacher" in out, err
    fidelity = json.loads((student / "eval.json").read_text())["evaluations"][-1]["fidelity"]

    cfg = validate(json.loads(next((student / "checkpoints").glob("*.json")).read_text())["config"])
    inputs = build_task(cfg).fixed_inputs(40, 0)
    with torch.no_grad():
        want = (load_gan(student).generator(*inputs) - load_gan(teacher).generator(*inputs)).abs().mean()
    assert fidelity["l1"] == pytest.approx(float(want), rel=1e-5) and fidelity["samples"] == 40
    assert fidelity["fid"] >= 0
    assert run_cli("evaluate", teacher, "--samples", 40, "--no-profile", "--metrics", "fid,kid")[0] == 0
    code, _, err = run_cli("compare", teacher, student, "--out", tmp_path / "report")
    assert code == 0, err
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| L1 to teacher | FID to teacher |" in md and "![quality](quality.png)" in md

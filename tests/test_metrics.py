"""Quality metrics against closed forms and constructed cases; efficiency against hand counts."""

import json
import os
import re
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy import linalg
from PIL import Image
from torch import nn

from conftest import ROOT, set_args, tiny_overrides
from kdgan.data import load_dataset
from kdgan.tasks.image.generation import ImageGeneration
from kdgan.metrics.classifier import ClassifierSpec, FeatureClassifier
from kdgan.metrics.efficiency import (count_params, macs_per_sample, peak_memory_bytes, profile_generator,
                                     side_by_side_speedup)
from kdgan.metrics.evaluate import evaluate_generator, stats_key
from kdgan.metrics.quality import fid, inception_score, kid, precision_recall, real_vs_real


# the evaluation commands' tests score every sample metric but C2ST, whose 400-step classifier
# would cost each evaluation seconds; C2ST has its own tests (test_trust)
NO_C2ST = "fid,kid,is,pr"


def closed_form_fid(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().numpy(), b.double().numpy()
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_of_identical_sets_is_zero():
    x = torch.randn(2000, 16, generator=torch.Generator().manual_seed(0))
    assert abs(fid(x, x)) < 1e-6


def test_fid_of_shifted_gaussians_matches_the_closed_form():
    g = torch.Generator().manual_seed(1)
    scale = torch.linspace(0.5, 2.0, 8)
    a = torch.randn(20000, 8, generator=g) * scale
    b = torch.randn(20000, 8, generator=g) * scale + torch.tensor([2.0, 0, 0, 0, 0, 0, 0, 1.0])
    got = fid(a, b)
    assert got == pytest.approx(closed_form_fid(a, b), rel=1e-4)
    assert got == pytest.approx(5.0, rel=0.02)  # population value: |mu_a - mu_b|^2, same covariance


def test_kid_is_unbiased():
    g = torch.Generator().manual_seed(2)
    values = [kid(torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g), seed=i, subsets=20,
                  subset_size=100)[0] for i in range(20)]
    mean, sem = np.mean(values), np.std(values) / np.sqrt(len(values))
    assert abs(mean) < 3 * sem + 1e-4  # an unbiased estimator centres on 0 for equal distributions
    assert min(values) < 0  # ... so it goes negative, which a biased (V-statistic) one would not
    shifted = kid(torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g) + 1, subset_size=100)[0]
    assert shifted > 20 * max(abs(mean), sem)


def test_kid_is_deterministic_for_a_seed():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(200, 4, generator=g), torch.randn(200, 4, generator=g)
    assert kid(a, b, seed=5, subset_size=50) == kid(a, b, seed=5, subset_size=50)


def test_inception_score_bounds():
    confident = torch.eye(10).repeat(50, 1) * 50  # every class equally often, each sample certain
    assert inception_score(confident, splits=1)[0] == pytest.approx(10.0, rel=1e-3)  # = number of classes
    uniform = torch.zeros(500, 10)  # no confidence at all
    assert inception_score(uniform)[0] == pytest.approx(1.0)


def test_precision_recall_on_constructed_manifolds():
    g = torch.Generator().manual_seed(4)
    real = torch.rand(400, 2, generator=g)  # the unit square
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    left = real[real[:, 0] < 0.5]
    far = torch.rand(len(left), 2, generator=g) + 10.0
    # half the fakes are the real points of the left half (inside), half are far away: precision 0.5
    precision, recall = precision_recall(real, torch.cat([left, far]))
    assert precision == 0.5
    assert len(left) / len(real) <= recall < 0.7  # they cover the left half, not the right
    collapsed = real[:1].repeat(400, 1) + 1e-3 * torch.rand(400, 2, generator=g)
    p, r = precision_recall(real, collapsed)
    assert p == 1.0 and r < 0.05  # mode collapse: faithful but no coverage


def _tiny_generator():
    from kdgan.nets import GeneratorSpec, build_generator

    torch.manual_seed(0)
    return build_generator(GeneratorSpec(arch="dcgan", width=4, latent_dim=8, resolution=16, channels=1)).eval()


def test_metrics_do_not_depend_on_batch_size(tmp_path, monkeypatch):
    monkeypatch.setenv("KDGAN_CACHE", str(tmp_path))
    ds = load_dataset("digits", None, 16, 1)
    task = ImageGeneration(ds, 8, conditional=False)
    classifier = FeatureClassifier(ClassifierSpec(dataset="digits", resolution=16, channels=1, num_classes=10)).eval()
    g = _tiny_generator()
    a = evaluate_generator(g, task, classifier, 120, ["fid", "kid", "is", "pr"], batch_size=7)
    b = evaluate_generator(g, task, classifier, 120, ["fid", "kid", "is", "pr"], batch_size=120)
    for k in ("fid", "kid", "is", "precision", "recall"):
        assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), k
    assert len(list((tmp_path / "stats").glob("*.safetensors"))) == 1  # reals extracted once, then cached
    # the real halves' scores too, kept beside them; they equal a direct computation
    assert len(list((tmp_path / "stats").glob("*_real_vs_real_0_fid-is-kid-pr.json"))) == 1
    real = load_file(str(next((tmp_path / "stats").glob("*.safetensors"))))["features"]
    assert a["real_vs_real"] == b["real_vs_real"] == real_vs_real(real, ["fid", "kid", "is", "pr"], 0, classifier.head)


def test_c2st_of_the_real_halves_is_kept_and_equals_a_direct_computation(tmp_path, monkeypatch):
    from kdgan.data.images import to_float
    from kdgan.metrics.c2st import c2st
    from kdgan.metrics.evaluate import kept_c2st_of_halves

    monkeypatch.setenv("KDGAN_CACHE", str(tmp_path))
    reals = torch.randint(0, 256, (40, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    first = kept_c2st_of_halves(reals, seed=1)
    assert len(list((tmp_path / "stats").glob("*_c2st_halves_1_*.json"))) == 1
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(1))
    direct = c2st(to_float(reals[perm[:20]]), to_float(reals[perm[20:]]), seed=1)
    monkeypatch.setattr("kdgan.metrics.evaluate.c2st", lambda *a, **k: pytest.fail("recomputed"))
    assert kept_c2st_of_halves(reals, seed=1) == first == json.loads(json.dumps(direct))  # read back


def test_cache_key_changes_with_every_input():
    ds16 = load_dataset("digits", None, 16, 1)
    classifier = FeatureClassifier(ClassifierSpec(dataset="digits", resolution=16, channels=1, num_classes=10))
    base = stats_key(ds16.images, classifier)
    assert stats_key(ds16.images.clone(), classifier) == base  # same pixels, same weights
    changed = ds16.images.clone()
    changed[0, 0, 0, 0] += 1
    assert stats_key(changed, classifier) != base  # one pixel
    assert stats_key(ds16.images[:-1], classifier) != base  # sample count
    assert stats_key(load_dataset("digits", None, 32, 1).images, classifier) != base  # resolution
    assert stats_key(load_dataset("digits", None, 16, 3).images, classifier) != base  # channels
    with torch.no_grad():
        classifier.head.bias[0] += 1e-3
    assert stats_key(ds16.images, classifier) != base  # extractor weights


def test_macs_and_params_by_hand():
    class Known(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 3 * 4 * 4)  # 8*48 MACs
            self.conv = nn.Conv2d(3, 5, 3, padding=1)  # 3*5*9 MACs per output pixel, 16x16 pixels

        def forward(self, z):
            return self.conv(nn.functional.interpolate(self.fc(z).view(-1, 3, 4, 4), scale_factor=4))

    net = Known()
    assert macs_per_sample(net, (torch.randn(6, 8),)) == 8 * 48 + 3 * 5 * 9 * 16 * 16
    assert count_params(net) == 8 * 48 + 48 + 3 * 5 * 9 + 5


def test_peak_memory_grows_with_batch():
    g = _tiny_generator()
    small, big = peak_memory_bytes(g, (torch.randn(1, 8),)), peak_memory_bytes(g, (torch.randn(32, 8),))
    # the largest live activations: at least the 8x8 map of stage 0 (width 4 -> 4 ch * 64 px * 4 B)
    assert small >= 4 * 64 * 4 and big > 16 * small


def test_profile_has_every_field():
    prof = profile_generator(_tiny_generator(), lambda n: (torch.randn(n, 8),), batch_sizes=(1, 4), repeats=3)
    assert set(prof["latency"]) == {"1", "4"} and prof["latency"]["4"]["median_s"] > 0
    assert prof["params"] > 0 and prof["macs_per_sample"] > 0 and prof["device"] == "cpu"
    ort = prof["onnxruntime_latency"]  # the exported file under onnxruntime, side by side with eager
    assert set(ort) == {"1", "4"} and ort["4"]["median_s"] > 0


def test_side_by_side_speedup_alternates_both_runtimes():
    """Structure only (timings are not asserted): each runtime gets a median ratio with its
    spread, over the requested rounds; a model against itself is about 1x in both."""
    g = _tiny_generator()
    out = side_by_side_speedup(g, g, lambda n: (torch.randn(n, 8),), batch=4, rounds=3, repeats=2)
    assert set(out) == {"pytorch", "onnxruntime"}
    for r in out.values():
        assert r["rounds"] == 3 and r["batch"] == 4 and 0 < r["min"] <= r["speedup"] <= r["max"]


def test_an_unchanged_generator_is_exported_to_onnx_once():
    from kdgan.metrics.efficiency import _exported

    calls = []
    export = lambda g, inputs, names: calls.append(1) or len(calls)  # noqa: E731
    g, x = _tiny_generator(), (torch.randn(2, 8),)
    assert _exported(g, x, ["input_0"], export) == _exported(g, x, ["input_0"], export) == 1
    assert _exported(g, (torch.randn(5, 8),), ["input_0"], export) == 1  # another batch size: same graph
    with torch.no_grad():
        next(g.parameters()).add_(1.0)  # an optimiser step changes the weights in place
    assert _exported(g, x, ["input_0"], export) == 2
    assert _exported(_tiny_generator(), x, ["input_0"], export) == 3  # another network


def test_evaluate_from_the_cli(run_cli, tmp_path, monkeypatch, digits16_features):
    monkeypatch.setenv("KDGAN_CACHE", str(tmp_path / "cache"))
    feats = digits16_features
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--config", ROOT / "configs/digits_teacher.yaml", "--out", run,
                           *set_args(tiny_overrides(**{"model.latent_dim": 8, "train.steps": 10})))
    assert code == 0, err
    code, out, err = run_cli("evaluate", run, "--samples", 64, "--features", feats, "--metrics", NO_C2ST)
    assert code == 0, err
    assert "fid" in out and "64 samples vs 1797 real" in out
    report = json.loads((run / "eval.json").read_text())["evaluations"]
    assert [e["step"] for e in report] == [10]
    e = report[0]
    assert {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "profile"} <= set(e)
    assert e["fake_samples"] == 64 and e["real_samples"] == 1797
    # an exported file is scored as its runtime runs it: the same numbers within export error
    exported = tmp_path / "exported"
    assert run_cli("export", run, "--format", "onnx", "--out", exported)[0] == 0
    code, out, err = run_cli("evaluate", exported, "--samples", 64, "--features", feats, "--metrics", NO_C2ST)
    assert code == 0, err
    onnx_eval = json.loads((exported / "eval.json").read_text())["evaluations"][0]
    assert onnx_eval["step"] == 10 and onnx_eval["checkpoint"].endswith("generator.onnx")
    assert abs(onnx_eval["fid"] - e["fid"]) < 1e-3 * max(1.0, e["fid"])
    assert set(onnx_eval["profile"]["onnxruntime_latency"]) == {"1", "64"}
    code, _, err = run_cli("compare", run, exported, "--out", tmp_path / "report")
    assert code == 0, err
    code, _, err = run_cli("evaluate", run, "--metrics", "fid,bogus")
    assert code == 2 and "bogus" in err and "valid: fid, kid, is, pr" in err
    code, _, err = run_cli("evaluate", run, "--samples", 10)  # 16px run, shipped digits extractor is 32px
    assert code == 2 and "--features" in err
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # as on a machine without torch-fidelity
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", None)
    code, _, err = run_cli("evaluate", run, "--samples", 10, "--features", "inception")
    assert code == 2 and "--features inception" in err and len(err.strip().splitlines()) == 1


def test_compare_writes_a_report(run_cli, tmp_path, monkeypatch, digits16_features):
    monkeypatch.setenv("KDGAN_CACHE", str(tmp_path / "cache"))
    feats = digits16_features
    runs = []
    for name, width in (("teacher", 8), ("student", 4)):
        run = tmp_path / name
        code, _, err = run_cli("train", "--config", ROOT / "configs/digits_teacher.yaml", "--out", run,
                               *set_args(tiny_overrides(**{"model.latent_dim": 8, "train.steps": 12,
                                                           "model.generator.width": width,
                                                           "log.checkpoint_every": 4,
                                                           "log.keep_checkpoints": 5})))
        assert code == 0, err
        for ckpt in sorted((run / "checkpoints").glob("*.json"))[:2]:  # two points: too few for a curve
            assert run_cli("evaluate", ckpt, "--samples", 32, "--features", feats, "--metrics", NO_C2ST)[0] == 0
        runs.append(run)
    code, out, err = run_cli("compare", *runs, "--out", tmp_path / "report")
    assert code == 0, err
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| teacher | 8 | 32 |" in md and "| student | 8 | 32 |" in md and "1.0x" in md
    assert "| real vs real (two halves of 898) |  | 898 |" in md  # every metric's scale, from the data itself
    assert "No quality-over-training plot" in md and not (tmp_path / "report" / "quality.png").exists()
    assert "KID: unbiased squared MMD" in md and "3-nearest-neighbour balls" in md
    assert re.search(r"held-out classification accuracy \d\.\d{3}\)", md)  # not 0.9384288747346072
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1 and "<table>" in page and "`" not in page
    assert "<code>log.eval_checkpoints: true</code>" in page
    for run in runs:  # a third point: the curve is drawn
        assert run_cli("evaluate", run, "--samples", 32, "--features", feats, "--metrics", NO_C2ST)[0] == 0
    code, out, err = run_cli("compare", *runs, "--out", tmp_path / "report")
    assert code == 0, err
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "No quality-over-training plot" not in page
    for png in ("quality.png", "samples.png"):
        assert Image.open(tmp_path / "report" / png).size[0] > 100
    code, _, err = run_cli("compare", feats, "--out", tmp_path / "r2")
    assert code == 2 and "kdgan evaluate" in err


def test_checkpoints_evaluated_during_training_without_changing_it(run_cli, tmp_path, monkeypatch, digits16_features):

    monkeypatch.setenv("KDGAN_CACHE", str(tmp_path / "cache"))
    feats = digits16_features
    runs = {}
    for name, extra in (("plain", {}), ("evaluated", {"log.eval_checkpoints": "true", "log.eval_samples": 64,
                                                       "log.eval_features": str(feats)})):
        runs[name] = tmp_path / name
        code, _, err = run_cli("train", "--config", ROOT / "configs/digits_teacher.yaml", "--out", runs[name],
                               *set_args(tiny_overrides(**{"model.latent_dim": 8, **extra})))
        assert code == 0, err
    entries = json.loads((runs["evaluated"] / "eval.json").read_text())["evaluations"]
    assert [e["step"] for e in entries] == [10, 20] and all("fid" in e and "kid" in e for e in entries)
    assert entries[-1]["checkpoint"].endswith("step_0000020.json")
    a, b = (load_file(str(runs[n] / "checkpoints" / "step_0000020.safetensors")) for n in ("plain", "evaluated"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # evaluation draws no training randomness
    code, _, err = run_cli("train", "--config", ROOT / "configs/digits_teacher.yaml", "--out", tmp_path / "bad",
                           *set_args(tiny_overrides(**{"log.eval_checkpoints": "true"})))
    assert code == 2 and "log.eval_features" in err and not (tmp_path / "bad").exists()


def test_report_shows_gpu_latency_columns_only_when_profiled_on_a_gpu(monkeypatch):
    """The profiles come from profile_generator itself; the accelerator is faked by the CPU
    (as Lightning's tests fake devices), so the GPU branch's output reaches the report as it
    would on a machine with one. Timings are not asserted: only that the columns are the
    profiles' numbers."""
    from kdgan.metrics.efficiency import profile_generator
    from kdgan.nets import GeneratorSpec, build_generator
    from kdgan.report import table_rows

    def profiles(accelerated: bool) -> list[dict]:
        calls = []

        def accelerator(check_available=False):  # the CPU poses as the accelerator, one level deep
            calls.append(1)
            return torch.device("cpu") if accelerated and len(calls) % 2 else None

        monkeypatch.setattr(torch.accelerator, "current_accelerator", accelerator)
        runs = []
        for name, width in (("teacher", 8), ("student", 2)):
            g = build_generator(GeneratorSpec(arch="dcgan", width=width, latent_dim=8, resolution=16, channels=1))
            profile = profile_generator(g, lambda n: (torch.randn(n, 8),), repeats=2, onnx=False)
            entry = {"step": 1, "fid": 1.0, "fake_samples": 8, "profile": profile}
            runs.append({"name": name, "latest": entry, "history": [entry]})
        return runs

    headers, _ = table_rows(profiles(accelerated=False))
    assert "GPU ms (b=64)" not in headers
    runs = profiles(accelerated=True)
    headers, rows = table_rows(runs)
    assert headers[-2:] == ["GPU ms (b=64)", "GPU speed-up (b=64)"]
    gpu = [r["latest"]["profile"]["gpu"]["latency"]["64"]["median_s"] for r in runs]
    assert rows[1][-2:] == [f"{gpu[1] * 1e3:.3f}", f"{gpu[0] / gpu[1]:.1f}x"]


def test_evaluate_writes_no_profiler_lines_to_stderr(tmp_path, digits16_features):
    """The CPU profiler's tracing library prints `USDT: ... profiler_start` to file descriptor
    2 at each session; a user's terminal (and `make demo`'s output) must not show them."""
    import subprocess

    run = tmp_path / "run"
    kdgan = [sys.executable, "-m", "kdgan"]
    subprocess.run([*kdgan, "train", "--config", ROOT / "configs/digits_teacher.yaml", "--out", run,
                    *set_args(tiny_overrides(**{"train.steps": 2, "log.checkpoint_every": 2}))], check=True,
                   capture_output=True)
    features = digits16_features
    done = subprocess.run([*kdgan, "evaluate", run, "--samples", "16", "--features", features, "--metrics", "fid"],
                          capture_output=True,
                          text=True, env={**os.environ, "KDGAN_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert "profile" in json.loads((run / "eval.json").read_text())["evaluations"][0]
    assert "USDT" not in done.stderr and "profiler_start" not in done.stderr, done.stderr

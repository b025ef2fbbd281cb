"""The benchmark commands the README quotes still run end to end (their --quick sizes), so a
change to the core that breaks one fails here rather than at the next measurement."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def _run(script: str, tmp_path, *args: str) -> dict:
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--work",
                           str(tmp_path / "work"), "--out", str(out), *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text())


def test_glyph_benchmark_quick(tmp_path):
    result = _run("glyph_benchmark.py", tmp_path)
    assert {"teacher", "variants", "profiles", "runs"} <= set(result)
    assert all(r["fid"] > 0 for r in result["runs"])
    assert result["profiles"]["teacher"]["params"] > max(p["params"] for k, p in result["profiles"].items()
                                                         if k != "teacher")


def test_super_resolution_benchmark_quick(tmp_path):
    result = _run("i2i_benchmark.py", tmp_path, "--tasks", "sr")
    sr = result["tasks"]["sr"]
    assert {"teacher", "bicubic", "students"} <= set(sr)
    assert all(run["task"] == "sr" and run["psnr"] > 10 for run in result["runs"])


def test_vocoder_benchmark_quick(tmp_path):
    result = _run("vocoder_benchmark.py", tmp_path, "--kinds", "scratch,pruned")
    assert {"scratch", "pruned"} == set(result["students"]) and len(result["runs"]) == 2
    assert all(0 < run["mel_l1"] and -0.5 <= run["pesq"] <= 4.5 and "fidelity" in run for run in result["runs"])
    eff = result["efficiency"]
    assert eff["teacher"]["macs_per_audio_second"] > eff["student"]["macs_per_audio_second"] > 0
    assert set(eff["student"]["real_time_factor"]) == {f"{r}_{t}_threads" for r in ("pytorch", "onnxruntime")
                                                       for t in (1, 2)}
    assert result["teacher"]["griffin_lim"]["pesq"] > 2  # the baseline is scored beside the teacher


def test_enhance_benchmark_quick(tmp_path):
    result = _run("enhance_benchmark.py", tmp_path, "--kinds", "scratch,pruned")
    assert {"scratch", "pruned"} == set(result["students"]) and len(result["runs"]) == 2
    assert all(-0.5 <= run["pesq"] <= 4.5 and "fidelity" in run and "by_noise" in run for run in result["runs"])
    assert set(result["teacher"]["baselines"]) == {"noisy input", "spectral subtraction", "Wiener filter"}
    eff = result["efficiency"]
    assert eff["teacher"]["macs_per_audio_second"] > eff["student"]["macs_per_audio_second"] > 0
    assert "teacher_beats_Wiener_filter_in_pesq" in result["targets"]


def test_convert_cycle_benchmark_quick(tmp_path):
    # The unparallel benchmark runs the parallel one's scoring and table (convert_benchmark.py), and
    # its scratch students train by the cycle teacher's recipe; --no-profile: its speed measurement
    # is the vocoder benchmark's, on the same mel inputs (tested above)
    result = _run("convert_cycle_benchmark.py", tmp_path, "--kinds", "scratch,pruned", "--no-profile")
    assert {"scratch", "pruned"} == set(result["students"]) and len(result["runs"]) == 2
    assert all(run["mcd"] > 0 and -1 <= run["similarity"] <= 1 for run in result["runs"])
    assert "fidelity" in next(r for r in result["runs"] if r["kind"] == "pruned")
    scratch = json.loads((tmp_path / "work" / "scratch_seed0" / "checkpoints" / "step_0000004.json").read_text())
    assert scratch["generator_spec"]["arch"] == "cycle" and scratch["config"]["train"]["cycle"] is not None
    assert result["teacher"]["baseline"]["mcd"] > 0 and "pruned_closes_half_the_mcd_gap" in result["targets"]
    assert result["efficiency"] is None


def test_text_benchmark_quick(tmp_path, monkeypatch):
    monkeypatch.setenv("KDGAN_CACHE", str(tmp_path / "cache"))  # the teacher's translations, cached here
    result = _run("text_benchmark.py", tmp_path, "--kinds", "scratch,seq_kd,pruned")
    assert {"scratch", "seq_kd", "pruned"} == set(result["students"]) and len(result["runs"]) == 3
    assert all(0 <= run["bleu"] <= 100 and run["nll"] > 0 and "copy_the_source" in run for run in result["runs"])
    assert all("bleu_to_teacher" in run for run in result["runs"] if run["kind"] != "scratch")
    eff = result["efficiency"]
    assert eff["teacher"]["params"] > eff["student"]["params"] > 0
    assert {"greedy_batch_1_pytorch", "greedy_batch_1_onnxruntime", "greedy_batch_32_onnxruntime",
            "beam_4_batch_1_pytorch"} <= set(eff["student"]["ms_per_sentence"])
    assert "best_student_bleu_at_least_scratch_plus_1.5" in result["targets"]


def test_text_benchmark_quick_on_the_style_corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("KDGAN_CACHE", str(tmp_path / "cache"))
    result = _run("text_benchmark.py", tmp_path, "--corpus", "style", "--kinds", "pruned", "--no-profile")
    assert result["settings"]["recipe"] == "style_distill.yaml"
    for run in ("teacher", "pruned_seed0"):  # --quick's tiny teacher is trained on the style corpus too
        meta = json.loads((tmp_path / "work" / run / "checkpoints" / "step_0000004.json").read_text())
        assert meta["config"]["data"]["name"] == "style_kjv_web"
    # a King James verse shares most of its words with its modern English: copying it scores far
    # above copying English as Spanish (0.3 BLEU on the full held-out split)
    assert result["teacher"]["copy_the_source"]["bleu"] > 20


def test_teacher_adversarial_phase_against_its_maximum_likelihood_control(tmp_path):
    result = _run("text_teacher_adversarial.py", tmp_path)
    assert set(result["fine_tuned"]) == {"adversarial", "mle"} and "bleu" in result["teacher"]
    for kind, start in (("adversarial", 0), ("mle", 4)):  # the control: the same 4 steps without the term
        meta = json.loads((tmp_path / "work" / f"{kind}_seed0" / "checkpoints" / "step_0000004.json").read_text())
        assert meta["config"]["train"]["adversarial_start"] == start
        assert meta["generator_spec"]["width"] == 16  # the teacher's own network, at full size
    log = (tmp_path / "work" / "adversarial_seed0" / "log.jsonl").read_text()
    assert '"g_adv"' in log and '"g_adv"' not in (tmp_path / "work" / "mle_seed0" / "log.jsonl").read_text()


def test_text_layouts_times_the_teacher_against_pruned_layouts(tmp_path):
    out = tmp_path / "layouts.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "text_layouts.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    layouts = json.loads(out.read_text())["layouts"]
    assert layouts["teacher"]["params"] > layouts["128 wide, 3 + 1 layers, x3"]["params"] > 0
    assert all(r["ms_per_token"] > 0 and r["min"] <= r["speedup"] <= r["max"] for r in layouts.values())


def test_cyclegan_benchmark_quick(tmp_path):
    result = _run("cyclegan_benchmark.py", tmp_path)
    assert set(result["students"]) == {"scratch", "distilled", "pruned"} and len(result["runs"]) == 3
    assert all(r["fid"] > 0 and 0 <= r["char_accuracy"] <= 1 for r in result["runs"])
    scratch = json.loads((tmp_path / "work" / "scratch_seed0" / "checkpoints" / "step_0000002.json").read_text())
    assert scratch["generator_spec"]["arch"] == "cycle"  # CycleGAN's own losses, at the student's width
    assert result["teacher"]["baselines"]["the input (serif, untranslated)"]["char_accuracy"] > 0.85
    eff = result["efficiency"]
    assert eff["teacher"]["macs_per_image"] > eff["student"]["macs_per_image"] > 0
    assert {"pytorch", "onnxruntime"} == set(eff["batch_64"]) and "macs_ratio_at_least_10" in result["targets"]


def test_finished_only_collects_the_finished_runs_and_trains_none(tmp_path):
    from argparse import Namespace

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from vocoder_benchmark import student_runs

    done = tmp_path / "scratch_seed0"
    (done / "checkpoints").mkdir(parents=True)
    (done / "checkpoints" / "step_0000004.json").write_text("{}")
    (done / "train_seconds.json").write_text("12.5")
    (tmp_path / "scratch_seed1" / "checkpoints").mkdir(parents=True)  # started, never finished
    args = Namespace(kinds="scratch", seeds="0,1,2", work=tmp_path, steps=4, reuse=True, finished_only=True,
                     kind_overrides={"scratch": []}, teacher="teacher", samples=0)
    rows = student_runs(args, "no_such_recipe.yaml", [], lambda run, out, samples, reuse: {"bleu": 1.0})
    assert [(r["seed"], r["train_seconds"]) for r in rows] == [(0, 12.5)]


def test_add_to_keeps_the_earlier_runs_and_replaces_a_rerun_seed(tmp_path):
    import argparse

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from vocoder_benchmark import with_earlier

    earlier = {"teacher": {"bleu": 24.5}, "efficiency": {"speedup": 3.7}, "settings": {"seeds": "0,1"},
               "runs": [{"kind": "scratch", "seed": 0, "bleu": 14.0}, {"kind": "pruned", "seed": 0, "bleu": 23.0},
                        {"kind": "pruned", "seed": 1, "bleu": 23.5}]}
    (tmp_path / "earlier.json").write_text(json.dumps(earlier))
    args = argparse.Namespace(add_to=tmp_path / "earlier.json")
    new = [{"kind": "pruned", "seed": 1, "bleu": 23.9}, {"kind": "pruned", "seed": 2, "bleu": 23.4},
           {"kind": "pruned_mle", "seed": 0, "bleu": 22.0}]
    teacher, rows, eff = with_earlier(args, None, new, None)
    assert teacher == {"bleu": 24.5} and eff == {"speedup": 3.7}
    assert [(r["kind"], r["seed"], r["bleu"]) for r in rows] == [
        ("scratch", 0, 14.0), ("pruned", 0, 23.0), ("pruned", 1, 23.9), ("pruned", 2, 23.4), ("pruned_mle", 0, 22.0)]
    assert with_earlier(argparse.Namespace(add_to=None), {"bleu": 1}, new, None) == ({"bleu": 1}, new, None)


def test_equal_time_steps_come_from_the_work_folder_else_from_the_added_to_results(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from vocoder_benchmark import equal_time_steps

    earlier = {"runs": [{"kind": "scratch", "seed": 0, "steps": 100, "train_seconds": 10.0},
                        {"kind": "scratch", "seed": 1, "steps": 100, "train_seconds": 30.0},
                        {"kind": "pruned", "seed": 0, "steps": 100, "train_seconds": 50.0},
                        {"kind": "pruned", "seed": 1, "steps": 50, "train_seconds": 1.0}]}  # other steps: left out
    (tmp_path / "earlier.json").write_text(json.dumps(earlier))
    work = tmp_path / "work"
    (work / "pruned_seed0").mkdir(parents=True)
    (work / "pruned_seed0" / "train_seconds.json").write_text("5.0")  # no scratch run here: not mixed in
    assert equal_time_steps(work, 100, reuse=False, earlier=tmp_path / "earlier.json") == 250  # 100 * 50 / 20
    assert equal_time_steps(work, 100, reuse=True) == 250  # kept in work
    (work / "scratch_equal_time_steps.json").unlink()
    (work / "scratch_seed0").mkdir()
    (work / "scratch_seed0" / "train_seconds.json").write_text("4.0")
    assert equal_time_steps(work, 100, reuse=False, earlier=tmp_path / "earlier.json") == 125  # 100 * 5 / 4

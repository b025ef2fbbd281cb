"""The speech enhancement benchmark (issue #18): the shipped wave U-Net teacher against
students with 10x fewer MACs (configs/enhance_distill.yaml: width 10), trained the same number
of steps from scratch, with distillation, and with pruning init + distillation, over several
seeds; quality on the held-out mixtures (the held-out voice beside) with the noisy input,
spectral subtraction and a Wiener filter as baselines, and the efficiency of teacher and
student measured side by side.

    python benchmarks/enhance_benchmark.py                      # 3 seeds, the kinds below, the recipe's steps
    python benchmarks/enhance_benchmark.py --seeds 0 --kinds scratch,pruned --no-profile --threads 1
    python benchmarks/enhance_benchmark.py --quick              # smoke run, about a minute

Student kinds (--kinds) and --reuse, --work, the lanes: as in vocoder_benchmark.py, whose
training and timing helpers this script uses. Writes
benchmarks/results/enhance_benchmark.json (or _quick) and prints the README table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vocoder_benchmark import (AUDIO_SECONDS, KINDS, ROOT, efficiency, efficiency_and_targets,  # noqa: E402
                               efficiency_targets, equal_time_steps, mean_std, train)

METRICS = ("pesq", "stoi", "si_sdr")
BASELINES = ("noisy input", "spectral subtraction", "Wiener filter")


def quality(source: str | Path, out: Path, samples: int, reuse: bool = False) -> dict:
    from kdgan.metrics.evaluate import evaluate_source

    path = out / "eval.json"
    earlier = json.loads(path.read_text())["evaluations"][-1] if reuse and path.is_file() else None
    if earlier is None or (samples and earlier.get("clips") != samples):
        earlier = evaluate_source(source, samples, list(METRICS), None, seed=0, profile=False, out=out)
    keep = {k: earlier[k] for k in (*METRICS, "clips", "step") if k in earlier}
    for part in ("held_out_voice", "fidelity"):
        if part in earlier:
            keep[part] = {k: earlier[part][k] for k in (*METRICS, "clips") if k in earlier[part]}
    keep["by_noise"] = {kind: {k: v[k] for k in METRICS} for kind, v in earlier["by_noise"].items()}
    keep["baselines"] = {name: {k: earlier["baselines"][name][k] for k in METRICS} for name in BASELINES}
    return keep


def waveforms(n: int) -> tuple[torch.Tensor]:
    """A batch of n noisy waveforms of AUDIO_SECONDS (the enhancer's input for speed measurements)."""
    return (0.1 * torch.randn(n, 1, int(AUDIO_SECONDS * 16000), generator=torch.Generator().manual_seed(0)),)


def summarise(teacher_q: dict, rows: list[dict], eff: dict | None) -> dict:
    table = {}
    for row in rows:
        entry = table.setdefault(row["kind"], {"seeds": [], "steps": row["steps"], "train_seconds": []})
        entry["seeds"].append(row["seed"])
        entry["train_seconds"].append(row["train_seconds"])
        for key in METRICS:
            entry.setdefault(f"{key}s", []).append(row[key])
            entry.setdefault(f"voice_{key}s", []).append(row["held_out_voice"][key])
    for entry in table.values():
        for key in [k for k in entry if k.endswith("s") and isinstance(entry[k], list) and k != "seeds"]:
            entry[f"{key[:-1]}_mean"], entry[f"{key[:-1]}_std"] = mean_std(entry[key])
    targets = {}
    for name in ("spectral subtraction", "Wiener filter"):
        for key in ("pesq", "si_sdr"):
            base = teacher_q["baselines"][name][key]
            targets[f"teacher_beats_{name.replace(' ', '_')}_in_{key}"] = {
                "value": teacher_q[key] - base, "target": 0, "met": teacher_q[key] > base}
    scratch = table.get("scratch")
    for kind in ("distilled", "pruned"):
        if kind in table and scratch is not None:
            gap = teacher_q["pesq"] - scratch["pesq_mean"]
            closed = (table[kind]["pesq_mean"] - scratch["pesq_mean"]) / gap if gap > 0 else None
            targets[f"{kind}_closes_half_the_pesq_gap"] = {"value": closed, "target": 0.5,
                                                          "met": closed is not None and closed >= 0.5}
    if eff is not None:
        targets.update(efficiency_targets(eff, threads=2, real_time=50))
    return {"teacher": teacher_q, "students": table, "targets": targets, "efficiency": eff}


def markdown(results: dict) -> str:
    t, eff = results["teacher"], results.get("efficiency")
    cols = (("pesq", "{:.2f}"), ("stoi", "{:.3f}"), ("si_sdr", "{:.2f}"))
    lines = ["| model | PESQ ↑ | STOI ↑ | SI-SDR dB ↑ | held-out voice: PESQ / SI-SDR | steps | train min |",
             "|---|---|---|---|---|---|---|"]
    voice = t["held_out_voice"]
    lines.append("| teacher | " + " | ".join(spec.format(t[k]) for k, spec in cols) +
                 f" | {voice['pesq']:.2f} / {voice['si_sdr']:.2f} | | |")
    for name in BASELINES:
        b = t["baselines"][name]
        lines.append(f"| {name} | " + " | ".join(spec.format(b[k]) for k, spec in cols) + " | | | |")
    for kind, e in results["students"].items():
        cell = lambda key, spec: f"{spec.format(e[f'{key}_mean'])} ± {spec.format(e[f'{key}_std'])}"  # noqa: E731
        lines.append(f"| {kind} student | " + " | ".join(cell(k, spec) for k, spec in cols) +
                     f" | {e['voice_pesq_mean']:.2f} / {e['voice_si_sdr_mean']:.2f} | {e['steps']} | "
                     f"{sum(e['train_seconds']) / len(e['train_seconds']) / 60:.0f} |")
    return "\n".join(lines + efficiency_and_targets(eff, results["targets"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized smoke run (tiny teacher trained here)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"student kinds: {', '.join(KINDS)}")
    parser.add_argument("--steps", type=int, help="student steps (default: the recipe's)")
    parser.add_argument("--teacher", default="enhance_teacher", help="shipped name, pretrained folder or run")
    parser.add_argument("--samples", type=int, default=0, help="held-out mixtures to score (0: all)")
    parser.add_argument("--threads", type=int, default=2, help="threads for training")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "benchmark_enhance")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--note", help="how the runs were made (kept in the JSON's settings)")
    parser.add_argument("--reuse", action="store_true", help="reuse the runs and evaluations already in --work")
    parser.add_argument("--no-profile", action="store_true", help="no efficiency measurements (busy machine)")
    args = parser.parse_args()
    extra: list[str] = []
    kinds = args.kinds.split(",")
    if any(k not in KINDS for k in kinds):
        sys.exit(f"--kinds: unknown {[k for k in kinds if k not in KINDS]}; valid: {', '.join(KINDS)}")
    if args.quick:
        args.steps, args.seeds, args.samples = 4, "0", 2
        extra = ["data.segment=2048", "train.batch_size=2", "model.discriminator.width=2", "task.sample_seconds=0.5",
                 "model.generator.depth=3", "model.generator.context=1"]
        args.teacher = str(train("teacher", "enhance_teacher.yaml", 4, [*extra, "model.generator.width=8"],
                                 args.work, reuse=False)["run"])
        extra.append("model.generator.width=2")  # the students
    args.steps = args.steps or yaml.safe_load((ROOT / "configs" / "enhance_distill.yaml").read_text())["train"]["steps"]
    out = args.out or ROOT / "benchmarks" / "results" / f"enhance_benchmark{'_quick' if args.quick else ''}.json"
    torch.set_num_threads(args.threads)
    started = time.time()
    teacher_q = quality(args.teacher, args.work / "teacher_eval", args.samples, args.reuse)
    print(f"teacher: {teacher_q}", flush=True)
    rows: list[dict] = []
    for kind in kinds:
        steps = equal_time_steps(args.work, args.steps, args.reuse) if kind == "scratch_equal_time" else args.steps
        for seed in (int(s) for s in args.seeds.split(",")):
            overrides = [*KINDS[kind], f"seed={seed}", f"distill.teacher={args.teacher}", *extra]
            r = train(f"{kind}_seed{seed}", "enhance_distill.yaml", steps, overrides, args.work, args.reuse)
            q = quality(r["run"], r["run"], args.samples, args.reuse)
            rows.append({"kind": kind, "seed": seed, "steps": steps, "train_seconds": r["train_seconds"], **q})
            print(f"{kind} seed {seed}: {q} ({r['train_seconds']:.0f} s)", flush=True)
    eff = None
    if not args.no_profile:
        first = next(r for r in rows if r["kind"] in ("pruned", "distilled", "scratch"))
        eff = efficiency(args.teacher, args.work / f"{first['kind']}_seed{first['seed']}", 3 if args.quick else 15,
                         make=waveforms)
    results = summarise(teacher_q, rows, eff)
    results["runs"] = rows
    results["settings"] = {"student_steps": args.steps, "seeds": args.seeds, "teacher": args.teacher,
                           "torch": torch.__version__, "threads": args.threads,
                           "wall_seconds": time.time() - started, **({"note": args.note} if args.note else {})}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(markdown(results))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

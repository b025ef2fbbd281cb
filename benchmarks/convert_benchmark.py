"""The voice conversion benchmark (issue #18): the shipped mel-convnext teacher (kal16 -> awb)
against students with about 9x fewer MACs (configs/convert_distill.yaml: width 80), trained the
same number of steps from scratch, with distillation, and with pruning init + distillation,
over several seeds; quality on the held-out sentences against the target voice's recordings
(MCD, speaker similarity, pitch), the unconverted source as the baseline, and the efficiency
of teacher and student (the converter alone: the vocoder is the same for both) measured side
by side.

    python benchmarks/convert_benchmark.py                      # 3 seeds, the kinds below, the recipe's steps
    python benchmarks/convert_benchmark.py --seeds 0 --kinds scratch,pruned --no-profile --threads 1
    python benchmarks/convert_benchmark.py --quick              # smoke run, about a minute

Student kinds (--kinds) and --reuse, --work, the lanes: as in vocoder_benchmark.py, whose
training and timing helpers this script uses. Writes
benchmarks/results/convert_benchmark.json (or _quick) and prints the README table.
"""

from __future__ import annotations

import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from vocoder_benchmark import (arguments, by_kind, efficiency_and_targets, efficiency_targets, measure,  # noqa: E402
                               recipe_steps, train)

METRICS = ("mcd", "similarity", "f0_rmse", "f0_corr")
BASELINE = "unconverted source"


def quality(source: str | Path, out: Path, samples: int, reuse: bool = False) -> dict:
    """Held-out sentences scored against the target voice, the unconverted source beside, and
    for a student its fidelity to the teacher (log-mel L1)."""
    import json

    from kdgan.metrics.evaluate import evaluate_source

    path = out / "eval.json"
    earlier = json.loads(path.read_text())["evaluations"][-1] if reuse and path.is_file() else None
    if earlier is None or not all(k in earlier for k in METRICS) or (samples and earlier.get("clips") != samples):
        earlier = evaluate_source(source, samples, list(METRICS), None, seed=0, profile=False, out=out)
    keep = {k: earlier[k] for k in (*METRICS, "clips", "step") if k in earlier}
    if "fidelity" in earlier:
        keep["fidelity"] = earlier["fidelity"]
    keep["baseline"] = {k: earlier["baselines"][BASELINE][k] for k in METRICS}
    return keep


def summarise(teacher_q: dict, rows: list[dict], eff: dict | None) -> dict:
    table = by_kind(rows, METRICS, voice=False)
    base = teacher_q["baseline"]
    targets = {"teacher_moves_similarity_towards_the_target": {
        "value": teacher_q["similarity"] - base["similarity"], "target": 0,
        "met": teacher_q["similarity"] > base["similarity"]}}
    scratch = table.get("scratch")
    for kind in ("distilled", "pruned"):
        if kind in table and scratch is not None:
            gap = scratch["mcd_mean"] - teacher_q["mcd"]  # MCD: lower is better
            closed = (scratch["mcd_mean"] - table[kind]["mcd_mean"]) / gap if gap > 0 else None
            targets[f"{kind}_closes_half_the_mcd_gap"] = {"value": closed, "target": 0.5,
                                                         "met": closed is not None and closed >= 0.5}
            if gap <= 0:
                targets[f"{kind}_closes_half_the_mcd_gap"]["note"] = (
                    f"no gap to close: the scratch students' MCD {scratch['mcd_mean']:.2f} is no worse than "
                    f"the teacher's {teacher_q['mcd']:.2f}")
    if eff is not None:
        targets.update(efficiency_targets(eff, threads=2, real_time=None))
    return {"teacher": teacher_q, "students": table, "targets": targets, "efficiency": eff}


def markdown(results: dict) -> str:
    t = results["teacher"]
    cols = (("mcd", "{:.2f}"), ("similarity", "{:.3f}"), ("f0_rmse", "{:.1f}"), ("f0_corr", "{:.2f}"))
    lines = ["| model | MCD ↓ | similarity ↑ | F0 RMSE Hz ↓ | F0 correlation ↑ | fidelity: log-mel L1 to the teacher "
             "| steps | train min |", "|---|---|---|---|---|---|---|---|"]
    lines.append("| teacher | " + " | ".join(spec.format(t[k]) for k, spec in cols) + " | | | |")
    lines.append(f"| {BASELINE} | " + " | ".join(spec.format(t["baseline"][k]) for k, spec in cols) + " | | | |")
    for kind, e in results["students"].items():
        cell = lambda key, spec: f"{spec.format(e[f'{key}_mean'])} ± {spec.format(e[f'{key}_std'])}"  # noqa: E731
        fidelity = [r["fidelity"]["mel_l1"] for r in results["runs"] if r["kind"] == kind and "fidelity" in r]
        lines.append(f"| {kind} student | " + " | ".join(cell(k, spec) for k, spec in cols) +
                     f" | {f'{sum(fidelity) / len(fidelity):.3f}' if fidelity else ''} | {e['steps']} | "
                     f"{sum(e['train_seconds']) / len(e['train_seconds']) / 60:.1f} |")
    return "\n".join(lines + efficiency_and_targets(results.get("efficiency"), results["targets"]))


def main() -> None:
    args = arguments(__doc__, "convert_teacher", "benchmark_convert", "convert_distill.yaml")
    extra: list[str] = []
    if args.quick:
        args.steps, args.seeds, args.samples = 4, "0", 1  # one held-out clip: a smoke run
        extra = ["data.frames=16", "train.batch_size=2", "model.discriminator.width=2", "task.sample_frames=16",
                 "train.adversarial_start=2", "model.generator.layers=2"]
        args.teacher = str(train("teacher", "convert_teacher.yaml", 4, [*extra, "model.generator.width=16"],
                                 args.work, reuse=False)["run"])
        extra.append("model.generator.width=4")  # the students
    args.steps = args.steps or recipe_steps(args.config)
    measure(args, extra, quality, summarise, markdown, "convert_benchmark")


if __name__ == "__main__":
    main()

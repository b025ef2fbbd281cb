"""The speech enhancement benchmark (issue #18): the shipped wave U-Net teacher against
students with 10x fewer MACs (configs/enhance_distill.yaml: width 10), trained the same number
of steps from scratch, with distillation, and with pruning init + distillation, over several
seeds; quality on the held-out mixtures (the held-out voice beside) with the noisy input,
spectral subtraction and a Wiener filter as baselines, and the efficiency of teacher and
student measured side by side.

    python benchmarks/enhance_benchmark.py                      # 3 seeds, the kinds below, the recipe's steps
    python benchmarks/enhance_benchmark.py --seeds 0 --kinds scratch,pruned --no-profile --threads 1
    python benchmarks/enhance_benchmark.py --quick              # smoke run, about a minute (wave U-Net)
    python benchmarks/enhance_benchmark.py --config enhance_mask_distill.yaml --teacher enhance_mask_teacher \
        --work runs/benchmark_enhance_mask --out benchmarks/results/enhance_mask_benchmark.json   # spectral mask

Student kinds (--kinds) and --reuse, --work, the lanes: as in vocoder_benchmark.py, whose
training and timing helpers this script uses. Writes
benchmarks/results/enhance_benchmark.json (or _quick) and prints the README table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vocoder_benchmark import (AUDIO_SECONDS, arguments, by_kind, efficiency_and_targets,  # noqa: E402
                               efficiency_targets, measure, recipe_steps, train)

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
    table = by_kind(rows, METRICS)
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
    args = arguments(__doc__, "enhance_teacher", "benchmark_enhance", "enhance_distill.yaml")
    extra: list[str] = []
    if args.quick:
        args.steps, args.seeds, args.samples = 4, "0", 1  # one held-out clip: a smoke run
        extra = ["data.segment=2048", "train.batch_size=2", "model.discriminator.width=2", "task.sample_seconds=0.5",
                 "model.generator.depth=3", "model.generator.context=1"]
        # its discriminator trains for the last 2 steps: the students' discriminators start from it
        args.teacher = str(train("teacher", "enhance_teacher.yaml", 4, [*extra, "model.generator.width=8",
                                                                       "train.adversarial_start=2"],
                                 args.work, reuse=False)["run"])
        extra.append("model.generator.width=2")  # the students
    args.steps = args.steps or recipe_steps(args.config)
    measure(args, extra, quality, summarise, markdown, "enhance_benchmark", make=waveforms)


if __name__ == "__main__":
    main()

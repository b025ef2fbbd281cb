"""The unpaired style-transfer benchmark (issue #20): the serif -> sans CycleGAN teacher
(configs/cyclegan_teacher.yaml, its A -> B half) against students of a quarter of its width
(configs/cyclegan_distill.yaml: 16x fewer MACs), trained the same number of steps from scratch
with CycleGAN's own losses (the teacher's recipe at the student's width: two generators, two
discriminators, cycle and identity terms), distilled from a random init, and distilled from
pruning init (the recipe), over several seeds; FID/KID of the translated held-out serif faces
against the held-out sans faces and the character accuracy the glyph classifier still reads,
and the speed of teacher and student measured side by side.

    python benchmarks/cyclegan_benchmark.py                      # 3 seeds, every kind, the recipe's steps
    python benchmarks/cyclegan_benchmark.py --kinds scratch --threads 1 --no-profile
    python benchmarks/cyclegan_benchmark.py --quick              # smoke run, about a minute

Student kinds (--kinds) and --reuse, --work, the lanes: as in vocoder_benchmark.py. The
teacher is the shipped cyclegan_teacher (`make cyclegan-teacher` re-creates it) unless
--teacher names another.
Writes benchmarks/results/cyclegan_benchmark.json (or _quick) and prints the README table.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

from kdgan.pretrained import SHIPPED

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vocoder_benchmark import (ROOT, arguments, by_kind, generator_and_task, recipe_steps, student_runs,  # noqa: E402
                               target_lines, train, write_results)

TEACHER_RECIPE = "cyclegan_teacher.yaml"
METRICS = ("fid", "kid", "char_accuracy")
KINDS = {"scratch": [], "distilled": ["distill.student.init=scratch"], "pruned": []}
BASELINE = "the input (serif, untranslated)"


def quality(source: str | Path, out: Path, samples: int, reuse: bool = False) -> dict:
    """The translated held-out serif glyphs scored against the held-out sans glyphs, with the
    untranslated input and real-vs-real beside them."""
    from kdgan.metrics.evaluate import evaluate_source

    path = out / "eval.json"
    earlier = json.loads(path.read_text())["evaluations"][-1] if reuse and path.is_file() else None
    if earlier is None or not all(k in earlier for k in METRICS):
        earlier = evaluate_source(source, 2, list(METRICS[:2]), None, seed=0, profile=False, out=out)
    keep = {k: earlier[k] for k in (*METRICS, "step") if k in earlier}
    keep["baselines"] = earlier["baselines"]
    keep["real_vs_real_fid"] = earlier["real_vs_real"]["fid"]
    return keep


def glyphs(n: int) -> tuple[torch.Tensor]:
    """A batch of n 32 px grey images (the generators' input for speed measurements)."""
    return (torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1,)


def efficiency(teacher: str | Path, student: Path, repeats: int, rounds: int) -> dict:
    """Parameters, MACs per image and the speed-up measured side by side (alternating rounds)
    at batch 1 and 64 on 2 threads, in PyTorch eager and ONNX Runtime."""
    from kdgan.metrics.efficiency import count_params, macs_per_sample, side_by_side_speedup

    nets = {"teacher": generator_and_task(teacher)[0], "student": generator_and_task(student)[0]}
    out = {name: {"params": count_params(g), "macs_per_image": macs_per_sample(g, glyphs(1))}
           for name, g in nets.items()}
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    for batch in (1, 64):
        out[f"batch_{batch}"] = side_by_side_speedup(nets["teacher"], nets["student"], glyphs, batch=batch,
                                                     rounds=rounds, repeats=repeats)
    torch.set_num_threads(before)
    return out


def summarise(teacher_q: dict, rows: list[dict], eff: dict | None) -> dict:
    table = by_kind(rows, METRICS, voice=False)
    targets = {"teacher_fid_below_the_untranslated_input": {
        "value": teacher_q["fid"], "target": teacher_q["baselines"][BASELINE]["fid"],
        "met": teacher_q["fid"] < teacher_q["baselines"][BASELINE]["fid"]}}
    for kind in ("distilled", "pruned"):
        if kind not in table:
            continue
        fid = table[kind]["fid_mean"]
        targets[f"{kind}_fid_within_1.10x_teacher"] = {"value": fid / teacher_q["fid"], "target": 1.10,
                                                       "met": fid <= 1.10 * teacher_q["fid"]}
        if "scratch" in table:
            ratio = fid / table["scratch"]["fid_mean"]
            targets[f"{kind}_fid_within_0.75x_scratch"] = {"value": ratio, "target": 0.75, "met": ratio <= 0.75}
        drop = 100 * (teacher_q["char_accuracy"] - table[kind]["char_accuracy_mean"])
        targets[f"{kind}_char_accuracy_within_2_points_of_teacher"] = {"value": drop, "target": 2.0,
                                                                      "met": drop <= 2.0}
    if eff is not None:
        macs = eff["teacher"]["macs_per_image"] / eff["student"]["macs_per_image"]
        targets["macs_ratio_at_least_10"] = {"value": macs, "target": 10, "met": macs >= 10}
        best = max(v["speedup"] for v in eff["batch_64"].values())
        targets["batch_64_speedup_vs_0.6x_macs_ratio"] = {"value": best / macs, "target": 0.6,
                                                          "met": best >= 0.6 * macs, "note": "best runtime"}
    return {"teacher": teacher_q, "students": table, "targets": targets, "efficiency": eff}


def markdown(results: dict) -> str:
    t, eff = results["teacher"], results.get("efficiency")
    cols = (("fid", "{:.1f}"), ("kid", "{:.1f}"), ("char_accuracy", "{:.3f}"))
    lines = ["| model | FID ↓ | KID ↓ | character accuracy ↑ | steps | train min |", "|---|---|---|---|---|---|"]
    lines.append("| teacher | " + " | ".join(spec.format(t[k]) for k, spec in cols) + " | | |")
    base = t["baselines"][BASELINE]
    lines.append(f"| {BASELINE} | " + " | ".join(spec.format(base[k]) for k, spec in cols) + " | | |")
    lines.append(f"| held-out sans glyphs (real vs real: FID of two halves) | {t['real_vs_real_fid']:.1f} | | "
                 f"{t['baselines']['held-out sans glyphs']['char_accuracy']:.3f} | | |")
    for kind, e in results["students"].items():
        cell = lambda key, spec: f"{spec.format(e[f'{key}_mean'])} ± {spec.format(e[f'{key}_std'])}"  # noqa: E731
        lines.append(f"| {kind} student | " + " | ".join(cell(k, spec) for k, spec in cols) +
                     f" | {e['steps']} | {statistics.mean(e['train_seconds']) / 60:.1f} |")
    if eff:
        lines += ["", "| | parameters | MACs per image | ms per batch of 64, 2 threads (PyTorch / ONNX Runtime) |",
                  "|---|---|---|---|"]
        for name in ("teacher", "student"):
            e = eff[name]
            ms = " / ".join(f"{1e3 * v[f'{name}_median_s']:.1f}" for v in eff["batch_64"].values())
            lines.append(f"| {name} | {e['params'] / 1e6:.3f}M | {e['macs_per_image'] / 1e6:.1f}M | {ms} |")
        for batch in (1, 64):
            side = eff[f"batch_{batch}"]
            lines.append(f"\nspeed-up at batch {batch}: " + ", ".join(
                f"{runtime} {v['speedup']:.1f}x ({v['min']:.1f}-{v['max']:.1f})" for runtime, v in side.items()))
    lines += target_lines(results["targets"])
    return "\n".join(lines)


def main() -> None:
    args = arguments(__doc__, "cyclegan_teacher", "benchmark_cyclegan", "cyclegan_distill.yaml", KINDS)
    torch.set_num_threads(args.threads)
    started = time.time()
    recipe = yaml.safe_load((ROOT / "configs" / args.config).read_text())
    width = recipe["model"]["generator"]["width"] * recipe["distill"]["student"]["width_multiplier"]
    extra: list[str] = []
    if args.quick:
        args.steps, args.seeds = 2, "0"
        extra = ["train.batch_size=4", "model.generator.blocks=1", "model.discriminator.width=4", "train.fake_pool=4"]
        args.teacher = str(train("teacher", TEACHER_RECIPE, 2, [*extra, "model.generator.width=8"], args.work,
                                 reuse=False)["run"])
        width = 2
    args.steps = args.steps or recipe_steps(args.config)
    if args.teacher not in SHIPPED and not Path(args.teacher).exists():
        sys.exit(f"--teacher: {args.teacher} does not exist; train one with `make cyclegan-teacher`")
    teacher_q = quality(args.teacher, args.work / "teacher_eval", 0, args.reuse)
    print(f"teacher: {teacher_q}", flush=True)
    scratch = (TEACHER_RECIPE, [f"model.generator.width={int(width)}"])  # CycleGAN's own losses at the student's width
    rows = student_runs(args, args.config, extra, quality, scratch)
    first = next((r for r in rows if r["kind"] == "pruned"), rows[0])
    eff = None if args.no_profile else efficiency(args.teacher, args.work / f"{first['kind']}_seed{first['seed']}",
                                                  *((2, 3) if args.quick else (10, 9)))
    write_results(args, summarise(teacher_q, rows, eff), rows, started, "cyclegan_benchmark", markdown)


if __name__ == "__main__":
    main()

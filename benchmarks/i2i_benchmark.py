"""The image-to-image benchmark on scikit-image's photos: per task, a teacher against
width x0.25 students trained the same number of steps from scratch (ground truth only) and
with distillation (ground truth + teacher output + features), over several seeds. Quality on
the held-out whole photos (PSNR, SSIM, patch FID/KID), the efficiency profile at the training
crop size, and the targets of issue #7.

    python benchmarks/i2i_benchmark.py                          # sr, inpainting, edges; 3 seeds
    python benchmarks/i2i_benchmark.py --tasks sr --seeds 0,1,2 --steps 2000
    python benchmarks/i2i_benchmark.py --quick                  # smoke run, a few minutes

Student kinds (--kinds): scratch, distilled, pruned (x0.25 width, configs/<task>_distill.yaml)
and, for SR, fast_scratch / fast_pruned (the CPU-latency student of sr_distill_fast.yaml). Each
shape of student gets its own efficiency profile and targets. On 2 cores, two 1-thread runs of
different kinds with --no-profile train side by side; a final --reuse run over all kinds
collects them and profiles on the then idle machine.

The teachers are the shipped ones (`sr_teacher`, ..., made by `make i2i-teachers`); with
--train-teachers they are trained into --work/<task>_teacher instead (reused when their final
checkpoint exists; --quick does this). Writes benchmarks/results/i2i_benchmark.json (or _quick)
and prints the README table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
TASKS = {"sr": "sr", "inpainting": "inpainting", "edges": "edges"}  # name -> configs/<name>_{teacher,distill}.yaml
# student kind -> (recipe suffix, overrides): configs/<task>_<suffix>.yaml. The x0.25-width students of
# issue #7 (pruned: the teacher's strongest channels), and for SR the CPU-latency student of
# sr_distill_fast.yaml (x0.5 width, 2 of the teacher's blocks) from scratch and from its pruning init.
STUDENTS = {"scratch": ("distill", ["distill.terms=[]"]), "distilled": ("distill", []),
            "pruned": ("distill", ["distill.student.init=prune"]),
            "fast_scratch": ("distill_fast", ["distill.terms=[]", "distill.student.init=scratch"]),
            "fast_pruned": ("distill_fast", [])}


def shape_of(kind: str) -> str:
    """Student kinds of one network shape share one efficiency profile."""
    return STUDENTS[kind][0]


def common(steps: int, extra: list[str]) -> list[str]:
    return [f"train.steps={steps}", "log.progress=false", "log.tensorboard=false", f"log.sample_every={steps}",
            f"log.checkpoint_every={steps}", f"log.log_every={max(1, steps // 20)}", *extra]


def train_teacher(task: str, steps: int, work: Path, extra: list[str]) -> Path:
    from kdgan.config import load_config
    from kdgan.train.run import start_run

    out = work / f"{task}_teacher"
    if (out / "checkpoints" / f"step_{steps:07d}.json").is_file():
        return out
    cfg = load_config(ROOT / "configs" / f"{task}_teacher.yaml", common(steps, extra))
    start_run(cfg, out, resume=False, overwrite=True).fit(out)
    return out


def train_student(task: str, kind: str, seed: int, steps: int, teacher: str | Path, work: Path,
                  extra: list[str], reuse: bool = False) -> dict:
    from kdgan.config import load_config
    from kdgan.train.run import start_run

    out = work / f"{task}_{kind}_seed{seed}"
    meta = out / "checkpoints" / f"step_{steps:07d}.json"
    if reuse and meta.is_file():  # a finished run from an earlier (e.g. parallel) invocation
        return {"run": out, "train_seconds": json.loads((out / "train_seconds.json").read_text())}
    recipe, overrides = STUDENTS[kind]
    cfg = load_config(ROOT / "configs" / f"{task}_{recipe}.yaml",
                      common(steps, [*overrides, f"seed={seed}", f"distill.teacher={teacher}", *extra]))
    start = time.perf_counter()
    start_run(cfg, out, resume=False, overwrite=True).fit(out)
    seconds = time.perf_counter() - start
    (out / "train_seconds.json").write_text(json.dumps(seconds))
    return {"run": out, "train_seconds": seconds}


def quality(run: str | Path, out: Path | None = None) -> dict:
    from kdgan.metrics.evaluate import evaluate_source

    r = evaluate_source(run, 0, ["psnr", "ssim", "fid", "kid"], None, seed=0, profile=False, out=out)
    return {k: r.get(k) for k in ("psnr", "ssim", "fid", "kid", "step")}


class Bicubic(nn.Module):
    """The no-network SR baseline: bicubic upscaling of the low-resolution input."""

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False).clamp(-1, 1)


def bicubic_quality(teacher: str | Path) -> dict:
    from kdgan.config import validate
    from kdgan.metrics.evaluate import resolve_source
    from kdgan.tasks.image.metrics import evaluate_image_task
    from kdgan.tasks import build_task

    _, train_config, _, _ = resolve_source(teacher)
    task = build_task(validate(train_config))
    r = evaluate_image_task(Bicubic(task.scale), task, None, ("psnr", "ssim"), seed=0)
    return {"psnr": r["psnr"], "ssim": r["ssim"]}


def profiles(teacher: str | Path, student: Path, repeats: int, batch: int = 64) -> dict:
    """Teacher and student generators side by side at the training crop size, batch 64
    (--quick: a small `batch`, to show the code runs)."""
    from kdgan.config import validate
    from kdgan.loading import load_gan
    from kdgan.metrics.efficiency import profile_generator, side_by_side_speedup
    from kdgan.metrics.evaluate import resolve_source
    from kdgan.tasks import build_task

    out, generators = {}, {}
    for name, run in (("teacher", teacher), ("student", student)):
        loadable, train_config, _, _ = resolve_source(run)
        task = build_task(validate(train_config))
        generators[name] = load_gan(loadable).generator
        out[name] = profile_generator(generators[name], lambda n: task.fixed_inputs(n, 0), (1, batch),
                                      repeats=repeats)
    # the batch-64 speed-up, measured side by side (alternating rounds; see side_by_side_speedup)
    out["side_by_side_b64"] = side_by_side_speedup(generators["teacher"], generators["student"],
                                                   lambda n: task.fixed_inputs(n, 0), batch,
                                                   rounds=max(3, repeats // 3), repeats=min(10, repeats))
    return out


def shape_profiles(task: str, teacher: str | Path, kinds: list[str], seed: int, work: Path, repeats: int,
                   batch: int = 64) -> dict:
    """One efficiency profile per student shape, from the given seed's run of its first kind."""
    runs: dict[str, Path] = {}
    for kind in kinds:
        runs.setdefault(shape_of(kind), work / f"{task}_{kind}_seed{seed}")
    return {shape: profiles(teacher, run, repeats, batch) for shape, run in runs.items()}


def ort_speedup(prof: dict) -> float | None:
    s = prof["side_by_side_b64"]
    return s["onnxruntime"]["speedup"] if "onnxruntime" in s else None


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def shape_targets(prof: dict) -> dict:
    """MACs ratio and side-by-side speed-ups of one student shape against the teacher."""
    t, s = prof["teacher"], prof["student"]
    macs = t["macs_per_sample"] / s["macs_per_sample"]
    speed = prof["side_by_side_b64"]["pytorch"]["speedup"]
    targets = {"macs_ratio_at_least_10": {"value": macs, "target": 10, "met": macs >= 10},
               "speedup_b64_vs_0.6x_macs_ratio": {"value": speed / macs, "target": 0.6, "met": speed >= 0.6 * macs,
                                                  "runtime": "PyTorch eager"}}
    ort = ort_speedup(prof)
    if ort is not None:
        targets["ort_speedup_b64_vs_0.6x_macs_ratio"] = {"value": ort / macs, "target": 0.6, "met": ort >= 0.6 * macs,
                                                         "runtime": "ONNX Runtime (exported files)"}
    return {"macs_ratio": macs, "speedup_b64": speed, "ort_speedup_b64": ort,
            "speedup_b1": t["latency"]["1"]["median_s"] / s["latency"]["1"]["median_s"], "targets": targets}


def summarise(task: str, teacher_q: dict, students: dict[str, list[dict]], profs: dict[str, dict],
              bicubic: dict | None) -> dict:
    """profs: one efficiency profile per student shape (shape_of(kind))."""
    table = {}
    for kind, rows in students.items():
        table[kind] = {"seeds": [r["seed"] for r in rows], "shape": shape_of(kind)}
        for key in ("psnr", "ssim", "fid", "kid"):
            values = [r[key] for r in rows if r.get(key) is not None]
            if values:
                table[kind][f"{key}_mean"], table[kind][f"{key}_std"] = mean_std(values)
                table[kind][f"{key}s"] = values
    shapes = {shape: shape_targets(prof) for shape, prof in profs.items()}
    targets = {}
    for shape, v in shapes.items():
        targets.update({(name if shape == "distill" else f"{shape.removeprefix('distill_')}_{name}"): t
                        for name, t in v["targets"].items()})
    # each teacher-trained student kind against the scratch student of its own shape
    for kind, baseline in (("distilled", "scratch"), ("pruned", "scratch"), ("fast_pruned", "fast_scratch")):
        if task != "sr" or "psnr_mean" not in table.get(kind, {}) or baseline not in table:
            continue
        d, sc = table[kind]["psnr_mean"], table[baseline]["psnr_mean"]
        name = kind if kind == "distilled" else f"{kind}_distilled"
        targets[f"psnr_{name}_vs_teacher_minus_0.3"] = {
            "value": d - teacher_q["psnr"], "target": -0.3, "met": d >= teacher_q["psnr"] - 0.3}
        targets[f"psnr_{name}_vs_{baseline}_plus_0.3"] = {"value": d - sc, "target": 0.3, "met": d >= sc + 0.3}
    return {"teacher": teacher_q, "bicubic": bicubic, "students": table, "shapes": shapes,
            "targets": targets, "profiles": profs}


def markdown(results: dict) -> str:
    lines = ["| task | model | PSNR dB | SSIM | patch FID | patch KID | MACs ratio | CPU speed-up b=64 | ONNX Runtime b=64 |",
             "|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v, s, spec: "-" if v is None else (spec.format(v) + (f" ± {spec.format(s)}" if s is not None else ""))  # noqa: E731
    ratio = lambda x: "-" if x is None else f"{x:.1f}x"  # noqa: E731  (None: profiled with --no-profile)
    for task, r in results["tasks"].items():
        t = r["teacher"]
        lines.append(f"| {task} | teacher | {fmt(t.get('psnr'), None, '{:.2f}')} | {fmt(t.get('ssim'), None, '{:.4f}')} | "
                     f"{fmt(t.get('fid'), None, '{:.1f}')} | {fmt(t.get('kid'), None, '{:.2f}')} | 1x | 1x | 1x |")
        if r.get("bicubic"):
            lines.append(f"| {task} | bicubic (no network) | {r['bicubic']['psnr']:.2f} | {r['bicubic']['ssim']:.4f} | | | | | |")
        for kind, v in r["students"].items():
            sh = r["shapes"].get(v["shape"], {"macs_ratio": None, "speedup_b64": None, "ort_speedup_b64": None})
            lines.append(
                f"| {task} | {kind} student | {fmt(v.get('psnr_mean'), v.get('psnr_std'), '{:.2f}')} | "
                f"{fmt(v.get('ssim_mean'), v.get('ssim_std'), '{:.4f}')} | {fmt(v.get('fid_mean'), v.get('fid_std'), '{:.1f}')} | "
                f"{fmt(v.get('kid_mean'), v.get('kid_std'), '{:.2f}')} | {ratio(sh['macs_ratio'])} | "
                f"{ratio(sh['speedup_b64'])} | {ratio(sh['ort_speedup_b64'])} |")
        for name, tgt in r["targets"].items():
            where = f" [{tgt['runtime']}]" if "runtime" in tgt else ""
            lines.append(f"\n{task} {name}{where}: {tgt['value']:.3f} (target {tgt['target']}) -> "
                         f"{'met' if tgt['met'] else 'NOT met'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized smoke run")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--kinds", default="scratch,distilled", help=f"student kinds: {', '.join(STUDENTS)} "
                        "(fast_*: SR only)")
    parser.add_argument("--steps", type=int, default=1000, help="student steps")
    parser.add_argument("--train-teachers", action="store_true", help="train teachers instead of the shipped ones")
    parser.add_argument("--teacher-steps", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "benchmark_i2i")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--note", help="how the runs were made (kept in the JSON's settings)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse student runs already finished in --work (e.g. trained by parallel --no-profile runs)")
    parser.add_argument("--no-profile", action="store_true",
                        help="train and evaluate only, no efficiency profile (for parallel runs on a busy machine; "
                        "a later --reuse run profiles)")
    parser.add_argument("--profile-only", action="store_true",
                        help="re-measure the efficiency profiles (and targets) of an existing --out on an idle machine")
    args = parser.parse_args()
    extra: list[str] = []
    if args.quick:
        args.steps, args.teacher_steps, args.seeds, args.train_teachers = 10, 10, "0", True
        extra = ["task.crops=64", "train.batch_size=4"]
    tasks, kinds = args.tasks.split(","), args.kinds.split(",")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        sys.exit(f"--tasks: unknown {unknown}; valid: {', '.join(TASKS)}")
    if any(k not in STUDENTS for k in kinds):
        sys.exit(f"--kinds: unknown {[k for k in kinds if k not in STUDENTS]}; valid: {', '.join(STUDENTS)}")
    missing = [f"configs/{t}_{STUDENTS[k][0]}.yaml" for t in tasks for k in kinds
               if not (ROOT / "configs" / f"{t}_{STUDENTS[k][0]}.yaml").is_file()]
    if missing:
        sys.exit(f"--kinds: no recipe {missing[0]} for this task")
    out = args.out or ROOT / "benchmarks" / "results" / f"i2i_benchmark{'_quick' if args.quick else ''}.json"
    torch.set_num_threads(args.threads)
    if args.profile_only:
        previous = json.loads(out.read_text())
        for task, r in previous["tasks"].items():
            teacher = args.work / f"{task}_teacher" if args.train_teachers else f"{task}_teacher"
            students: dict[str, list[dict]] = {}
            for row in previous["runs"]:
                if row["task"] == task:
                    students.setdefault(row["kind"], []).append(row)
            profs = shape_profiles(task, teacher, list(students), int(args.seeds.split(",")[0]), args.work, 20)
            previous["tasks"][task] = summarise(task, r["teacher"], students, profs, r.get("bicubic"))
        previous["settings"]["profiled_separately_threads"] = torch.get_num_threads()
        out.write_text(json.dumps(previous, indent=2, default=str))
        print(markdown(previous))
        return
    started = time.time()
    results = {"tasks": {}, "runs": []}
    for task in tasks:
        if args.train_teachers:
            teacher = train_teacher(task, args.teacher_steps, args.work, extra)
        else:
            teacher = f"{task}_teacher"
        teacher_q = quality(teacher, out=args.work / f"{task}_teacher_eval")
        print(f"{task} teacher: {teacher_q}", flush=True)
        students: dict[str, list[dict]] = {}
        for kind in kinds:
            for seed in map(int, args.seeds.split(",")):
                r = train_student(task, kind, seed, args.steps, teacher, args.work, extra, args.reuse)
                q = quality(r["run"])
                row = {"task": task, "kind": kind, "seed": seed, "train_seconds": r["train_seconds"], **q}
                print(f"{task} {kind} seed {seed}: {q} ({r['train_seconds']:.0f}s)", flush=True)
                students.setdefault(kind, []).append(row)
                results["runs"].append(row)
        profs = {} if args.no_profile else shape_profiles(task, teacher, kinds, int(args.seeds.split(",")[0]),
                                                          args.work, *((2, 4) if args.quick else (20, 64)))
        bicubic = bicubic_quality(teacher) if task == "sr" else None
        results["tasks"][task] = summarise(task, teacher_q, students, profs, bicubic)
    results["settings"] = {"student_steps": args.steps, "seeds": args.seeds,
                           "teachers": "trained here" if args.train_teachers else "shipped",
                           "torch": torch.__version__, "threads": torch.get_num_threads(),
                           "wall_seconds": time.time() - started, **({"note": args.note} if args.note else {})}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(markdown(results))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

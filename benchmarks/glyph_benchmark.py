"""The glyph benchmark: the shipped teacher vs >= 16x cheaper students, trained the same
number of steps without a teacher (scratch) and with each distillation recipe, over several
seeds. Quality of the final checkpoint (FID, KID against all 9,424 real glyphs, fixed sample
count), the efficiency profile, and the targets of issue #4.

    python benchmarks/glyph_benchmark.py                       # DEFAULT_VARIANTS, 3,000 steps
    python benchmarks/glyph_benchmark.py --steps 1000 --samples 5000   # at the README table's length
    python benchmarks/glyph_benchmark.py --quick               # smoke run, a few minutes
    python benchmarks/glyph_benchmark.py --variants scratch,l1 --steps 1000 --seeds 0,1

Time on 2 CPU cores: a student takes about 2 minutes per 1,000 steps (3 with 1 thread and two
benchmarks side by side), so the default run (8 variants x 3 seeds x 3,000 steps) takes about
2.5 hours, and the README's 1,000-step table (10 variants) about an hour.

Writes benchmarks/results/glyph_benchmark.json (or glyph_benchmark_quick.json) and prints
the README table. Every run folder is kept under --work for inspection.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

# name -> (recipe, extra overrides). Students: plain DCGAN width 14 (18.0x fewer MACs than
# the width-64 teacher), separable width 22 (16.7x) or sub-pixel (laid out for CPU latency);
# student D width 32. Each student family has its own scratch baseline.
LINEAR_HEAD = ["model.generator.width=16", "model.generator.head_residual=0"]
VARIANTS = {
    "scratch": ("distill_l1.yaml", ["distill.terms=[]"]),
    # sub-pixel width 14 with a 16-channel nonlinear branch beside the linear head (16.8x)
    "subpixel_res_scratch": ("distill_subpixel.yaml", ["distill.terms=[]", "distill.student.init=scratch"]),
    "subpixel_res_prune_l1_feature": ("distill_subpixel.yaml", []),
    # the first sub-pixel student: width 16, linear head only (18.5x)
    "subpixel_scratch": ("distill_subpixel.yaml", ["distill.terms=[]", "distill.student.init=scratch", *LINEAR_HEAD]),
    "subpixel_prune_l1_feature": ("distill_subpixel.yaml", LINEAR_HEAD),
    "seed_recipe": ("seed_recipe.yaml", []),
    "l1": ("distill_l1.yaml", []),
    # issue #5's evidence: the fast mode's precision, same recipe (bf16 autocast on CPU)
    "l1_bf16": ("distill_l1.yaml", ["train.precision=bf16"]),
    "l1_feature": ("distill_feature.yaml", []),
    "l1_feature_disc": ("distill_full.yaml", []),
    "prune_l1_feature": ("distill_prune.yaml", []),
    "mobile_l1_kernel": ("distill_mobile.yaml", []),
}

# Issue #4's recipes (scratch, the seed's, output L1, + feature, + discriminator distillation),
# pruning init, and the CPU-latency student with its own scratch baseline.
DEFAULT_VARIANTS = ["scratch", "seed_recipe", "l1", "l1_feature", "l1_feature_disc", "prune_l1_feature",
                    "subpixel_res_scratch", "subpixel_res_prune_l1_feature"]


def run_variant(name: str, seed: int, steps: int, batch: int, work: Path, samples: int) -> dict:
    from kdgan.config import load_config
    from kdgan.metrics.evaluate import evaluate_source
    from kdgan.train.run import start_run

    recipe, extra = VARIANTS[name]
    overrides = extra + [f"seed={seed}", f"train.steps={steps}", f"train.batch_size={batch}",
                         "log.progress=false", "log.tensorboard=false", f"log.sample_every={steps}",
                         f"log.checkpoint_every={steps}", f"log.log_every={max(1, steps // 20)}"]
    cfg = load_config(ROOT / "configs" / recipe, overrides)
    out = work / f"{name}_seed{seed}"
    start = time.perf_counter()
    trainer = start_run(cfg, out, resume=False, overwrite=True)
    trainer.fit(out)
    train_s = time.perf_counter() - start
    result = evaluate_source(out, samples, ["fid", "kid"], "glyphs", seed=0, profile=False)
    return {"variant": name, "seed": seed, "fid": result["fid"], "kid": result["kid"], "train_seconds": train_s,
            "generator_spec": json.loads((out / "checkpoints" / f"step_{steps:07d}.json").read_text())["generator_spec"]}


def collect_run(name: str, seed: int, steps: int, work: Path) -> dict:
    """The record run_variant would have returned, read back from its run folder."""
    out = work / f"{name}_seed{seed}"
    result = json.loads((out / "eval.json").read_text())["evaluations"][-1]
    if result["step"] != steps:
        sys.exit(f"{out}: evaluated at step {result['step']}, not {steps}")
    meta = json.loads((out / "checkpoints" / f"step_{steps:07d}.json").read_text())
    return {"variant": name, "seed": seed, "fid": result["fid"], "kid": result["kid"], "train_seconds": None,
            "generator_spec": meta["generator_spec"]}


def teacher_quality(samples: int) -> dict:
    from kdgan.data import load_dataset
    from kdgan.tasks.image.generation import ImageGeneration
    from kdgan.pretrained import load_pretrained
    from kdgan.metrics.classifier import load_classifier
    from kdgan.metrics.evaluate import evaluate_generator

    generator, _, config = load_pretrained("glyph_teacher")
    task = ImageGeneration(load_dataset("glyphs", None, 32, 1), config["generator"]["latent_dim"], False)
    classifier, _ = load_classifier("glyphs")
    return evaluate_generator(generator, task, classifier, samples, ["fid", "kid"], seed=0)


def real_vs_real(seed: int = 0) -> dict:
    """FID between two random halves of the real set: the floor of this protocol."""
    from kdgan.data import load_dataset
    from kdgan.metrics.classifier import load_classifier
    from kdgan.metrics.evaluate import real_features
    from kdgan.metrics.quality import fid, kid

    feats = real_features(load_dataset("glyphs", None, 32, 1).images, load_classifier("glyphs")[0])
    perm = torch.randperm(len(feats), generator=torch.Generator().manual_seed(seed))
    a, b = feats[perm[: len(perm) // 2]], feats[perm[len(perm) // 2 :]]
    return {"fid": fid(a, b), "kid": kid(a, b)[0], "samples_each": len(a)}


def arch_key(spec: dict) -> str:
    return (f"{spec['arch']}-w{spec['width']}" + (f"-b{spec['blocks']}" if spec.get("blocks") else "")
            + (f"-r{spec['head_residual']}" if spec.get("head_residual") else ""))


def profiles(specs: dict[str, dict], repeats: int, batch: int = 64) -> dict:
    """CPU efficiency of the teacher and each student architecture; each student's batch-64
    speed-up over the teacher is measured side by side (alternating rounds), in PyTorch and
    in ONNX Runtime (--quick: at a small `batch`, to show the code runs)."""
    from kdgan.pretrained import load_pretrained
    from kdgan.metrics.efficiency import profile_generator, side_by_side_speedup
    from kdgan.families import read_generator_spec
    from kdgan.nets import build_generator

    teacher, _, config = load_pretrained("glyph_teacher")
    latent = config["generator"]["latent_dim"]
    make = lambda n: (torch.randn(n, latent, generator=torch.Generator().manual_seed(0)),)  # noqa: E731
    out = {"teacher": profile_generator(teacher, make, (1, batch), repeats=repeats)}
    for key, spec in specs.items():
        student = build_generator(read_generator_spec(spec))  # a saved spec, any version
        out[key] = profile_generator(student, make, (1, batch), repeats=repeats)
        out[key]["side_by_side_b64"] = side_by_side_speedup(teacher, student, make, batch, rounds=max(3, repeats // 3),
                                                            repeats=min(10, repeats))
    return out


def speedups(student: dict) -> tuple[float, float | None]:
    """(PyTorch, ONNX Runtime) batch-64 speed-ups over the teacher, measured side by side."""
    s = student["side_by_side_b64"]
    return s["pytorch"]["speedup"], s["onnxruntime"]["speedup"] if "onnxruntime" in s else None


def summarise(runs: list[dict], teacher: dict, prof: dict, floor: dict) -> dict:
    by_variant: dict[str, list[dict]] = {}
    for r in runs:
        by_variant.setdefault(r["variant"], []).append(r)
    table = {}
    for name, rs in by_variant.items():
        fids, kids = [r["fid"] for r in rs], [r["kid"] for r in rs]
        arch = arch_key(rs[0]["generator_spec"])
        p, t = prof[arch], prof["teacher"]
        speedup, ort = speedups(p)
        table[name] = {
            "student": arch, "seeds": [r["seed"] for r in rs],
            "fid_mean": statistics.mean(fids), "fid_std": statistics.stdev(fids) if len(fids) > 1 else 0.0,
            "kid_mean": statistics.mean(kids), "kid_std": statistics.stdev(kids) if len(kids) > 1 else 0.0,
            "fids": fids, "macs_ratio": t["macs_per_sample"] / p["macs_per_sample"],
            "speedup_b64": speedup, "ort_speedup_b64": ort,
            "speedup_b1": t["latency"]["1"]["median_s"] / p["latency"]["1"]["median_s"],
        }
    scratch = {v["student"]: k for k, v in table.items() if k.endswith("scratch")}
    targets = {k: recipe_targets(v, table.get(scratch.get(v["student"])), teacher)
               for k, v in table.items() if not k.endswith("scratch")}
    distilled = [k for k in targets]
    best = min(distilled, key=lambda k: table[k]["fid_mean"]) if distilled else None
    all_met = [k for k in distilled if all(t["met"] for t in targets[k].values())]
    # The speed target in one runtime at a time: a student is deployed in one of them.
    quality = ("fid_within_1.10x_teacher", "fid_within_0.75x_scratch")
    per_runtime = {runtime: [k for k in distilled if all(targets[k].get(t, {}).get("met") for t in (*quality, key))]
                   for runtime, key in (("PyTorch eager", "speedup_b64_vs_0.6x_macs_ratio"),
                                        ("ONNX Runtime", "ort_speedup_b64_vs_0.6x_macs_ratio"))}
    summary = {"best_fid_recipe": best, "recipes_meeting_every_target": all_met,
               "recipes_meeting_every_target_with_speed_in": per_runtime}
    return {"teacher": teacher, "real_vs_real": floor, "variants": table, "targets": targets,
            "targets_summary": summary, "profiles": prof}


def recipe_targets(v: dict, scratch: dict | None, teacher: dict) -> dict:
    """Issue #4's targets for one recipe; the scratch baseline is the same student trained
    without a teacher."""
    out = {"fid_within_1.10x_teacher": {"value": v["fid_mean"] / teacher["fid"], "target": 1.10,
                                        "met": v["fid_mean"] <= 1.10 * teacher["fid"]}}
    if scratch is not None:
        ratio = v["fid_mean"] / scratch["fid_mean"]
        out["fid_within_0.75x_scratch"] = {"value": ratio, "target": 0.75, "met": ratio <= 0.75}
    out["speedup_b64_vs_0.6x_macs_ratio"] = {
        "value": v["speedup_b64"] / v["macs_ratio"], "target": 0.6, "met": v["speedup_b64"] >= 0.6 * v["macs_ratio"],
        "runtime": "PyTorch eager"}
    if v["ort_speedup_b64"] is not None:
        out["ort_speedup_b64_vs_0.6x_macs_ratio"] = {
            "value": v["ort_speedup_b64"] / v["macs_ratio"], "target": 0.6,
            "met": v["ort_speedup_b64"] >= 0.6 * v["macs_ratio"], "runtime": "ONNX Runtime (exported files)"}
    return out


def markdown(summary: dict) -> str:
    t = summary["teacher"]
    lines = ["| model | FID (mean ± std) | KID (mean ± std) | MACs ratio | CPU speed-up b=64, side by side | b=1 | ONNX Runtime b=64, side by side |",
             "|---|---|---|---|---|---|---|",
             f"| teacher (dcgan-w64) | {t['fid']:.2f} | {t['kid']:.4f} | 1.0x | 1.0x | 1.0x | 1.0x |"]
    for name, v in summary["variants"].items():
        lines.append(f"| {name} ({v['student']}) | {v['fid_mean']:.2f} ± {v['fid_std']:.2f} | "
                     f"{v['kid_mean']:.4f} ± {v['kid_std']:.4f} | {v['macs_ratio']:.1f}x | "
                     f"{v['speedup_b64']:.1f}x | {v['speedup_b1']:.1f}x | "
                     f"{'-' if v['ort_speedup_b64'] is None else format(v['ort_speedup_b64'], '.1f') + 'x'} |")
    lines.append(f"| real vs real (two halves) | {summary['real_vs_real']['fid']:.2f} | "
                 f"{summary['real_vs_real']['kid']:.4f} | | | | |")
    lines += ["", "| recipe | FID / teacher (<= 1.10) | FID / same student from scratch (<= 0.75) | "
              "speed-up / MACs ratio, PyTorch (>= 0.6) | ONNX Runtime (>= 0.6) |", "|---|---|---|---|---|"]
    for name, tgts in summary["targets"].items():
        cells = [tgts.get(k) for k in ("fid_within_1.10x_teacher", "fid_within_0.75x_scratch",
                                       "speedup_b64_vs_0.6x_macs_ratio", "ort_speedup_b64_vs_0.6x_macs_ratio")]
        lines.append(f"| {name} | " + " | ".join(
            "-" if c is None else f"{c['value']:.2f} {'met' if c['met'] else 'NOT met'}" for c in cells) + " |")
    s = summary["targets_summary"]
    lines.append(f"\nbest FID: {s['best_fid_recipe']}; meeting every target in both runtimes: "
                 f"{', '.join(s['recipes_meeting_every_target']) or 'none'}")
    for runtime, names in s.get("recipes_meeting_every_target_with_speed_in", {}).items():
        lines.append(f"meeting both quality targets and the speed target in {runtime}: {', '.join(names) or 'none'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized smoke run")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help=f"comma-separated, from: {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "benchmark")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--note", help="how the runs were made (kept in the JSON's settings)")
    parser.add_argument("--collect", action="store_true",
                        help="do not train: summarise the evaluated run folders already in --work")
    parser.add_argument("--profile-only", action="store_true",
                        help="re-measure the efficiency profiles (and targets) of an existing --out, e.g. on an idle "
                             "machine after training ran beside other jobs")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.samples, args.seeds, args.batch_size = 10, 300, "0,1", 16
        args.variants = "scratch,l1_feature_disc"  # the plain and the fullest recipe
    out = args.out or ROOT / "benchmarks" / "results" / f"glyph_benchmark{'_quick' if args.quick else ''}.json"
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        sys.exit(f"--variants: unknown {unknown}; valid: {', '.join(VARIANTS)}")

    torch.set_num_threads(args.threads)
    if args.profile_only:
        previous = json.loads(out.read_text())
        runs = previous["runs"]
        specs = {arch_key(r["generator_spec"]): r["generator_spec"] for r in runs}
        summary = summarise(runs, previous["teacher"], profiles(specs, repeats=30), previous["real_vs_real"])
        summary["settings"] = {**previous["settings"], "profile_threads": torch.get_num_threads(),
                               "profiled_separately": True}
        summary["runs"] = runs
        out.write_text(json.dumps(summary, indent=2))
        print(markdown(summary))
        return
    started = time.time()
    runs = []
    for name in variants:
        for seed in map(int, args.seeds.split(",")):
            if args.collect:
                runs.append(collect_run(name, seed, args.steps, args.work))
                continue
            r = run_variant(name, seed, args.steps, args.batch_size, args.work, args.samples)
            print(f"{name} seed {seed}: FID {r['fid']:.2f} KID {r['kid']:.4f} ({r['train_seconds']:.0f}s)", flush=True)
            runs.append(r)
    specs = {arch_key(r["generator_spec"]): r["generator_spec"] for r in runs}
    summary = summarise(runs, teacher_quality(args.samples), profiles(specs, *((2, 4) if args.quick else (30, 64))),
                        real_vs_real())
    summary["settings"] = {"steps": args.steps, "batch_size": args.batch_size, "samples": args.samples,
                           "seeds": args.seeds, "features": "glyphs (shipped classifier)",
                           "torch": torch.__version__, "threads": torch.get_num_threads(),
                           "wall_seconds": time.time() - started, **({"note": args.note} if args.note else {})}
    summary["runs"] = runs
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(markdown(summary))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

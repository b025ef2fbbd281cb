"""The glyph benchmark: the shipped teacher vs >= 16x cheaper students, trained the same
number of steps without a teacher (scratch) and with each distillation recipe, over several
seeds. Quality of the final checkpoint (FID, KID against all 9,424 real glyphs, fixed sample
count), the efficiency profile, and the targets of issue #4.

    python benchmarks/glyph_benchmark.py                       # full: ~2 h on 2 CPU cores
    python benchmarks/glyph_benchmark.py --quick               # smoke run, a few minutes
    python benchmarks/glyph_benchmark.py --variants scratch,l1 --steps 1000 --seeds 0,1

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
# the width-64 teacher) or separable width 22 (16.7x); student D width 32.
VARIANTS = {
    "scratch": ("distill_l1.yaml", ["distill.terms=[]"]),
    "seed_recipe": ("seed_recipe.yaml", []),
    "l1": ("distill_l1.yaml", []),
    "l1_feature": ("distill_feature.yaml", []),
    "l1_feature_disc": ("distill_full.yaml", []),
    "prune_l1_feature": ("distill_prune.yaml", []),
    "mobile_l1_kernel": ("distill_mobile.yaml", []),
}


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
    from kdgan.data.sampling import LatentTask
    from kdgan.export import load_pretrained
    from kdgan.metrics.classifier import load_classifier
    from kdgan.metrics.evaluate import evaluate_generator

    generator, _, config = load_pretrained("glyph_teacher")
    task = LatentTask(load_dataset("glyphs", None, 32, 1), config["generator"]["latent_dim"], False)
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


def profiles(specs: dict[str, dict], repeats: int) -> dict:
    """CPU efficiency of the teacher and each student architecture, measured side by side."""
    from kdgan.export import load_pretrained
    from kdgan.metrics.efficiency import profile_generator
    from kdgan.nets import GeneratorSpec, build_generator

    teacher, _, config = load_pretrained("glyph_teacher")
    latent = config["generator"]["latent_dim"]
    make = lambda n: (torch.randn(n, latent, generator=torch.Generator().manual_seed(0)),)  # noqa: E731
    out = {"teacher": profile_generator(teacher, make, repeats=repeats)}
    for key, spec in specs.items():
        out[key] = profile_generator(build_generator(GeneratorSpec(**spec)), make, repeats=repeats)
    return out


def ort_speedup(teacher: dict, student: dict) -> float | None:
    """Batch-64 speed-up of the exported ONNX files under onnxruntime, when measured."""
    t, s = teacher.get("onnxruntime_latency") or {}, student.get("onnxruntime_latency") or {}
    if "64" not in t or "64" not in s:
        return None
    return t["64"]["median_s"] / s["64"]["median_s"]


def summarise(runs: list[dict], teacher: dict, prof: dict, floor: dict) -> dict:
    by_variant: dict[str, list[dict]] = {}
    for r in runs:
        by_variant.setdefault(r["variant"], []).append(r)
    table = {}
    for name, rs in by_variant.items():
        fids, kids = [r["fid"] for r in rs], [r["kid"] for r in rs]
        arch = f"{rs[0]['generator_spec']['arch']}-w{rs[0]['generator_spec']['width']}"
        p, t = prof[arch], prof["teacher"]
        table[name] = {
            "student": arch, "seeds": [r["seed"] for r in rs],
            "fid_mean": statistics.mean(fids), "fid_std": statistics.stdev(fids) if len(fids) > 1 else 0.0,
            "kid_mean": statistics.mean(kids), "kid_std": statistics.stdev(kids) if len(kids) > 1 else 0.0,
            "fids": fids, "macs_ratio": t["macs_per_sample"] / p["macs_per_sample"],
            "speedup_b64": t["latency"]["64"]["median_s"] / p["latency"]["64"]["median_s"],
            "speedup_b1": t["latency"]["1"]["median_s"] / p["latency"]["1"]["median_s"],
            "ort_speedup_b64": ort_speedup(t, p),
        }
    distilled = {k: v for k, v in table.items() if k != "scratch"}
    best = min(distilled, key=lambda k: distilled[k]["fid_mean"]) if distilled else None
    targets = {}
    if best:
        b = table[best]
        targets = {
            "best_recipe": best,
            "fid_within_1.10x_teacher": {"value": b["fid_mean"] / teacher["fid"], "target": 1.10,
                                         "met": b["fid_mean"] <= 1.10 * teacher["fid"]},
        }
        if "scratch" in table:
            ratio = b["fid_mean"] / table["scratch"]["fid_mean"]
            targets["fid_within_0.75x_scratch"] = {"value": ratio, "target": 0.75, "met": ratio <= 0.75}
        targets["speedup_b64_vs_0.6x_macs_ratio"] = {
            "value": b["speedup_b64"] / b["macs_ratio"], "target": 0.6, "met": b["speedup_b64"] >= 0.6 * b["macs_ratio"],
            "runtime": "PyTorch eager"}
        if b["ort_speedup_b64"] is not None:
            targets["ort_speedup_b64_vs_0.6x_macs_ratio"] = {
                "value": b["ort_speedup_b64"] / b["macs_ratio"], "target": 0.6,
                "met": b["ort_speedup_b64"] >= 0.6 * b["macs_ratio"], "runtime": "ONNX Runtime (exported files)"}
    return {"teacher": teacher, "real_vs_real": floor, "variants": table, "targets": targets, "profiles": prof}


def markdown(summary: dict) -> str:
    t = summary["teacher"]
    lines = ["| model | FID (mean ± std) | KID (mean ± std) | MACs ratio | CPU speed-up b=64 | b=1 | ONNX Runtime b=64 |",
             "|---|---|---|---|---|---|---|",
             f"| teacher (dcgan-w64) | {t['fid']:.2f} | {t['kid']:.4f} | 1.0x | 1.0x | 1.0x | 1.0x |"]
    for name, v in summary["variants"].items():
        lines.append(f"| {name} ({v['student']}) | {v['fid_mean']:.2f} ± {v['fid_std']:.2f} | "
                     f"{v['kid_mean']:.4f} ± {v['kid_std']:.4f} | {v['macs_ratio']:.1f}x | "
                     f"{v['speedup_b64']:.1f}x | {v['speedup_b1']:.1f}x | "
                     f"{'-' if v['ort_speedup_b64'] is None else format(v['ort_speedup_b64'], '.1f') + 'x'} |")
    lines.append(f"| real vs real (two halves) | {summary['real_vs_real']['fid']:.2f} | "
                 f"{summary['real_vs_real']['kid']:.4f} | | | | |")
    for name, tgt in summary["targets"].items():
        if isinstance(tgt, dict):
            where = f" [{tgt['runtime']}]" if "runtime" in tgt else ""
            lines.append(f"\n{name}{where}: {tgt['value']:.3f} (target {tgt['target']}) -> {'met' if tgt['met'] else 'NOT met'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized smoke run")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "benchmark")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--collect", action="store_true",
                        help="do not train: summarise the evaluated run folders already in --work")
    parser.add_argument("--profile-only", action="store_true",
                        help="re-measure the efficiency profiles (and targets) of an existing --out, e.g. on an idle "
                             "machine after training ran beside other jobs")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.samples, args.seeds = 20, 500, "0,1"
        args.variants = "scratch,l1,l1_feature_disc"
    out = args.out or ROOT / "benchmarks" / "results" / f"glyph_benchmark{'_quick' if args.quick else ''}.json"
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        sys.exit(f"--variants: unknown {unknown}; valid: {', '.join(VARIANTS)}")

    torch.set_num_threads(args.threads)
    if args.profile_only:
        previous = json.loads(out.read_text())
        runs = previous["runs"]
        specs = {f"{r['generator_spec']['arch']}-w{r['generator_spec']['width']}": r["generator_spec"] for r in runs}
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
    specs = {f"{r['generator_spec']['arch']}-w{r['generator_spec']['width']}": r["generator_spec"] for r in runs}
    summary = summarise(runs, teacher_quality(args.samples), profiles(specs, repeats=5 if args.quick else 30),
                        real_vs_real())
    summary["settings"] = {"steps": args.steps, "batch_size": args.batch_size, "samples": args.samples,
                           "seeds": args.seeds, "features": "glyphs (shipped classifier)",
                           "torch": torch.__version__, "threads": torch.get_num_threads(),
                           "wall_seconds": time.time() - started}
    summary["runs"] = runs
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(markdown(summary))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

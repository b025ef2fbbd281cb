"""Do kdgan's quality numbers mean something on data it has never seen? Feature spaces and
C2ST on the glyphs (labels known) and on a folder of coloured shapes rendered by
scripts/build_shapes.py (a source kdgan never trained on).

    python benchmarks/feature_trust.py --out benchmarks/results/feature_trust.json

For each dataset: FID in a labelled classifier's features and in self-supervised (SimCLR)
features, and C2ST (no feature network), each for real vs real (two halves of the data) and
teacher vs real. On the glyphs, also whether the self-supervised FID ranks generators as the
classifier FID does: Spearman's rank correlation over the glyph benchmark's students (three
recipes at 500 and 1,000 steps, seed 0), the demo recipe's student and the shipped teacher.

Everything goes through the CLI a user would call (features train, train, distill), then
kdgan.metrics.evaluate. About 25 minutes on 2 cores; run folders are kept under --work, and
--reuse keeps finished ones.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from glyph_benchmark import VARIANTS  # noqa: E402

STUDENTS = ("scratch", "l1", "prune_l1_feature")  # glyph benchmark recipes, weak to strong


def kdgan(*args, reuse_if: Path | None = None) -> None:
    """`kdgan ARGS` as a user would run it; skipped when `reuse_if` already exists."""
    if reuse_if is not None and reuse_if.exists():
        return
    subprocess.run([sys.executable, "-m", "kdgan", *map(str, args)], cwd=ROOT, check=True)


def spearman(a: list[float], b: list[float]) -> float:
    """Rank correlation (no ties expected among FIDs)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def scores(source: str | Path, cfg_source: str | Path, extractors: dict, samples: int, c2st: bool) -> dict:
    """FID (+ its real-vs-real) in each extractor, C2ST (+ real-vs-real) once."""
    from kdgan.config import validate
    from kdgan.loading import load_gan
    from kdgan.metrics.classifier import load_classifier
    from kdgan.metrics.evaluate import evaluate_generator, resolve_source
    from kdgan.tasks import build_task

    _, config, step, _ = resolve_source(cfg_source)
    task = build_task(validate(config))
    generator = load_gan(source).generator
    out = {"step": step}
    for i, (kind, path) in enumerate(extractors.items()):
        metrics = ["fid", "c2st"] if c2st and i == 0 else ["fid"]
        result = evaluate_generator(generator, task, load_classifier(path)[0], samples, metrics)
        out[f"fid_{kind}"], out[f"real_vs_real_fid_{kind}"] = result["fid"], result["real_vs_real"]["fid"]
        if "c2st" in result:
            out["c2st"], out["c2st_ci95"] = result["c2st"], result["c2st_ci95"]
            out["real_vs_real_c2st"] = result["real_vs_real"]["c2st"]
            out["real_vs_real_c2st_ci95"] = result["real_vs_real"]["c2st_ci95"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "feature_trust")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--shapes-per-class", type=int, default=500)
    parser.add_argument("--teacher-steps", type=int, default=2000, help="the shapes teacher's training steps")
    parser.add_argument("--student-steps", type=int, default=1000)
    parser.add_argument("--ssl-epochs", type=int, default=30, help="self-supervised epochs on the glyphs")
    parser.add_argument("--reuse", action="store_true", help="keep finished run and feature folders under --work")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "feature_trust.json")
    args = parser.parse_args()
    work, reuse = args.work, args.reuse
    torch.set_num_threads(2)

    shapes = work / "shapes"
    if not (reuse and shapes.is_dir()):
        subprocess.run([sys.executable, ROOT / "scripts/build_shapes.py", "--out", shapes, "--per-class",
                        str(args.shapes_per_class)], check=True)
    glyph_ssl, shapes_cls, shapes_ssl = work / "glyphs_ssl", work / "shapes_classifier", work / "shapes_ssl"
    kdgan("features", "train", "glyphs", "--self-supervised", "--epochs", args.ssl_epochs, "--out", glyph_ssl,
          reuse_if=glyph_ssl if reuse else None)
    kdgan("features", "train", "folder", "--path", shapes, "--channels", 3, "--epochs", 30, "--out", shapes_cls,
          reuse_if=shapes_cls if reuse else None)
    kdgan("features", "train", "folder", "--path", shapes, "--channels", 3, "--self-supervised", "--out", shapes_ssl,
          reuse_if=shapes_ssl if reuse else None)
    shapes_teacher = work / "shapes_teacher"
    kdgan("train", "--config", "configs/folder_teacher.yaml", "--set", f"data.path={shapes}", "--set",
          f"train.steps={args.teacher_steps}", "--set", "log.progress=false", "--out", shapes_teacher, "--overwrite",
          reuse_if=shapes_teacher / "checkpoints" if reuse else None)
    students = []
    for name in STUDENTS:
        recipe, overrides = VARIANTS[name]
        run = work / f"glyph_{name}"
        sets = [*overrides, "seed=0", f"train.steps={args.student_steps}", "log.checkpoint_every=500",
                "log.keep_checkpoints=5", "log.progress=false"]
        kdgan("distill", "--config", f"configs/{recipe}", *(a for o in sets for a in ("--set", o)), "--out", run,
              "--overwrite", reuse_if=run / "checkpoints" if reuse else None)
        students += sorted((run / "checkpoints").glob("step_*.json"))
    demo = ROOT / "runs" / "demo_seeds" / "seed_0"  # benchmarks/demo_seeds.py's run, when present
    if demo.is_dir():
        students.append(demo)

    glyph_extractors = {"classifier": "glyphs", "self_supervised": str(glyph_ssl)}
    shape_extractors = {"classifier": str(shapes_cls), "self_supervised": str(shapes_ssl)}
    result = {
        "samples": args.samples,
        "extractors": {name: json.loads((Path(p) / "config.json").read_text()) for name, p in
                       [("glyphs_self_supervised", glyph_ssl), ("shapes_classifier", shapes_cls),
                        ("shapes_self_supervised", shapes_ssl)]},
        "glyphs_teacher": scores("glyph_teacher", "glyph_teacher", glyph_extractors, args.samples, c2st=True),
        "shapes_teacher": scores(shapes_teacher, shapes_teacher, shape_extractors, args.samples, c2st=True),
        "glyph_generators": [],
    }
    for student in students:
        row = scores(student, student, glyph_extractors, args.samples, c2st=False)
        source = student.relative_to(ROOT) if student.is_relative_to(ROOT) else student
        result["glyph_generators"].append({"source": str(source), **row})
    ranked = result["glyph_generators"] + [{"source": "glyph_teacher", **result["glyphs_teacher"]}]
    result["spearman_self_supervised_vs_classifier_fid"] = spearman(
        [r["fid_classifier"] for r in ranked], [r["fid_self_supervised"] for r in ranked])
    result["spearman_generators"] = len(ranked)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name in ("glyphs_teacher", "shapes_teacher"):
        r = result[name]
        print(f"{name}: FID classifier {r['fid_classifier']:.2f} (real vs real {r['real_vs_real_fid_classifier']:.2f}), "
              f"self-supervised {r['fid_self_supervised']:.2f} (real vs real {r['real_vs_real_fid_self_supervised']:.2f}), "
              f"C2ST {r['c2st']:.3f} (real vs real {r['real_vs_real_c2st']:.3f})")
    print(f"Spearman, self-supervised vs classifier FID over {len(ranked)} glyph generators: "
          f"{result['spearman_self_supervised_vs_classifier_fid']:.3f}")


if __name__ == "__main__":
    main()

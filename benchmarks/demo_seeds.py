"""`make demo`'s student over several seeds: the spread the README quotes beside the demo table.

Training is bit-identical on one machine, not across CPU instruction sets (a different SIMD
path changes the floating-point reduction order, and a GAN amplifies that), so one seed's FID
on one machine is not a number to expect elsewhere: this script gives the spread over seeds,
and records the CPU it ran on.

    python benchmarks/demo_seeds.py --seeds 0,1,2 --out benchmarks/results/demo_seeds.json

Each seed runs the demo's two commands (`kdgan distill --config configs/demo.yaml`, then
`kdgan evaluate --samples 5000 --no-profile`), about 4 minutes on 2 cores. `--reuse` keeps
run folders under --work that already finished and reads their eval.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("fid", "kid", "is", "precision", "recall")


def cpu_model() -> str:
    """The CPU's name and the SIMD extensions that decide torch's kernel paths."""
    info = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []
    name = next((l.split(":", 1)[1].strip() for l in info if l.startswith("model name")), platform.processor())
    flags = next((l.split(":", 1)[1].split() for l in info if l.startswith("flags")), [])
    simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name} ({', '.join(simd) or 'no AVX2'})"


def run_seed(seed: int, work: Path, samples: int, reuse: bool) -> dict:
    run = work / f"seed_{seed}"
    kdgan = [sys.executable, "-m", "kdgan"]
    evaluations = run / "eval.json"
    if not (reuse and evaluations.is_file()):
        subprocess.run([*kdgan, "distill", "--config", "configs/demo.yaml", "--set", f"seed={seed}",
                        "--set", "log.progress=false", "--out", str(run), "--overwrite"], cwd=ROOT, check=True)
        subprocess.run([*kdgan, "evaluate", str(run), "--samples", str(samples), "--no-profile"], cwd=ROOT,
                       check=True)
    last = json.loads(evaluations.read_text())["evaluations"][-1]
    return {"seed": seed, "step": last["step"], **{k: last[k] for k in METRICS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "demo_seeds")
    parser.add_argument("--reuse", action="store_true", help="keep finished, evaluated runs under --work")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "demo_seeds.json")
    args = parser.parse_args()
    rows = [run_seed(int(s), args.work, args.samples, args.reuse) for s in args.seeds.split(",")]
    summary = {k: {"mean": statistics.mean(r[k] for r in rows),
                   "std": statistics.stdev(r[k] for r in rows) if len(rows) > 1 else 0.0} for k in METRICS}
    result = {"recipe": "configs/demo.yaml", "samples": args.samples, "cpu": cpu_model(),
              "runs": rows, "summary": summary}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    each = ", ".join(f"{r['fid']:.2f}" for r in rows)
    print(f"FID {summary['fid']['mean']:.2f} ± {summary['fid']['std']:.2f} over seeds {args.seeds} ({each}); {args.out}")


if __name__ == "__main__":
    main()

"""The vocoder benchmark (issue #17): the shipped Vocos-style teacher against students with
8.4x fewer MACs (configs/vocoder_distill.yaml: width 64, a 512-point head), trained the same
number of steps from scratch, with distillation, and with pruning init + distillation, over
several seeds; quality on the held-out sentences (and the held-out voice beside), Griffin-Lim
as the baseline, and the efficiency of teacher and student measured side by side.

    python benchmarks/vocoder_benchmark.py                      # 3 seeds, the kinds below, the recipe's steps
    python benchmarks/vocoder_benchmark.py --seeds 0 --steps 1100 --kinds scratch,pruned
    python benchmarks/vocoder_benchmark.py --quick              # smoke run, about a minute

Student kinds (--kinds):
  scratch             the student's network and D trained on the recordings alone (no teacher)
  distilled           + the distillation terms of vocoder_distill.yaml, D initialised from the
                      teacher's; the generator from scratch
  pruned              + the generator initialised from the teacher's strongest channels (the
                      recipe as shipped)
  scratch_equal_time  scratch, trained for as many steps as fit in the pruned runs' mean
                      wall time (a distillation step also runs the teacher: the fair
                      comparison at equal cost)

At any --steps the recipe's share of warm-up steps is kept (5,000 of 5,500). On 2 cores, two
1-thread invocations with different --kinds and --no-profile can train side by side (the
README has the commands); a final --reuse invocation over all kinds collects the runs and
their evaluations and profiles on the then idle machine. Writes
benchmarks/results/vocoder_benchmark.json (or _quick) and prints the README table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ["distill.terms=[]", "distill.student.init=scratch", "distill.discriminator.init=scratch"]
KINDS = {"scratch": SCRATCH, "distilled": ["distill.student.init=scratch"], "pruned": [],
         "scratch_equal_time": SCRATCH}
METRICS = ("mel_l1", "mrstft", "pesq", "stoi", "mcd", "f0_rmse", "vuv_error")
AUDIO_SECONDS = 2.0  # the clip length of the speed measurements (125 mel frames)


def common(config: str, steps: int, extra: list[str]) -> list[str]:
    """The recipe's proportions at `steps`: the same share of them without the discriminator."""
    recipe = yaml.safe_load((ROOT / "configs" / config).read_text())["train"]
    warm = round(steps * recipe.get("adversarial_start", 0) / recipe["steps"])
    return [f"train.steps={steps}", f"train.adversarial_start={warm}", "log.progress=false",
            "log.tensorboard=false", f"log.sample_every={steps}", f"log.checkpoint_every={steps}",
            f"log.log_every={max(1, steps // 20)}", *extra]


def finished(run: Path, steps: int) -> bool:
    return (run / "checkpoints" / f"step_{steps:07d}.json").is_file() and (run / "train_seconds.json").is_file()


def train(name: str, config: str, steps: int, overrides: list[str], work: Path, reuse: bool) -> dict:
    from kdgan.config import load_config
    from kdgan.train.run import start_run

    out = work / name
    if reuse and finished(out, steps):
        return {"run": out, "train_seconds": json.loads((out / "train_seconds.json").read_text())}
    cfg = load_config(ROOT / "configs" / config, common(config, steps, overrides))
    start = time.perf_counter()
    start_run(cfg, out, resume=False, overwrite=True).fit(out)
    seconds = time.perf_counter() - start
    (out / "train_seconds.json").write_text(json.dumps(seconds))
    return {"run": out, "train_seconds": seconds}


def earlier_evaluation(out: Path, samples: int) -> dict | None:
    """The evaluation this script already wrote in `out` with every metric and as many clips
    (the held-out clips take minutes to score: pYIN)."""
    path = out / "eval.json"
    if not path.is_file():
        return None
    entry = json.loads(path.read_text())["evaluations"][-1]
    complete = all(k in entry for k in METRICS) and "held_out_voice" in entry
    return entry if complete and (samples == 0 or entry.get("clips") == samples) else None


def quality(source: str | Path, out: Path, samples: int, reuse: bool = False) -> dict:
    """Held-out sentences (the means and their spread over clips), the held-out voice, the
    Griffin-Lim baseline, and for a student its fidelity to the teacher."""
    from kdgan.metrics.evaluate import evaluate_source

    r = (reuse and earlier_evaluation(out, samples)) or \
        evaluate_source(source, samples, list(METRICS), None, seed=0, profile=False, out=out)
    keep = {k: r[k] for k in (*METRICS, "clips", "step") if k in r}
    for part in ("held_out_voice", "fidelity"):
        if part in r:
            keep[part] = {k: r[part][k] for k in (*METRICS, "clips") if k in r[part]}
    keep["griffin_lim"] = {k: v for k, v in r["baselines"]["Griffin-Lim, 32 iterations"].items()
                           if k in (*METRICS, "clips")}
    return keep


def generator_and_task(source: str | Path):
    from kdgan.config import validate
    from kdgan.loading import load_gan
    from kdgan.metrics.evaluate import resolve_source
    from kdgan.tasks import build_task

    loadable, train_config, _, _ = resolve_source(source)
    return load_gan(loadable).generator.eval(), build_task(validate(train_config))


def mels(n: int) -> tuple[torch.Tensor]:
    """A batch of n log-mels of AUDIO_SECONDS (the vocoder's input for speed measurements)."""
    frames = int(AUDIO_SECONDS * 16000) // 256
    return (torch.randn(n, 80, frames, generator=torch.Generator().manual_seed(0)) - 4,)


def efficiency(teacher: str | Path, student: Path, repeats: int, make=mels) -> dict:
    """Parameters, MACs per second of audio, real-time factor (seconds of audio made per
    second, batch 1, `make`'s inputs of AUDIO_SECONDS) on 1 and 2 threads in PyTorch eager and
    ONNX Runtime, peak memory, and the speed-up measured side by side (alternating rounds)."""
    from kdgan.metrics.efficiency import count_params, macs_per_sample, peak_memory_bytes, side_by_side_speedup

    nets = {"teacher": generator_and_task(teacher)[0], "student": generator_and_task(student)[0]}
    out = {name: {"params": count_params(g), "macs_per_audio_second": macs_per_sample(g, make(1)) / AUDIO_SECONDS,
                  "peak_memory_bytes_b1": peak_memory_bytes(g, make(1))} for name, g in nets.items()}
    threads_before = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        side = side_by_side_speedup(nets["teacher"], nets["student"], make, batch=1, rounds=max(3, repeats // 3),
                                    repeats=repeats)
        out[f"side_by_side_{threads}_threads"] = side
        for runtime, v in side.items():
            for name in nets:
                out[name].setdefault("real_time_factor", {})[f"{runtime}_{threads}_threads"] = \
                    AUDIO_SECONDS / v[f"{name}_median_s"]
    torch.set_num_threads(threads_before)
    return out


def equal_time_steps(work: Path, steps: int, reuse: bool, earlier: Path | None = None) -> int:
    """Steps at scratch's pace that take the pruned runs' mean wall time: from the scratch
    and pruned runs finished in `work` (another invocation may have trained them), or where
    `work` lacks either kind, the train seconds recorded in the `earlier` results (--add-to).
    Kept in `work`, so that --reuse finds the same runs after more pruned runs have finished."""
    kept = work / "scratch_equal_time_steps.json"
    if reuse and kept.is_file():
        return json.loads(kept.read_text())
    paced = {kind: [json.loads(p.read_text()) for p in work.glob(f"{kind}_seed*/train_seconds.json")]
             for kind in ("scratch", "pruned")}
    if not all(paced.values()) and earlier is not None and earlier.is_file():  # both kinds from one source
        recorded = json.loads(earlier.read_text())["runs"]
        paced = {kind: [r["train_seconds"] for r in recorded if r["kind"] == kind and r["steps"] == steps]
                 for kind in paced}
    if not all(paced.values()):
        sys.exit(f"--kinds: scratch_equal_time needs finished scratch and pruned runs in {work} "
                 f"(or in the --add-to results); train them first")
    equal = round(steps * statistics.mean(paced["pruned"]) / statistics.mean(paced["scratch"]))
    kept.write_text(json.dumps(equal))
    return equal


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def by_kind(rows: list[dict], metrics: tuple[str, ...], voice: bool = True) -> dict:
    """Per student kind: its seeds, steps and train seconds, and for each metric (and the
    held-out voice's, `voice_` + metric) the values over seeds, their mean and std."""
    table = {}
    for row in rows:
        entry = table.setdefault(row["kind"], {"seeds": [], "steps": row["steps"], "train_seconds": []})
        entry["seeds"].append(row["seed"])
        entry["train_seconds"].append(row["train_seconds"])
        for key in metrics:
            entry.setdefault(f"{key}s", []).append(row[key])
            if voice:
                entry.setdefault(f"voice_{key}s", []).append(row["held_out_voice"][key])
    for entry in table.values():
        for key in [k for k in entry if k.endswith("s") and isinstance(entry[k], list) and k != "seeds"]:
            entry[f"{key[:-1]}_mean"], entry[f"{key[:-1]}_std"] = mean_std(entry[key])
    return table


def summarise(teacher_q: dict, rows: list[dict], eff: dict | None) -> dict:
    table = by_kind(rows, METRICS)
    targets = {}
    scratch = table.get("scratch")
    for kind in ("distilled", "pruned"):
        if kind not in table or scratch is None:
            continue
        for key, better in (("mel_l1", -1), ("pesq", 1)):
            gap = teacher_q[key] - scratch[f"{key}_mean"]
            closed = (table[kind][f"{key}_mean"] - scratch[f"{key}_mean"]) / gap if gap * better > 0 else None
            targets[f"{kind}_closes_half_the_{key}_gap"] = {"value": closed, "target": 0.5,
                                                           "met": closed is not None and closed >= 0.5}
    if eff is not None:
        targets.update(efficiency_targets(eff, threads=1, real_time=300))
    return {"teacher": teacher_q, "students": table, "targets": targets, "efficiency": eff}


def efficiency_targets(eff: dict, threads: int, real_time: float | None) -> dict:
    """The audio issues' speed targets: MACs ratio >= 8, speed-up on 1 thread >= 0.6x the MACs
    ratio in each runtime, and (unless None) the student >= `real_time` x real time on `threads`
    threads in one."""
    macs = eff["teacher"]["macs_per_audio_second"] / eff["student"]["macs_per_audio_second"]
    targets = {"macs_ratio_at_least_8": {"value": macs, "target": 8, "met": macs >= 8}}
    for runtime in eff["side_by_side_1_threads"]:
        speed = eff["side_by_side_1_threads"][runtime]["speedup"]
        targets[f"{runtime}_speedup_1_thread_vs_0.6x_macs_ratio"] = {
            "value": speed / macs, "target": 0.6, "met": speed >= 0.6 * macs}
    if real_time is None:
        return targets
    rtf = eff["student"]["real_time_factor"]
    best = max(rtf.get(f"{r}_{threads}_threads", 0) for r in ("pytorch", "onnxruntime"))
    plural = "thread" if threads == 1 else "threads"
    targets[f"student_real_time_factor_{threads}_{plural}_at_least_{real_time:g}"] = {
        "value": best, "target": real_time, "met": best >= real_time}
    return targets


def markdown(results: dict) -> str:
    t, eff = results["teacher"], results.get("efficiency")
    f = lambda e, key, spec: f"{spec.format(e[f'{key}_mean'])} ± {spec.format(e[f'{key}_std'])}"  # noqa: E731
    cols = (("mel_l1", "{:.3f}"), ("mrstft", "{:.3f}"), ("pesq", "{:.2f}"), ("stoi", "{:.3f}"), ("mcd", "{:.2f}"),
            ("f0_rmse", "{:.1f}"), ("vuv_error", "{:.3f}"))
    lines = ["| model | log-mel L1 ↓ | MR-STFT ↓ | PESQ ↑ | STOI ↑ | MCD dB ↓ | F0 RMSE Hz ↓ | V/UV error ↓ "
             "| held-out voice: log-mel L1 / PESQ | steps | train min |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, q in (("teacher", t), ("Griffin-Lim, 32 iterations", t["griffin_lim"])):
        voice = f"{q['held_out_voice']['mel_l1']:.3f} / {q['held_out_voice']['pesq']:.2f}" if "held_out_voice" in q else ""
        lines.append(f"| {name} | " + " | ".join(spec.format(q[k]) for k, spec in cols) + f" | {voice} | | |")
    for kind, e in results["students"].items():
        lines.append(f"| {kind} student | " + " | ".join(f(e, k, spec) for k, spec in cols) +
                     f" | {e['voice_mel_l1_mean']:.3f} / {e['voice_pesq_mean']:.2f} | "
                     f"{e['steps']} | {statistics.mean(e['train_seconds']) / 60:.0f} |")
    return "\n".join(lines + efficiency_and_targets(eff, results["targets"]))


def efficiency_and_targets(eff: dict | None, targets: dict) -> list[str]:
    """The README's speed table (teacher and student) and one line per target."""
    lines = []
    if eff:
        lines += ["", "| | parameters | MACs per second of audio | × real time, 1 thread (PyTorch / ONNX Runtime) "
                  "| × real time, 2 threads (PyTorch / ONNX Runtime) |", "|---|---|---|---|---|"]
        for name in ("teacher", "student"):
            e, rtf = eff[name], eff[name]["real_time_factor"]
            cell = lambda th: " / ".join(f"{rtf[k]:.0f}" for k in (f"pytorch_{th}_threads",  # noqa: E731
                                                                     f"onnxruntime_{th}_threads") if k in rtf)
            lines.append(f"| {name} | {e['params'] / 1e6:.2f}M | {e['macs_per_audio_second'] / 1e6:.0f}M | "
                         f"{cell(1)} | {cell(2)} |")
    return lines + target_lines(targets)


def target_lines(targets: dict) -> list[str]:
    """One line per target: its value, the target, met or NOT met, and its note."""
    lines = []
    for name, tgt in targets.items():
        value = "n/a" if tgt["value"] is None else f"{tgt['value']:.3f}"
        note = f" ({tgt['note']})" if tgt.get("note") else ""
        lines.append(f"\n{name}: {value} (target {tgt['target']:g}) -> {'met' if tgt['met'] else 'NOT met'}{note}")
    return lines


def arguments(doc: str, teacher: str, work: str, config: str, kinds: dict = KINDS,
              options=None) -> argparse.Namespace:
    """The command line every audio benchmark takes (its teacher, work folder and student
    recipe by default; `kinds`: its student kinds and their overrides, kept as args.kind_overrides;
    `options`: adds a benchmark's own options to the parser)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if options is not None:
        options(parser)
    parser.add_argument("--config", default=config, help="the students' recipe, in configs/")
    parser.add_argument("--quick", action="store_true", help="CI-sized smoke run (tiny teacher trained here)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--kinds", default=",".join(kinds), help=f"student kinds: {', '.join(kinds)}")
    parser.add_argument("--steps", type=int, help="student steps (default: the recipe's)")
    parser.add_argument("--teacher", default=teacher, help="shipped name, pretrained folder or run")
    parser.add_argument("--samples", type=int, default=0, help="held-out clips to score (0: all)")
    parser.add_argument("--threads", type=int, default=2, help="threads for training")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / work)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--note", help="how the runs were made (kept in the JSON's settings)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the runs and evaluations already finished in --work")
    parser.add_argument("--no-profile", action="store_true", help="no efficiency measurements (busy machine)")
    parser.add_argument("--finished-only", action="store_true",
                        help="with --reuse: collect the runs already finished in --work and train none; a kind "
                             "then has as many seeds as finished (the table says how many)")
    parser.add_argument("--add-to", type=Path,
                        help="a committed results JSON whose runs are kept: the runs trained now are added (or "
                             "replace the same kind and seed), its teacher scores and efficiency are kept unless "
                             "measured again; for more seeds or kinds once the earlier runs' folders are gone")
    args = parser.parse_args()
    if args.finished_only and not args.reuse:
        sys.exit("--finished-only: collects finished runs; add --reuse")
    unknown = [k for k in args.kinds.split(",") if k not in kinds]
    if unknown:
        sys.exit(f"--kinds: unknown {unknown}; valid: {', '.join(kinds)}")
    args.kind_overrides = kinds
    return args


def student_runs(args: argparse.Namespace, config: str, extra: list[str], quality,
                 scratch: tuple[str, list[str]] | None = None) -> list[dict]:
    """Train (or with --reuse find) every --kinds student for every --seeds seed from the
    recipe `config`, and score each with `quality(run, out, samples, reuse)`. `scratch`: the
    (recipe, overrides) scratch students train by instead, where the task has its own way of
    training without a teacher (CycleGAN's losses)."""
    rows = []
    for kind in args.kinds.split(","):
        steps = equal_time_steps(args.work, args.steps, args.reuse, args.add_to) if kind == "scratch_equal_time" else args.steps
        for seed in (int(s) for s in args.seeds.split(",")):
            recipe, overrides = config, [*args.kind_overrides[kind], f"seed={seed}", f"distill.teacher={args.teacher}",
                                         *extra]
            if scratch is not None and kind.startswith("scratch"):
                recipe, overrides = scratch[0], [*scratch[1], f"seed={seed}", *extra]
            if args.finished_only and not finished(args.work / f"{kind}_seed{seed}", steps):
                print(f"{kind} seed {seed}: not finished in {args.work}, left out (--finished-only)", flush=True)
                continue
            r = train(f"{kind}_seed{seed}", recipe, steps, overrides, args.work, args.reuse)
            q = quality(r["run"], r["run"], args.samples, args.reuse)
            rows.append({"kind": kind, "seed": seed, "steps": steps, "train_seconds": r["train_seconds"], **q})
            print(f"{kind} seed {seed}: {q} ({r['train_seconds']:.0f} s)", flush=True)
    return rows


def with_earlier(args: argparse.Namespace, teacher_q: dict | None, rows: list[dict],
                 eff: dict | None) -> tuple[dict, list[dict], dict | None]:
    """--add-to: the earlier results' runs with this invocation's added (a rerun kind and seed
    replaces its earlier row), and the earlier teacher scores and efficiency where this
    invocation measured none. Without --add-to: unchanged."""
    if args.add_to is None:
        return teacher_q, rows, eff
    if not args.add_to.is_file():
        sys.exit(f"--add-to: {args.add_to} does not exist")
    earlier = json.loads(args.add_to.read_text())
    fresh = {(r["kind"], r["seed"]) for r in rows}
    kept = [r for r in earlier["runs"] if (r["kind"], r["seed"]) not in fresh]
    order = list(dict.fromkeys([*(r["kind"] for r in kept), *(r["kind"] for r in rows)]))
    merged = sorted([*kept, *rows], key=lambda r: (order.index(r["kind"]), r["seed"]))
    return teacher_q or earlier["teacher"], merged, eff or earlier.get("efficiency")


def first_student(args: argparse.Namespace, rows: list[dict]) -> Path:
    """The run whose student is profiled: the first trained one of the recipe's network."""
    first = next(r for r in rows if r["kind"] in ("pruned", "distilled", "scratch"))
    return args.work / f"{first['kind']}_seed{first['seed']}"


def write_results(args: argparse.Namespace, results: dict, rows: list[dict], started: float, name: str,
                  table) -> None:
    """The results JSON (runs and settings beside the summary) and the README table printed."""
    results["runs"] = rows
    results["settings"] = {"recipe": args.config, "student_steps": args.steps, "seeds": args.seeds,
                           "teacher": args.teacher,
                           "torch": torch.__version__, "threads": args.threads,
                           "wall_seconds": time.time() - started, **({"note": args.note} if args.note else {})}
    if getattr(args, "add_to", None) is not None:  # the runs kept from it were made under its settings
        results["settings"]["added_to"] = json.loads(args.add_to.read_text())["settings"]
    out = args.out or ROOT / "benchmarks" / "results" / f"{name}{'_quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(table(results))
    print(f"wrote {out}")


def measure(args: argparse.Namespace, extra: list[str], quality, summarise, table, name: str, make=None,
            scratch: tuple[str, list[str]] | None = None) -> None:
    """An audio benchmark's run: the teacher's quality, every student trained and scored, the
    efficiency of teacher and first student (`make`: their inputs), the results written."""
    torch.set_num_threads(args.threads)
    started = time.time()
    teacher_q = quality(args.teacher, args.work / "teacher_eval", args.samples, args.reuse)
    print(f"teacher: {teacher_q}", flush=True)
    rows = student_runs(args, args.config, extra, quality, scratch)
    eff = None if args.no_profile else efficiency(args.teacher, first_student(args, rows), 3 if args.quick else 15,
                                                  make=make or mels)
    write_results(args, summarise(teacher_q, rows, eff), rows, started, name, table)


def recipe_steps(config: str) -> int:
    return yaml.safe_load((ROOT / "configs" / config).read_text())["train"]["steps"]


def main() -> None:
    args = arguments(__doc__, "vocoder_teacher", "benchmark_vocoder", "vocoder_distill.yaml")
    extra: list[str] = []
    if args.quick:
        args.steps, args.seeds, args.samples = 4, "0", 1  # one held-out clip: a smoke run
        extra = ["data.segment=2048", "train.batch_size=2", "model.discriminator.width=2", "task.sample_seconds=0.5",
                 "train.adversarial_start=2"]  # both phases in four steps
        args.teacher = str(train("teacher", "vocoder_teacher.yaml", 4, [*extra, "model.generator.width=32"],
                                 args.work, reuse=False)["run"])
        extra.append("model.generator.width=16")  # the students
    args.steps = args.steps or recipe_steps(args.config)
    measure(args, extra, quality, summarise, markdown, "vocoder_benchmark")


if __name__ == "__main__":
    main()

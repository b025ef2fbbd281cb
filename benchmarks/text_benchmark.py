"""The text benchmark (issue #19): the shipped English -> Spanish translation teacher
(configs/translate_teacher.yaml, 7.6M parameters) against students with about 4x fewer
parameters and MACs per token (configs/translate_distill.yaml: width 128, 2 + 2 layers),
trained the same number of steps from scratch, with word-level KD, with sequence-level KD,
and with pruning init + both (the recipe), over several seeds; BLEU and chrF of greedy
translations of the held-out chapters, NLL, length ratio and diversity, and the speed of
teacher and student measured side by side per sentence.

    python benchmarks/text_benchmark.py                      # 3 seeds, the kinds below, the recipe's steps
    python benchmarks/text_benchmark.py --seeds 0 --kinds scratch,seq_kd --no-profile --threads 1
    python benchmarks/text_benchmark.py --quick              # smoke run, about a minute
    python benchmarks/text_benchmark.py --corpus style       # King James -> World English Bible instead

--corpus style benchmarks the style transfer teacher (configs/style_teacher.yaml, the same
network on the other corpus) and configs/style_distill.yaml's students the same way, in
runs/benchmark_style, writing benchmarks/results/style_benchmark.json.

Student kinds (--kinds):
  scratch             the student network trained on the references alone (maximum likelihood)
  word_kd             + the teacher's distribution at every position (kl, dim: logits)
  seq_kd              trained on the teacher's greedy translations of the training sources
                      instead of the references (Kim & Rush's sequence-level KD), no kl
  pruned              the recipe: pruning init from the teacher + seq_kd + word_kd
  pruned_mle          pruning init, then the references alone (no KD term): what the init gives
  scratch_equal_time  scratch, for as many steps as fit in the pruned runs' mean wall time
  pruned_adversarial  the recipe whose last quarter of steps adds the adversarial term (a
                      token discriminator on Gumbel-softmax relaxations): what the GAN
                      phase does to BLEU and diversity
--reuse, --work and two 1-thread lanes side by side: as in vocoder_benchmark.py; --add-to
benchmarks/results/text_benchmark.json adds seeds or kinds to the committed results. The
teacher's translations of the training sources are decoded once and cached (task.targets:
teacher). Writes benchmarks/results/text_benchmark.json (or _quick) and prints the README table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vocoder_benchmark import (arguments, by_kind, recipe_steps, student_runs, target_lines, train,  # noqa: E402
                               with_earlier, write_results)

METRICS = ("bleu", "chrf", "nll", "length_ratio", "distinct_2", "self_bleu")
SCRATCH = ["distill.terms=[]", "distill.student.init=scratch", "task.targets=reference"]
KINDS = {"scratch": SCRATCH, "word_kd": ["distill.student.init=scratch", "task.targets=reference"],
         "seq_kd": ["distill.terms=[]", "distill.student.init=scratch"], "pruned": [],
         "pruned_mle": ["distill.terms=[]", "task.targets=reference"],
         "scratch_equal_time": SCRATCH, "pruned_adversarial": []}  # its adversarial start is set in main()


class Corpus(NamedTuple):
    teacher: str  # shipped name
    recipe: str  # the students' config
    work: str  # folder under runs/
    results: str  # results JSON name
    teacher_recipe: str  # the config --quick trains its tiny teacher from


CORPORA = {"translate": Corpus("translate_teacher", "translate_distill.yaml", "benchmark_translate", "text_benchmark",
                               "translate_teacher.yaml"),
           "style": Corpus("style_teacher", "style_distill.yaml", "benchmark_style", "style_benchmark",
                           "style_teacher.yaml")}


def corpus_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", choices=list(CORPORA), default="translate",
                        help="translate (English -> Spanish) or style (King James -> World English Bible): "
                             "sets the defaults of --teacher, --config and --work, and the results' name")


def chosen_corpus() -> Corpus:
    """--corpus, read before the other options because it sets their defaults."""
    parser = argparse.ArgumentParser(add_help=False)
    corpus_option(parser)
    return CORPORA[parser.parse_known_args()[0].corpus]


SENTENCES_TIMED = 16  # per-sentence latency: the mean over this many held-out sources, one at a time


def quality(source: str | Path, out: Path, samples: int, reuse: bool = False) -> dict:
    """Greedy translations of the held-out sentences scored against their references, copying
    the source as the baseline, and for a student its BLEU against the teacher's translations."""
    from kdgan.metrics.evaluate import evaluate_source

    path = out / "eval.json"
    earlier = json.loads(path.read_text())["evaluations"][-1] if reuse and path.is_file() else None
    if earlier is None or not all(k in earlier for k in METRICS) or (samples and earlier.get("sentences") != samples):
        earlier = evaluate_source(source, samples, list(METRICS), None, seed=0, profile=False, out=out)
    keep = {k: earlier[k] for k in (*METRICS, "sentences", "step", "decode_seconds") if k in earlier}
    if "fidelity" in earlier:
        keep["bleu_to_teacher"] = earlier["fidelity"]["bleu"]
    keep["copy_the_source"] = earlier["baselines"]["copy the source"]
    return keep


class OneByOne(nn.Module):
    """A batch of sources translated one at a time (batch 1), as a single call to time."""

    def __init__(self, generator: nn.Module, beam: int = 1):
        super().__init__()
        self.generator, self.beam = generator, beam

    def forward(self, src: torch.Tensor) -> list[torch.Tensor]:
        from kdgan.tasks.text.tokenizer import PAD

        rows = [r[r != PAD][None] for r in src]  # each source without the batch's padding
        if self.beam > 1:
            return [self.generator.beam(r, self.beam, self.generator.spec.max_len) for r in rows]
        return [self.generator(r) for r in rows]


def output_tokens(ids) -> int:
    """Tokens a translation produced (EOS included, BOS and padding not)."""
    from kdgan.tasks.text.tokenizer import PAD

    rows = ids if isinstance(ids, list) else [ids]
    return sum(int((r[:, 1:] != PAD).sum()) for r in rows)


def efficiency(teacher: str | Path, student: Path, repeats: int, rounds: int, sentences: int = SENTENCES_TIMED) -> dict:
    """Parameters, MACs per generated token (greedy, batch 1), per-sentence latency and tokens/s
    (greedy at batch 1 and 32, beam 4 at batch 1) on 2 threads in PyTorch eager, and greedy in
    ONNX Runtime (the exported encoder and decoder step), teacher and student side by side."""
    from kdgan.metrics.efficiency import count_params, macs_per_sample, side_by_side_speedup
    from kdgan.tasks.text.tokens import pad_batch
    from vocoder_benchmark import generator_and_task

    (t_net, task), (s_net, _) = generator_and_task(teacher), generator_and_task(student)
    nets = {"teacher": t_net.eval(), "student": s_net.eval()}
    sources = task._encode(task.test_pairs, 0)
    make = lambda n: (pad_batch(sources[:n]),)  # noqa: E731
    out = {}
    with torch.inference_mode():
        for name, g in nets.items():
            tokens = output_tokens(OneByOne(g)(*make(sentences)))
            macs = sum(macs_per_sample(g, (pad_batch([s]),)) for s in sources[:sentences])
            out[name] = {"params": count_params(g), "macs_per_token": macs / tokens,
                         "tokens_per_sentence": tokens / sentences}
    threads_before = torch.get_num_threads()
    torch.set_num_threads(2)
    cases = {"greedy_batch_1": (OneByOne(t_net), OneByOne(s_net), sentences, True),
             "greedy_batch_32": (t_net, s_net, 32, True),
             "beam_4_batch_1": (OneByOne(t_net, 4), OneByOne(s_net, 4), sentences, False)}
    exported = {name: task.onnx_module(g) for name, g in nets.items()}  # each exported once, for every case
    as_exported = lambda g: exported["teacher" if g is t_net else "student"]  # noqa: E731

    def onnx_of(module: nn.Module) -> nn.Module:
        if isinstance(module, OneByOne):
            return OneByOne(as_exported(module.generator))
        return as_exported(module)

    for case, (t, s, batch, onnx) in cases.items():
        side = side_by_side_speedup(t, s, make, batch=batch, rounds=rounds, repeats=repeats, onnx=onnx,
                                    onnx_module=onnx_of)
        out[case] = side
        per = sentences if case.endswith("batch_1") else batch
        for runtime, v in side.items():
            for name in nets:
                out[name].setdefault("ms_per_sentence", {})[f"{case}_{runtime}"] = 1e3 * v[f"{name}_median_s"] / per
    torch.set_num_threads(threads_before)
    for name in nets:
        ms = out[name]["ms_per_sentence"]
        out[name]["tokens_per_second"] = {k: out[name]["tokens_per_sentence"] / (v / 1e3) for k, v in ms.items()
                                          if "batch_1" in k}
    return out


def summarise(teacher_q: dict, rows: list[dict], eff: dict | None) -> dict:
    table = by_kind(rows, METRICS, voice=False)
    targets = {}
    distilled = [k for k in table if not k.startswith("scratch")]  # every student that learned from the teacher
    if distilled:
        best = max(distilled, key=lambda k: table[k]["bleu_mean"])
        value = table[best]["bleu_mean"]
        targets["best_student_bleu_within_1_of_the_teacher"] = {
            "value": value - teacher_q["bleu"], "target": -1.0, "met": value >= teacher_q["bleu"] - 1.0,
            "note": f"best: {best}"}
        if "scratch" in table:
            gain = value - table["scratch"]["bleu_mean"]
            targets["best_student_bleu_at_least_scratch_plus_1.5"] = {
                "value": gain, "target": 1.5, "met": gain >= 1.5, "note": f"best: {best}, equal steps"}
    if eff is not None:
        t, s = eff["teacher"], eff["student"]
        for key, label in (("params", "parameters"), ("macs_per_token", "MACs_per_token")):
            ratio = t[key] / s[key]
            targets[f"{label}_ratio_at_least_4"] = {"value": ratio, "target": 4, "met": ratio >= 4}
        speed = eff["greedy_batch_1"]["pytorch"]["speedup"]
        targets["greedy_batch_1_latency_speedup_at_least_4"] = {"value": speed, "target": 4, "met": speed >= 4}
    return {"teacher": teacher_q, "students": table, "targets": targets, "efficiency": eff}


def markdown(results: dict) -> str:
    t, eff = results["teacher"], results.get("efficiency")
    f = lambda e, key, spec: f"{spec.format(e[f'{key}_mean'])} ± {spec.format(e[f'{key}_std'])}"  # noqa: E731
    cols = (("bleu", "{:.2f}"), ("chrf", "{:.1f}"), ("nll", "{:.3f}"), ("length_ratio", "{:.2f}"),
            ("distinct_2", "{:.3f}"), ("self_bleu", "{:.1f}"))
    lines = ["| model | BLEU ↑ | chrF ↑ | NLL ↓ | length ratio | distinct-2 | self-BLEU | steps | seeds | train min |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines.append("| teacher | " + " | ".join(spec.format(t[k]) for k, spec in cols) + " | | | |")
    copy = t["copy_the_source"]
    lines.append(f"| copy the source | {copy['bleu']:.2f} | {copy['chrf']:.1f} | | | | | | | |")
    for kind, e in results["students"].items():
        lines.append(f"| {kind} student | " + " | ".join(f(e, k, spec) for k, spec in cols) +
                     f" | {e['steps']} | {len(e['seeds'])} | {statistics.mean(e['train_seconds']) / 60:.0f} |")
    if eff:
        lines += ["", "| | parameters | MACs per token | ms per sentence, greedy batch 1 (PyTorch / ONNX Runtime) "
                  "| greedy batch 32 (PyTorch / ONNX Runtime) | beam 4 batch 1 | tokens/s, greedy batch 1 (PyTorch) |",
                  "|---|---|---|---|---|---|---|"]
        for name in ("teacher", "student"):
            e, ms = eff[name], eff[name]["ms_per_sentence"]
            pair = lambda case: " / ".join(f"{ms[k]:.1f}" for k in (f"{case}_pytorch", f"{case}_onnxruntime")  # noqa: E731
                                           if k in ms)
            lines.append(f"| {name} | {e['params'] / 1e6:.2f}M | {e['macs_per_token'] / 1e6:.2f}M | "
                         f"{pair('greedy_batch_1')} | {pair('greedy_batch_32')} | {ms['beam_4_batch_1_pytorch']:.1f} | "
                         f"{e['tokens_per_second']['greedy_batch_1_pytorch']:.0f} |")
    lines += target_lines(results["targets"])
    return "\n".join(lines)


def main() -> None:
    corpus = chosen_corpus()
    args = arguments(__doc__, corpus.teacher, corpus.work, corpus.recipe, KINDS, options=corpus_option)
    torch.set_num_threads(args.threads)
    started = time.time()
    extra: list[str] = []
    if args.quick:
        args.steps, args.seeds, args.samples = 4, "0", 8
        tiny = ["task.vocab_size=300", "model.generator.max_len=64", "model.generator.encoder_layers=1",
                "model.generator.decoder_layers=1", "model.generator.heads=2", "model.discriminator.width=8",
                "train.batch_size=8", "train.warmup_steps=2", "data.max_words=6"]
        args.teacher = str(train("teacher", corpus.teacher_recipe, 4, [*tiny, "model.generator.width=16"],
                                 args.work, reuse=False)["run"])
        extra = [*tiny, "model.generator.width=8", "model.generator.expansion=2"]
    args.steps = args.steps or recipe_steps(args.config)
    args.kind_overrides["pruned_adversarial"] = [f"train.adversarial_start={args.steps * 3 // 4}"]
    teacher_q = None  # with --add-to, the earlier results' scores of the same teacher
    if args.add_to is None:
        teacher_q = quality(args.teacher, args.work / "teacher_eval", args.samples, args.reuse)
        print(f"teacher: {teacher_q}", flush=True)
    rows = student_runs(args, args.config, extra, quality)
    first = next((r for r in rows if r["kind"] == "pruned"), rows[0])
    student = args.work / f"{first['kind']}_seed{first['seed']}"
    eff = None if args.no_profile else efficiency(args.teacher, student, *((1, 1, 2) if args.quick else (10, 5)))
    teacher_q, rows, eff = with_earlier(args, teacher_q, rows, eff)
    write_results(args, summarise(teacher_q, rows, eff), rows, started, corpus.results, markdown)


if __name__ == "__main__":
    main()

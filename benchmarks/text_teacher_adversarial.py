"""What the adversarial phase does to the translation teacher (#19: "maximum-likelihood
pretraining, then optional adversarial fine-tuning; report what it does to BLEU and diversity").

The shipped translate_teacher goes on training for the same number of steps in two ways
(configs/translate_teacher_finetune.yaml: its network at full size, init: prune = the teacher
exactly, on the references, no distillation term):
  adversarial  the maximum-likelihood term + the token discriminator's Gumbel-softmax term
               from the first step (RelGAN)
  mle          the maximum-likelihood term alone (train.adversarial_start = steps): the control,
               so what differs between the two is the adversarial term, not the extra training
Both are scored as the text benchmark scores its students (greedy BLEU / chrF / NLL / length
ratio / distinct-2 / self-BLEU on the held-out chapters) beside the teacher they started from.

    python benchmarks/text_teacher_adversarial.py --threads 1 --kinds adversarial --out runs/adv_a.json &
    python benchmarks/text_teacher_adversarial.py --threads 1 --kinds mle --out runs/adv_b.json; wait
    python benchmarks/text_teacher_adversarial.py --reuse      # collects both, writes the results
    python benchmarks/text_teacher_adversarial.py --quick      # smoke run with a tiny teacher
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from text_benchmark import METRICS, quality  # noqa: E402
from vocoder_benchmark import arguments, by_kind, recipe_steps, student_runs, train, write_results  # noqa: E402

CONFIG = "translate_teacher_finetune.yaml"
KINDS = {"adversarial": [], "mle": []}  # mle's adversarial_start is set in main(), from the steps


def markdown(results: dict) -> str:
    cols = (("bleu", "{:.2f}"), ("chrf", "{:.1f}"), ("nll", "{:.3f}"), ("length_ratio", "{:.2f}"),
            ("distinct_2", "{:.3f}"), ("self_bleu", "{:.1f}"))
    lines = ["| teacher | BLEU ↑ | chrF ↑ | NLL ↓ | length ratio | distinct-2 | self-BLEU | extra steps | seeds |",
             "|---|---|---|---|---|---|---|---|---|",
             "| as shipped | " + " | ".join(spec.format(results["teacher"][k]) for k, spec in cols) + " | | |"]
    for kind, e in results["fine_tuned"].items():
        spread = lambda k, spec: f" ± {spec.format(e[f'{k}_std'])}" if len(e["seeds"]) > 1 else ""  # noqa: E731
        cells = " | ".join(f"{spec.format(e[f'{k}_mean'])}{spread(k, spec)}" for k, spec in cols)
        lines.append(f"| + {kind} | {cells} | {e['steps']} | {len(e['seeds'])} |")
    return "\n".join(lines)


def main() -> None:
    args = arguments(__doc__, "translate_teacher", "benchmark_teacher_adversarial", CONFIG, KINDS)
    torch.set_num_threads(args.threads)
    started = time.time()
    extra: list[str] = []
    if args.quick:
        args.steps, args.seeds, args.samples = 4, "0", 8
        tiny = ["task.vocab_size=300", "model.generator.max_len=64", "model.generator.encoder_layers=1",
                "model.generator.decoder_layers=1", "model.generator.heads=2", "model.generator.width=16",
                "model.discriminator.width=8", "train.batch_size=8", "train.warmup_steps=2", "data.max_words=6"]
        args.teacher = str(train("teacher", "translate_teacher.yaml", 4, tiny, args.work, reuse=False)["run"])
        extra = tiny
    args.steps = args.steps or recipe_steps(args.config)
    args.kind_overrides["mle"] = [f"train.adversarial_start={args.steps}"]
    teacher_q = quality(args.teacher, args.work / "teacher_eval", args.samples, args.reuse)
    rows = student_runs(args, args.config, extra, quality)
    results = {"teacher": teacher_q, "fine_tuned": by_kind(rows, METRICS, voice=False)}
    write_results(args, results, rows, started, "text_teacher_adversarial", markdown)


if __name__ == "__main__":
    main()

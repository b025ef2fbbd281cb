"""Which student layout decodes fastest per sentence on this CPU (#19's batch-1 latency target):
the shipped translation teacher against students of several widths and depths, each made by
pruning init from it (the weights a distilled student starts from; the arithmetic per token
does not depend on what they learned), timed side by side.

Each of the first --sentences held-out sources is decoded greedily at batch 1 with the KV cache
for exactly as many tokens as the teacher's own translation of it has, by every network (so a
network that would stop earlier or later is not rewarded or punished for its length: the work
per token is what differs). Every round times the teacher and then each student back to back;
a layout's speed-up is the median of its per-round ratios (min and max beside it), as in
kdgan.metrics.efficiency.side_by_side_speedup. PyTorch eager, 2 threads.

    python benchmarks/text_layouts.py                       # writes benchmarks/results/text_layouts.json
    python benchmarks/text_layouts.py --quick --out x.json  # a smoke run: 1 sentence, 1 round
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# (width, encoder layers, decoder layers, feed-forward expansion): the recipe's student
# (configs/translate_distill.yaml), its deep-encoder / shallow-decoder variant
# (configs/translate_distill_fast.yaml), and the two other shapes of about the same size
LAYOUTS = [(128, 2, 2, 3), (128, 3, 1, 3), (128, 2, 1, 3), (96, 3, 3, 3)]


def student_of(teacher, width: int, enc: int, dec: int, expansion: int):
    from kdgan.tasks.text.prune import prune_transformer
    from kdgan.tasks.text.transformer import TextTransformer

    spec = teacher.spec.model_copy(update={"width": width, "encoder_layers": enc, "decoder_layers": dec,
                                           "expansion": expansion, "heads": min(teacher.spec.heads, width // 16)})
    student = TextTransformer(spec)
    prune_transformer(student, teacher)
    return student.eval()


@torch.inference_mode()
def decode(net, src: torch.Tensor, steps: int) -> None:
    """`steps` greedy tokens after BOS, whatever they are (EOS does not stop it)."""
    from kdgan.tasks.text.tokenizer import BOS

    memory, memory_mask = net.encode(src)
    caches = [{} for _ in net.decoder]
    token = torch.full((1, 1), BOS)
    for t in range(steps):
        token = net.step(token, t, memory, memory_mask, caches).argmax(-1)[:, None]


def timed(net, work: list[tuple[torch.Tensor, int]]) -> float:
    start = time.perf_counter()
    for src, steps in work:
        decode(net, src, steps)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="translate_teacher", help="shipped name, pretrained folder or run")
    parser.add_argument("--sentences", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="1 sentence, 1 round (a smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "text_layouts.json")
    args = parser.parse_args()
    if args.quick:
        args.sentences, args.rounds = 1, 1
    from kdgan.errors import UserError
    from kdgan.outputs import check_writable_file

    try:
        check_writable_file(args.out)
        results = measure(args)
    except UserError as e:  # a wrong --teacher or --out: one line, exit 2, nothing written
        print(f"text_layouts.py: {e}", file=sys.stderr)
        sys.exit(2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print("| network | parameters | ms per sentence | ms per token | speed-up (min-max) |\n|---|---|---|---|---|")
    for name, r in results["layouts"].items():
        print(f"| {name} | {r['params'] / 1e6:.2f}M | {r['ms_per_sentence']:.1f} | {r['ms_per_token']:.2f} | "
              f"{r['speedup']:.2f}x ({r['min']:.2f}-{r['max']:.2f}) |")
    print(f"wrote {args.out}")


def measure(args: argparse.Namespace) -> dict:
    from kdgan.metrics.efficiency import count_params
    from kdgan.tasks.text.tokenizer import PAD
    from vocoder_benchmark import generator_and_task

    torch.set_num_threads(2)
    teacher, task = generator_and_task(args.teacher)
    teacher.eval()
    sources = [torch.tensor([s]) for s in task._encode(task.test_pairs, 0)[: args.sentences]]
    with torch.inference_mode():
        work = [(s, int((teacher.greedy(s, teacher.spec.max_len)[0, 1:] != PAD).sum())) for s in sources]
    nets = {"teacher": teacher}
    for layout in LAYOUTS:
        if layout[0] <= teacher.spec.width and layout[1] <= len(teacher.encoder) and layout[2] <= len(teacher.decoder):
            nets["{} wide, {} + {} layers, x{}".format(*layout)] = student_of(teacher, *layout)
    for net in nets.values():  # warm-up
        timed(net, work[:2])
    seconds = {name: [] for name in nets}
    for _ in range(args.rounds):
        for name, net in nets.items():
            seconds[name].append(timed(net, work))
            time.sleep(0.1)
    tokens = sum(steps for _, steps in work)
    results = {"settings": {"teacher": args.teacher, "sentences": args.sentences, "tokens": tokens,
                            "rounds": args.rounds, "threads": 2, "torch": torch.__version__,
                            "cpu": platform.processor() or platform.machine(), "cpu_model": _cpu_model()},
               "layouts": {}}
    for name, net in nets.items():
        ratios = [t / s for t, s in zip(seconds["teacher"], seconds[name])]
        results["layouts"][name] = {
            "params": count_params(net), "ms_per_sentence": 1e3 * statistics.median(seconds[name]) / len(work),
            "ms_per_token": 1e3 * statistics.median(seconds[name]) / tokens,
            "speedup": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
    return results


def _cpu_model() -> str:
    """The CPU's model name (speed-ups at batch 1 depend on it: cache sizes, memory bandwidth)."""
    try:
        line = next(l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name"))
        return line.split(":", 1)[1].strip()
    except (OSError, StopIteration):
        return platform.processor()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()

"""The unparallel voice conversion benchmark (issue #18, CycleGAN-VC's setting): the cycle
teacher's kal16 -> awb half (configs/convert_cycle_teacher.yaml) against students with about 9x
fewer MACs (configs/convert_cycle_distill.yaml: width 80), trained the same number of steps
from scratch with CycleGAN-VC's own losses (the teacher's recipe at the student's width: two
converters, two discriminators, cycle and identity terms), with distillation from a random
init, and with pruning init + distillation, over several seeds; scored like the parallel
benchmark (convert_benchmark.py) on the held-out sentences, which no run trains on.

    python benchmarks/convert_cycle_benchmark.py                  # 3 seeds, every kind, the recipe's steps
    python benchmarks/convert_cycle_benchmark.py --kinds scratch --threads 1 --no-profile
    python benchmarks/convert_cycle_benchmark.py --quick          # smoke run, about a minute

Student kinds (--kinds) and --reuse, --work, the lanes: as in vocoder_benchmark.py. Writes
benchmarks/results/convert_cycle_benchmark.json (or _quick) and prints the README table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_benchmark import markdown, quality, summarise  # noqa: E402
from vocoder_benchmark import ROOT, arguments, measure, recipe_steps, train  # noqa: E402

TEACHER_RECIPE = "convert_cycle_teacher.yaml"


def main() -> None:
    args = arguments(__doc__, "convert_cycle_teacher", "benchmark_convert_cycle", "convert_cycle_distill.yaml")
    width = yaml.safe_load((ROOT / "configs" / args.config).read_text())["model"]["generator"]["width"]
    extra: list[str] = []
    if args.quick:
        args.steps, args.seeds, args.samples = 4, "0", 1  # one held-out clip: a smoke run
        extra = ["data.frames=16", "train.batch_size=2", "model.discriminator.width=2", "task.sample_frames=16",
                 "model.generator.layers=2", "train.fake_pool=4"]
        args.teacher = str(train("teacher", TEACHER_RECIPE, 4, [*extra, "model.generator.width=16"],
                                 args.work, reuse=False)["run"])
        width = 4
        extra.append(f"model.generator.width={width}")  # the students
    args.steps = args.steps or recipe_steps(args.config)
    scratch = (TEACHER_RECIPE, [f"model.generator.width={width}"])
    measure(args, extra, quality, summarise, markdown, "convert_cycle_benchmark", scratch=scratch)


if __name__ == "__main__":
    main()

"""Throughput of kdgan's distillation step against the seed's loop, side by side.

The seed's loop (src/kdgan/distill/seed_reference.py) runs the student three times and the
teacher twice per step, the second time recording autograd (the seed never freezes its
teacher, so the generator's backward also computes the teacher's weight gradients). kdgan's
step runs each once and the teacher without autograd. A second seed row, with kdgan's
frozen teacher, shows how much of the speed-up is that waste.
Both train the same networks on the same glyph batches; timings alternate between the two
in blocks, in one process, so machine drift hits both alike.

    python benchmarks/throughput.py                 # CPU, DCGAN 64 px, batch 64
    python benchmarks/throughput.py --device cuda --batch-size 1024 --teacher-width 128 \\
        --student-width 32                          # the GPU setting of issue #5

Writes benchmarks/results/throughput_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def build(args, mode: str):
    """A kdgan Trainer distilling a (randomly initialised) DCGAN teacher, with the seed's
    choices: BCE adversarial loss, KL over channels (nn.KLDivLoss's reduction), no EMA."""
    from kdgan.config import load_config
    from kdgan.distill import Teacher, build_distill_trainer
    from kdgan.nets import DiscriminatorSpec, GeneratorSpec, build_discriminator, build_generator

    precision, channels_last, compile_ = {"fp32": ("fp32", False, False),
                                          "fast": (args.fast_precision, True, args.fast_compile)}[mode]
    overrides = [
        "data.name=glyphs", f"data.resolution={args.resolution}", "data.channels=1", "model.latent_dim=128",
        f"train.batch_size={args.batch_size}", "train.loss.name=bce", "train.ema_decay=0",
        f"train.precision={precision}", f"train.channels_last={str(channels_last).lower()}", f"device={args.device}",
        f"train.compile={str(compile_).lower()}",
        "distill.student.width_multiplier=null", "distill.discriminator.width_multiplier=null",
        f"model.generator.width={args.student_width}", f"model.discriminator.width={args.disc_width}",
        "distill.terms=[{name: kl, dim: channels, reduction: elementwise, weight: 1.0}]",
    ]
    cfg = load_config(None, overrides)
    torch.manual_seed(0)
    spec = GeneratorSpec(arch="dcgan", width=args.teacher_width, latent_dim=128, resolution=args.resolution, channels=1)
    d_spec = DiscriminatorSpec(arch="dcgan", width=args.disc_width, resolution=args.resolution, channels=1)
    teacher = Teacher(build_generator(spec), build_discriminator(d_spec), spec, d_spec)
    return build_distill_trainer(cfg, teacher), teacher


def seed_loop(trainer, teacher, device, literal: bool = True):
    """A closure running one seed step on the trainer's own data and fresh networks.

    literal: the teacher as the seed's script has it, a plain module (`TeacherGenerator()`,
    never put in eval mode or frozen), so its second call records autograd and the
    generator's backward computes gradients for the teacher's weights too. Otherwise the
    teacher is kdgan's frozen one: the seed's loop minus that waste (a stricter baseline)."""
    import copy

    from kdgan.data.images import to_float
    from kdgan.distill.seed_reference import seed_step

    teacher_g = copy.deepcopy(teacher.generator).train().requires_grad_(True) if literal else teacher.generator
    student = copy.deepcopy(trainer.generator)
    disc = copy.deepcopy(trainer.discriminator)
    opt_g, opt_d = torch.optim.Adam(student.parameters()), torch.optim.Adam(disc.parameters())
    images, sampler = trainer.task.dataset.images, trainer.sampler
    state = {"step": 0}

    def step():
        real = to_float(images[sampler.indices(state["step"])]).to(device)
        n = real.shape[0]
        z_d, z_g = torch.randn(n, 128, device=device), torch.randn(n, 128, device=device)
        seed_step(student, disc, teacher_g, opt_g, opt_d, real, z_d, z_g, alpha=1.0)
        state["step"] += 1

    return step


def timed(step, n: int, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--teacher-width", type=int, default=64)
    parser.add_argument("--student-width", type=int, default=16)
    parser.add_argument("--disc-width", type=int, default=64)
    parser.add_argument("--fast-precision", default="bf16", choices=["fp32", "bf16", "fp16"],
                        help="the fast mode's autocast dtype (always with channels-last)")
    parser.add_argument("--fast-compile", action="store_true", help="torch.compile in the fast mode")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=5, help="alternating timed blocks per loop")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = torch.device(args.device)

    trainers = {mode: build(args, mode) for mode in ("fp32", "fast")}
    loops = {
        "seed": seed_loop(*trainers["fp32"], device),
        "seed_frozen_teacher": seed_loop(*trainers["fp32"], device, literal=False),
        "kdgan_fp32": trainers["fp32"][0].train_step,
        "kdgan_fast": trainers["fast"][0].train_step,
    }
    for step in loops.values():  # warm-up: allocator, oneDNN primitive caches
        timed(step, 3, device)
    seconds = {k: [] for k in loops}
    for _ in range(args.blocks):
        for name, step in loops.items():
            seconds[name].append(timed(step, args.steps, device))
    imgs = {k: [args.steps * args.batch_size / s for s in v] for k, v in seconds.items()}
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "threads": torch.get_num_threads(), "torch": torch.__version__, "settings": vars(args) | {"out": None},
        "images_per_s": {k: {"median": statistics.median(v), "all": v} for k, v in imgs.items()},
        "speedup_vs_seed": {
            k: statistics.median(a / b for a, b in zip(imgs[k], imgs["seed"])) for k in ("kdgan_fp32", "kdgan_fast")
        },
        "speedup_vs_seed_frozen_teacher": {
            k: statistics.median(a / b for a, b in zip(imgs[k], imgs["seed_frozen_teacher"]))
            for k in ("kdgan_fp32", "kdgan_fast")
        },
        "targets": {"cpu_fp32": 1.35, "cpu_fast": 2.4, "gpu_images_per_s": 58000},
    }
    out = args.out or ROOT / "benchmarks" / "results" / f"throughput_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for k, v in result["images_per_s"].items():
        print(f"{k:12s} {v['median']:9.1f} images/s")
    print(f"speed-up vs seed loop: {result['speedup_vs_seed']}")
    print(f"speed-up vs seed loop with a frozen teacher: {result['speedup_vs_seed_frozen_teacher']}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

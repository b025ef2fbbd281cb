"""A modality kdgan does not ship, written as a user would write one outside the package:
1-D signals, each a sum of random sinusoids. It registers a task, a generator family (a
small Conv1d generator with a pruning rule), a discriminator family with two heads that
returns a list of logits and feature maps, and its own metric, and renders its samples as
PNG line plots. Importing this module is all `kdgan` needs (in Python, or through
$KDGAN_PLUGINS for the command line)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field
from torch import nn

from kdgan.data.sampling import StepBatch
from kdgan.families import Family
from kdgan.losses import DiscriminatorOutput
from kdgan.registry import DISCRIMINATORS, GENERATORS, METRICS, TASKS
from kdgan.schema import Strict
from kdgan.tasks import Task

# -- data and task -------------------------------------------------------------------------


class SinusoidData(Strict):
    examples: int = Field(512, ge=8)
    length: int = Field(64, ge=16)  # samples per signal; a multiple of 4 (two doublings)
    components: int = Field(2, ge=1)


class SinusoidSettings(Strict):
    name: Literal["sinusoids"] = "sinusoids"
    max_cycles: float = Field(6.0, gt=0)  # the highest frequency, in cycles per signal


def sinusoids(n: int, length: int, components: int, max_cycles: float, seed: int) -> torch.Tensor:
    """(n, 1, length) signals in [-1, 1]: the mean of `components` sinusoids with random
    frequency (1..max_cycles cycles per signal), phase and amplitude."""
    gen = torch.Generator().manual_seed(seed)
    cycles = 1 + torch.rand(n, components, 1, generator=gen) * (max_cycles - 1)
    phase = torch.rand(n, components, 1, generator=gen) * 2 * math.pi
    amplitude = 0.5 + 0.5 * torch.rand(n, components, 1, generator=gen)
    t = torch.arange(length) / length
    return (amplitude * torch.sin(2 * math.pi * cycles * t + phase)).mean(1, keepdim=True)


@TASKS.register("sinusoids")
class Sinusoids(Task):
    settings, data_settings = SinusoidSettings, SinusoidData
    default_generator, default_discriminator = "conv1d", "multiscale1d"
    default_metrics = metric_names = ("spectral_distance",)
    modality = "signal"  # image and audio families are refused in one line, and its own elsewhere

    @classmethod
    def check(cls, cfg) -> None:
        if cfg.data.length % 4:
            raise ValueError(f"data.length: the conv1d generator doubles twice; give a multiple of 4, not "
                             f"{cfg.data.length}")

    def __init__(self, cfg):
        d = cfg.data
        self.latent_dim, self.length = cfg.model.latent_dim, d.length
        self.signals = sinusoids(d.examples, d.length, d.components, cfg.task.max_cycles, cfg.seed)

    def __len__(self) -> int:
        return len(self.signals)

    def batch(self, indices, noise) -> StepBatch:
        return StepBatch(self.signals[indices], (torch.randn(len(indices), self.latent_dim, generator=noise),), ())

    def fixed_batch(self, n, seed) -> StepBatch:
        z = torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))
        return StepBatch(self.signals[:n], (z,), ())

    def real_examples(self, n: int) -> torch.Tensor:
        return self.signals[:n]

    def network_specs(self, cfg):
        g, d = cfg.model.generator, cfg.model.discriminator
        return (Conv1dSpec(width=g.width, latent_dim=cfg.model.latent_dim, length=self.length),
                MultiScaleSpec(width=d.width, heads=d.heads))

    def save_samples(self, path: Path, batch, outputs, names) -> Path:
        path = path.with_suffix(".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(plot(outputs, names))
        return path

    def comparison_panel(self, names, batch, outputs) -> bytes:
        return plot(outputs, names)

    @classmethod
    def write_samples(cls, outputs, out: Path, scale: int = 1) -> list[Path]:
        if out.suffix == ".png":
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(plot([outputs], ["samples"]))
            return [out]
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / f"{i:06d}.txt" for i in range(len(outputs))]
        for p, signal in zip(paths, outputs):
            p.write_text("\n".join(f"{v:.6f}" for v in signal.flatten().tolist()))
        return paths


def plot(outputs: list[torch.Tensor], names: list[str]) -> bytes:
    """PNG bytes: one column per output set, its first four signals as line plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = min(4, len(outputs[0]))
    fig, axes = plt.subplots(rows, len(outputs), figsize=(3 * len(outputs), 1.2 * rows), squeeze=False)
    for col, (signals, name) in enumerate(zip(outputs, names)):
        axes[0][col].set_title(name, fontsize=8)
        for row in range(rows):
            axes[row][col].plot(signals[row].flatten().float().cpu().numpy(), linewidth=1)
            axes[row][col].set_ylim(-1.1, 1.1)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    plt.close(fig)
    return buf.getvalue()


@METRICS.register("spectral_distance")
def spectral_distance(real: torch.Tensor, fake: torch.Tensor, seed: int) -> float:
    """Mean absolute difference between the real and generated signals' mean log power
    spectra (0: the same spectrum on average)."""
    spectrum = lambda x: torch.log1p(torch.fft.rfft(x.flatten(1).float()).abs().pow(2)).mean(0)  # noqa: E731
    return float((spectrum(real) - spectrum(fake)).abs().mean())


# -- networks ------------------------------------------------------------------------------


class Conv1dConfig(Strict):
    arch: Literal["conv1d"] = "conv1d"
    width: int = Field(16, ge=1)


class Conv1dSpec(BaseModel):
    arch: Literal["conv1d"] = "conv1d"
    width: int
    latent_dim: int
    length: int


def _up(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv1d(width, width, 3, padding=1), nn.BatchNorm1d(width),
                         nn.ReLU())


class Conv1dGenerator(nn.Module):
    """z (B, latent) -> (B, 1, length): a transposed conv to length/4 positions, two doublings."""

    def __init__(self, spec: Conv1dSpec):
        super().__init__()
        w = spec.width
        self.stem = nn.Sequential(nn.ConvTranspose1d(spec.latent_dim, w, spec.length // 4), nn.BatchNorm1d(w), nn.ReLU())
        self.stages = nn.Sequential(_up(w), _up(w))
        self.out = nn.Conv1d(w, 1, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(self.stages(self.stem(z[:, :, None]))))


@torch.no_grad()
def prune_conv1d(student: Conv1dGenerator, teacher: Conv1dGenerator, importance: str) -> None:
    """Keep the teacher's channels with the largest L1 filter norms, the same ones throughout
    (every layer has `width` channels), and copy their weights and BatchNorm statistics."""
    t_stem = teacher.stem[0].weight  # (latent, width, k)
    keep = t_stem.abs().sum((0, 2)).topk(student.stem[0].out_channels).indices.sort().values
    student.stem[0].weight.copy_(t_stem[:, keep])
    student.stem[0].bias.copy_(teacher.stem[0].bias[keep])
    norms = [(student.stem[1], teacher.stem[1])]
    for s, t in zip(student.stages, teacher.stages):
        s[1].weight.copy_(t[1].weight[keep][:, keep])
        s[1].bias.copy_(t[1].bias[keep])
        norms.append((s[2], t[2]))
    for s, t in norms:
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(s, name).copy_(getattr(t, name)[keep])
    student.out.weight.copy_(teacher.out.weight[:, keep])
    student.out.bias.copy_(teacher.out.bias)


class MultiScaleConfig(Strict):
    arch: Literal["multiscale1d"] = "multiscale1d"
    width: int = Field(16, ge=1)
    heads: int = Field(2, ge=1, le=3)


class MultiScaleSpec(BaseModel):
    arch: Literal["multiscale1d"] = "multiscale1d"
    width: int
    heads: int


class MultiScaleDiscriminator(nn.Module):
    """One small conv stack per scale (the signal, then average-pooled by 2, ...), as MelGAN's
    multi-scale discriminator: a list of per-position logits and every layer's features."""

    def __init__(self, spec: MultiScaleSpec):
        super().__init__()
        w = spec.width
        self.heads = nn.ModuleList(
            nn.ModuleList([nn.Conv1d(1, w, 5, padding=2), nn.Conv1d(w, w, 5, stride=2, padding=2),
                           nn.Conv1d(w, 1, 3, padding=1)]) for _ in range(spec.heads))

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        logits, features = [], []
        for k, head in enumerate(self.heads):
            h = F.avg_pool1d(x, 2**k) if k else x
            for layer in head[:-1]:
                h = F.leaky_relu(layer(h), 0.2)
                features.append(h)
            logits.append(head[-1](h).flatten(1))
        return DiscriminatorOutput(logits, features)


GENERATORS.register("conv1d", Family(build=Conv1dGenerator, spec=Conv1dSpec, config=Conv1dConfig,
                                     prune=prune_conv1d, modality="signal"))
DISCRIMINATORS.register("multiscale1d", Family(build=MultiScaleDiscriminator, spec=MultiScaleSpec,
                                               config=MultiScaleConfig, modality="signal"))

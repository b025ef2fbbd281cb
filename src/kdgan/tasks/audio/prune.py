"""Pruning init for vocoder students (distill.student.init: prune): a narrower generator
starts as the teacher restricted to its strongest channels. HiFi-GAN first, Vocos below.

A stage's residual blocks all add into the same stream (x + conv(...)), so one index set
per stage serves its upsampling conv's outputs and every conv inside its blocks (inputs and
outputs), as for the residual trunks of the image networks. A channel's score is the L1
norm of every filter writing to it: the upsampling conv's and the blocks' convs'. The stem's
outputs are scored by its own filters. Filters keep their order."""

from __future__ import annotations

import torch
from torch import nn

from kdgan.distill.channels import top_channels
from kdgan.errors import UserError
from kdgan.tasks.audio.nets import HiFiGANGenerator


def _out_l1(conv: nn.Module) -> torch.Tensor:
    w = conv.weight  # Conv1d (out, in, k); ConvTranspose1d (in, out, k)
    return w.abs().sum((0, 2)) if isinstance(conv, nn.ConvTranspose1d) else w.abs().sum((1, 2))


def _convs(stage) -> list[nn.Conv1d]:
    return [c for block in stage.mrf for group in (block.dilated, block.plain or []) for c in group]


@torch.no_grad()
def prune_hifigan(student: HiFiGANGenerator, teacher: HiFiGANGenerator, importance: str = "l1") -> list[torch.Tensor]:
    """Copy the teacher's strongest channels into the student; returns the kept indices of
    the stem and of each stage."""
    s_spec, t_spec = student.spec, teacher.spec
    if (s_spec.model_dump(exclude={"width"}) != t_spec.model_dump(exclude={"width"})
            or s_spec.width > t_spec.width):
        raise UserError("distill.student.init: prune needs a hifigan student of the teacher's shape (upsampling, "
                        "residual blocks) and at most its width; use init: scratch")
    keep = top_channels(_out_l1(teacher.stem), student.stem.out_channels)
    student.stem.weight.copy_(teacher.stem.weight[keep])
    student.stem.bias.copy_(teacher.stem.bias[keep])
    kept = [keep]
    for s, t in zip(student.stages, teacher.stages):
        score = _out_l1(t.up) + sum(_out_l1(c) for c in _convs(t))
        inner = top_channels(score, s.up.out_channels)
        s.up.weight.copy_(t.up.weight[keep][:, inner])
        s.up.bias.copy_(t.up.bias[inner])
        for sc, tc in zip(_convs(s), _convs(t)):
            sc.weight.copy_(tc.weight[inner][:, inner])
            sc.bias.copy_(tc.bias[inner])
        keep = inner
        kept.append(keep)
    student.to_audio.weight.copy_(teacher.to_audio.weight[:, keep])
    student.to_audio.bias.copy_(teacher.to_audio.bias)
    return kept


@torch.no_grad()
def prune_vocos(student, teacher, importance: str = "l1") -> list[torch.Tensor]:
    """A narrower (and possibly shallower, or with a smaller inverse-STFT head) Vocos student
    from the teacher. Every block adds into one residual stream, so one index set serves the
    stem's outputs, every block's depthwise conv, norm and output rows, and the head's inputs;
    a channel's score is the L1 norm of everything writing to it (the stem's filters and each
    block's output projection). Each block keeps its strongest hidden units (L1 of their input
    and output weights). A shallower student takes evenly spaced teacher blocks, first and
    last included. A head with n_fft half the teacher's takes every other frequency bin: bin k
    of a 512-point DFT is bin 2k of a 1024-point one. Returns the stream's kept channels and
    the teacher blocks used."""
    s_spec, t_spec = student.spec, teacher.spec
    bins_ratio = t_spec.n_fft // s_spec.n_fft
    if (s_spec.width > t_spec.width or s_spec.layers > t_spec.layers or s_spec.n_mels != t_spec.n_mels
            or s_spec.hop != t_spec.hop or t_spec.n_fft % s_spec.n_fft or s_spec.magnitude_prior != t_spec.magnitude_prior):
        raise UserError("distill.student.init: prune needs a vocos student no wider or deeper than the teacher, with "
                        "its mels, hop and magnitude prior, and a head n_fft dividing the teacher's; use init: scratch")
    keep, layers = prune_convnext(student, teacher)
    t_bins = t_spec.n_fft // 2 + 1
    rows = torch.arange(0, t_bins, bins_ratio)  # the student's bins among the teacher's
    rows = torch.cat([rows, rows + t_bins])  # log-magnitude rows, then phase rows
    student.to_spectrum.weight.copy_(teacher.to_spectrum.weight[rows][:, keep])
    student.to_spectrum.bias.copy_(teacher.to_spectrum.bias[rows])
    return [keep, torch.tensor(layers)]


@torch.no_grad()
def prune_convnext(student, teacher) -> tuple[torch.Tensor, list[int]]:
    """The ConvNeXt-1D backbone shared by Vocos and the mel converter (`stem`, `norm`,
    `stages`, `final_norm`): the residual stream's kept channels (scored by the stem's filters
    and the used blocks' output rows), each block's strongest hidden units, evenly spaced
    teacher blocks (first and last included) for a shallower student. Returns the stream's
    kept channels and the teacher blocks used; the head is the caller's."""
    layers = torch.linspace(0, teacher.spec.layers - 1, student.spec.layers).round().long().tolist()
    score = teacher.stem.weight.abs().sum((1, 2)) + sum(teacher.stages[i].down.weight.abs().sum(1) for i in layers)
    keep = top_channels(score, student.spec.width)
    student.stem.weight.copy_(teacher.stem.weight[keep])
    student.stem.bias.copy_(teacher.stem.bias[keep])
    _copy_norm(student.norm, teacher.norm, keep)
    for s, i in zip(student.stages, layers):
        t = teacher.stages[i]
        s.depthwise.weight.copy_(t.depthwise.weight[keep])
        s.depthwise.bias.copy_(t.depthwise.bias[keep])
        _copy_norm(s.norm, t.norm, keep)
        hidden = top_channels(t.up.weight.abs().sum(1) + t.down.weight.abs().sum(0), s.up.out_features)
        s.up.weight.copy_(t.up.weight[hidden][:, keep])
        s.up.bias.copy_(t.up.bias[hidden])
        s.down.weight.copy_(t.down.weight[keep][:, hidden])
        s.down.bias.copy_(t.down.bias[keep])
        s.gamma.copy_(t.gamma[keep])
    _copy_norm(student.final_norm, teacher.final_norm, keep)
    return keep, layers


def _copy_norm(s: nn.LayerNorm, t: nn.LayerNorm, keep: torch.Tensor) -> None:
    s.weight.copy_(t.weight[keep])
    s.bias.copy_(t.bias[keep])

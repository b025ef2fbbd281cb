"""Pruning init for HiFi-GAN students (distill.student.init: prune): a narrower generator
starts as the teacher restricted to its strongest channels.

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

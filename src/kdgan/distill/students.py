"""Build a student from its teacher: width scaling, and pruning-based initialisation."""

from __future__ import annotations

import torch
from torch import nn

from kdgan.errors import UserError
from kdgan.nets.dcgan import DCGANGenerator, UpBlock


def scaled_width(width: int, multiplier: float) -> int:
    return max(1, round(width * multiplier))


@torch.no_grad()
def channel_importance(block: UpBlock, importance: str) -> torch.Tensor:
    """Score of each output channel of a DCGAN up-block.

    bn: |gamma| of its BatchNorm (Network Slimming; for conditional BatchNorm, the mean |gamma|
        over classes): a channel the norm scales to ~0 contributes ~nothing.
    l1: L1 norm of the channel's filter weights (Li et al., 2017).
    """
    if importance == "bn":
        norm = block.norm
        gamma = norm.gamma.weight if norm.num_classes else norm.bn.weight  # (classes, C) or (C,)
        return gamma.abs().mean(0) if gamma.ndim == 2 else gamma.abs()
    w = block.conv.weight  # ConvTranspose2d: (C_in, C_out, k, k)
    return w.abs().sum((0, 2, 3))


@torch.no_grad()
def prune_init(student: nn.Module, teacher: nn.Module, importance: str = "bn") -> list[torch.Tensor]:
    """Initialise a narrower DCGAN student with the teacher's most important channels.

    For each up-block, keep the top-k output channels (k = the student's channel count) in
    their original order and copy the teacher's weights for (kept inputs) x (kept outputs),
    BatchNorm parameters and running statistics included; the final conv keeps the last
    block's channels. Returns the kept indices per block.
    """
    if not (type(student) is DCGANGenerator and type(teacher) is DCGANGenerator):
        raise UserError(
            "distill.student.init: prune is implemented for the dcgan generator family "
            f"(teacher {type(teacher).__name__}, student {type(student).__name__}); use init: scratch"
        )
    t_blocks = [teacher.stem, *teacher.stages]
    s_blocks = [student.stem, *student.stages]
    if len(t_blocks) != len(s_blocks) or student.latent_dim != teacher.latent_dim:
        raise UserError("distill.student.init: prune needs the teacher's depth and latent size")
    kept_in = torch.arange(teacher.latent_dim)
    kept = []
    for t, s in zip(t_blocks, s_blocks):
        k = s.conv.weight.shape[1]
        keep = channel_importance(t, importance).topk(k).indices.sort().values
        s.conv.weight.copy_(t.conv.weight[kept_in][:, keep])
        _copy_norm(s.norm, t.norm, keep)
        kept.append(keep)
        kept_in = keep
    student.to_image.weight.copy_(teacher.to_image.weight[kept_in])
    student.to_image.bias.copy_(teacher.to_image.bias)
    return kept


def _copy_norm(s, t, keep: torch.Tensor) -> None:
    s.bn.running_mean.copy_(t.bn.running_mean[keep])
    s.bn.running_var.copy_(t.bn.running_var[keep])
    if t.num_classes:
        s.gamma.weight.copy_(t.gamma.weight[:, keep])
        s.beta.weight.copy_(t.beta.weight[:, keep])
    else:
        s.bn.weight.copy_(t.bn.weight[keep])
        s.bn.bias.copy_(t.bn.bias[keep])

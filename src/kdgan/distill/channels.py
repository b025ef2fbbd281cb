"""Channel selection shared by every pruning init: pick the strongest channels, copy a
BatchNorm's entries for them."""

from __future__ import annotations

import torch
from torch import nn

from kdgan.errors import UserError


def top_channels(score: torch.Tensor, k: int) -> torch.Tensor:
    """The k highest-scoring channels, in their original order."""
    return score.topk(k).indices.sort().values


def strongest_blocks(blocks: nn.Sequential, n: int, score) -> list[nn.Module]:
    """The n residual blocks with the highest score(block) (how strongly each writes to the
    trunk), in their original order: a shallower student inherits the blocks that matter."""
    if n > len(blocks):
        raise UserError(f"distill.student.blocks: a pruned student can keep at most the teacher's {len(blocks)} "
                        f"residual blocks, not {n}")
    scores = torch.stack([torch.as_tensor(score(b)).float() for b in blocks])
    return [blocks[int(i)] for i in top_channels(scores, n)]


def filters_l1(weight: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """L1 norm of each output channel's filters (Conv2d weights are (out, in, k, k);
    ConvTranspose2d weights (in, out, k, k))."""
    return (weight.transpose(0, 1) if transposed else weight).abs().flatten(1).sum(1)


def copy_batchnorm(s: nn.BatchNorm2d, t: nn.BatchNorm2d, keep: torch.Tensor) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(s, name).copy_(getattr(t, name)[keep])

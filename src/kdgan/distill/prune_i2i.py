"""Pruning init for the image-to-image generators of pix2pix / CycleGAN (U-Net, ResNet).

As for the other families: each layer keeps the teacher's most important output channels
(|BatchNorm scale| where the layer has a norm and `importance` is bn, else the L1 norm of its
filters), in their original order, and copies the weights between kept inputs and kept
outputs. Channels that several layers share (a residual trunk, a U-Net skip) keep one index
set. At full width the student is the teacher (tested).
"""

from __future__ import annotations

import torch
from torch import nn

from kdgan.distill.channels import copy_batchnorm, filters_l1, strongest_blocks, top_channels
from kdgan.errors import UserError
from kdgan.nets.i2i import ResnetI2IGenerator, UNetGenerator


def _score(conv: nn.Module, norm: nn.BatchNorm2d | None, importance: str) -> torch.Tensor:
    if importance == "bn" and norm is not None:
        return norm.weight.abs()
    return filters_l1(conv.weight, isinstance(conv, nn.ConvTranspose2d))


def _copy_conv(s: nn.Module, t: nn.Module, keep_out: torch.Tensor, keep_in: torch.Tensor) -> None:
    if isinstance(t, nn.ConvTranspose2d):  # (in, out, k, k)
        s.weight.copy_(t.weight[keep_in][:, keep_out])
    else:
        s.weight.copy_(t.weight[keep_out][:, keep_in])
    if t.bias is not None:
        s.bias.copy_(t.bias[keep_out])


@torch.no_grad()
def prune_unet(student: UNetGenerator, teacher: UNetGenerator, importance: str) -> list[torch.Tensor]:
    """Down level i keeps D_i; up level j keeps U_j. An up level reads [U_{j-1}, D_i] (the
    teacher's offsets: its own up width, then the skip), the output layer [U_last, D_0]."""
    if len(student.downs) != len(teacher.downs) or student.downs[0][0].in_channels != teacher.downs[0][0].in_channels:
        raise UserError("distill.student.init: prune needs the teacher's U-Net depth and input channels")
    depth = len(teacher.downs)
    kept_in = torch.arange(teacher.downs[0][0].in_channels)
    downs = []
    for t, s in zip(teacher.downs, student.downs):
        norm = t[1] if isinstance(t[1], nn.BatchNorm2d) else None
        keep = top_channels(_score(t[0], norm, importance), s[0].out_channels)
        _copy_conv(s[0], t[0], keep, kept_in)
        if norm is not None:
            copy_batchnorm(s[1], norm, keep)
        downs.append(keep)
        kept_in = keep
    ups, t_width = [], None  # t_width: the teacher's channels coming out of the previous up level
    for j, (t, s) in enumerate(zip(teacher.ups, student.ups)):
        level = depth - 1 - j
        if j > 0:  # [previous up output, skip of this level]
            kept_in = torch.cat([ups[-1], t_width + downs[level]])
        keep = top_channels(_score(t[0], t[1], importance), s[0].out_channels)
        _copy_conv(s[0], t[0], keep, kept_in)
        copy_batchnorm(s[1], t[1], keep)
        ups.append(keep)
        t_width = t[0].out_channels
    out = torch.arange(teacher.to_image.out_channels)
    _copy_conv(student.to_image, teacher.to_image, out, torch.cat([ups[-1], t_width + downs[0]]))
    return downs + ups


@torch.no_grad()
def prune_resnet_i2i(student: ResnetI2IGenerator, teacher: ResnetI2IGenerator, importance: str) -> list[torch.Tensor]:
    """stem -> down.0 -> down.1 = the residual trunk (shared by every block's output, scored
    by the sum over the norms that write it) -> up.0 -> up.1 -> to_image."""
    if student.stem[0].in_channels != teacher.stem[0].in_channels:
        raise UserError("distill.student.init: prune needs the teacher's input channels")
    # a shallower student keeps the blocks whose last BatchNorm (or filters) weigh most
    t_blocks = strongest_blocks(teacher.blocks, len(student.blocks),
                                lambda b: _score(b.body[1], b.body[2], importance).sum())

    def layer(t, s, keep_in):  # a conv-BN-ReLU unit
        keep = top_channels(_score(t[0], t[1], importance), s[0].out_channels)
        _copy_conv(s[0], t[0], keep, keep_in)
        copy_batchnorm(s[1], t[1], keep)
        return keep

    stem = layer(teacher.stem, student.stem, torch.arange(teacher.stem[0].in_channels))
    down0 = layer(teacher.down[0], student.down[0], stem)
    t_down1, s_down1 = teacher.down[1], student.down[1]
    trunk_score = _score(t_down1[0], t_down1[1], importance)
    for block in t_blocks:
        trunk_score = trunk_score + _score(block.body[1], block.body[2], importance)
    trunk = top_channels(trunk_score, s_down1[0].out_channels)
    _copy_conv(s_down1[0], t_down1[0], trunk, down0)
    copy_batchnorm(s_down1[1], t_down1[1], trunk)
    kept = [stem, down0, trunk]
    for t, s in zip(t_blocks, student.blocks):
        inner = layer(t.body[0], s.body[0], trunk)
        _copy_conv(s.body[1], t.body[1], trunk, inner)
        copy_batchnorm(s.body[2], t.body[2], trunk)
        kept.append(inner)
    up0 = layer(teacher.up[0][1], student.up[0][1], trunk)
    up1 = layer(teacher.up[1][1], student.up[1][1], up0)
    _copy_conv(student.to_image, teacher.to_image, torch.arange(teacher.to_image.out_channels), up1)
    return kept + [up0, up1]

"""Build a student from its teacher: width scaling, and pruning-based initialisation."""

from __future__ import annotations

import torch
from torch import nn

from kdgan.errors import UserError
from kdgan.nets.dcgan import DCGANGenerator, UpBlock
from kdgan.distill.channels import copy_batchnorm, filters_l1, strongest_blocks, top_channels
from kdgan.distill.prune_i2i import prune_resnet_i2i, prune_unet
from kdgan.nets.i2i import ResnetI2IGenerator, SRGenerator, UNetGenerator
from kdgan.nets.resnet import ResNetGenerator
from kdgan.nets.subpixel import LinearStem, SubpixelGenerator


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
    if type(student) is ResNetGenerator and type(teacher) is ResNetGenerator:
        return _prune_resnet(student, teacher, importance)
    if type(student) is SRGenerator and type(teacher) is SRGenerator:
        return _prune_sr(student, teacher)
    if type(student) is UNetGenerator and type(teacher) is UNetGenerator:
        return prune_unet(student, teacher, importance)
    if type(student) is ResnetI2IGenerator and type(teacher) is ResnetI2IGenerator:
        return prune_resnet_i2i(student, teacher, importance)
    subpixel = type(student) is SubpixelGenerator and type(teacher) is DCGANGenerator
    if not (subpixel or type(student) is DCGANGenerator and type(teacher) is DCGANGenerator):
        raise UserError(
            "distill.student.init: prune needs teacher and student of the same plain family, dcgan, resnet, sr, "
            "unet or resnet-i2i, "
            "or a dcgan-subpixel student of a dcgan teacher "
            f"(teacher {type(teacher).__name__}, student {type(student).__name__}); use init: scratch"
        )
    t_blocks = [teacher.stem, *teacher.stages]
    s_blocks = [student.stem, *student.stages]
    # A sub-pixel student stops its transposed convs early: it takes the teacher's first blocks.
    if subpixel:
        t_blocks = t_blocks[: len(s_blocks)]
    if len(t_blocks) != len(s_blocks) or student.latent_dim != teacher.latent_dim:
        raise UserError("distill.student.init: prune needs the teacher's depth and latent size")
    kept_in = torch.arange(teacher.latent_dim)
    kept = []
    for t, s in zip(t_blocks, s_blocks):
        k = s.norm.bn.num_features
        keep = top_channels(channel_importance(t, importance), k)
        w = t.conv.weight[kept_in][:, keep]
        if isinstance(s, LinearStem):  # out[c, y, x] = sum_l z[l] W[l, c, y, x]: the same map as a matrix
            s.linear.weight.copy_(w.permute(1, 2, 3, 0).reshape(-1, w.shape[0]))
        else:
            s.conv.weight.copy_(w)
        _copy_norm(s.norm, t.norm, keep)
        kept.append(keep)
        kept_in = keep
    if subpixel:
        _fit_subpixel_head(student, teacher)
    else:
        student.to_image.weight.copy_(teacher.to_image.weight[kept_in])
        student.to_image.bias.copy_(teacher.to_image.bias)
    return kept


@torch.no_grad()
def _fit_subpixel_head(student: SubpixelGenerator, teacher: DCGANGenerator, samples: int = 2048) -> None:
    """The sub-pixel head replaces the teacher's last doublings, so no teacher weights map onto
    it. With no hidden layers it is linear up to the tanh: fit it by least squares so that, on
    the pruned features of `samples` latent codes, it predicts the teacher's pre-tanh output."""
    if len(student.to_image) != 2:  # hidden conv layers: not a linear problem; keep the init
        return
    conv, scale = student.to_image[0], student.head_scale
    was = student.training, teacher.training
    student.eval(), teacher.eval()
    rng = torch.Generator().manual_seed(0)
    z = torch.randn(samples, student.latent_dim, generator=rng)
    y = torch.randint(student.num_classes, (samples,), generator=rng) if student.num_classes else None
    h = student.stem(z, y)
    for stage in student.stages:
        h = stage(h, y)
    out = teacher(z, y) if y is not None else teacher(z)
    target = torch.nn.functional.pixel_unshuffle(torch.atanh(out.clamp(-0.999, 0.999)), scale)
    cols = torch.nn.functional.unfold(h, 3, padding=1).transpose(1, 2).flatten(0, 1)  # (N*h*w, C*9)
    a = torch.cat([cols, torch.ones(len(cols), 1)], 1)
    b = target.flatten(2).transpose(1, 2).flatten(0, 1)  # (N*h*w, out)
    solution = torch.linalg.lstsq(a, b, driver="gelsd").solution
    conv.weight.copy_(solution[:-1].t().reshape(conv.weight.shape))
    conv.bias.copy_(solution[-1])
    student.train(was[0]), teacher.train(was[1])


def _copy_norm(s, t, keep: torch.Tensor) -> None:
    s.bn.running_mean.copy_(t.bn.running_mean[keep])
    s.bn.running_var.copy_(t.bn.running_var[keep])
    if t.num_classes:
        s.gamma.weight.copy_(t.gamma.weight[:, keep])
        s.beta.weight.copy_(t.beta.weight[:, keep])
    else:
        s.bn.weight.copy_(t.bn.weight[keep])
        s.bn.bias.copy_(t.bn.bias[keep])


def _gamma(norm) -> torch.Tensor:
    """|BatchNorm scale| per channel (mean over classes for conditional BatchNorm)."""
    if isinstance(norm, nn.BatchNorm2d):
        return norm.weight.abs()
    gamma = norm.gamma.weight if norm.num_classes else norm.bn.weight
    return gamma.abs().mean(0) if gamma.ndim == 2 else gamma.abs()


@torch.no_grad()
def _prune_resnet(student: ResNetGenerator, teacher: ResNetGenerator, importance: str) -> list[torch.Tensor]:
    """The ResNet generator: the channels between blocks (h_0 = the stem's 4x4 map, h_i = the
    output of stage i) are shared by a block's residual branch, its skip and the next block,
    so each h_i keeps one index set, scored by the BatchNorm that reads it (or the L1 norm of
    the layers that write it); each block's inner channels are pruned on their own."""
    if any(hasattr(m, "parametrizations") for m in teacher.modules()):
        raise UserError("distill.student.init: prune cannot copy spectral-normalised weights; use init: scratch")
    t_stages, s_stages = list(teacher.stages), list(student.stages)
    if len(t_stages) != len(s_stages) or student.latent_dim != teacher.latent_dim:
        raise UserError("distill.student.init: prune needs the teacher's depth and latent size")
    n = len(t_stages)
    widths = [student._c0] + [b.conv2.weight.shape[0] for b in s_stages]
    keeps = []
    for i, k in enumerate(widths):
        if importance == "bn":
            score = _gamma(t_stages[i].norm1 if i < n else teacher.out_norm)
        elif i == 0:
            score = teacher.stem.weight.abs().view(teacher._c0, 16, -1).sum((1, 2))
        else:
            score = filters_l1(t_stages[i - 1].conv2.weight) + filters_l1(t_stages[i - 1].skip.weight)
        keeps.append(top_channels(score, k))
    rows = (keeps[0][:, None] * 16 + torch.arange(16)).flatten()  # the stem's (c, 4, 4) rows
    student.stem.weight.copy_(teacher.stem.weight[rows])
    student.stem.bias.copy_(teacher.stem.bias[rows])
    for i, (t, s) in enumerate(zip(t_stages, s_stages)):
        kin, kout = keeps[i], keeps[i + 1]
        score = _gamma(t.norm2) if importance == "bn" else filters_l1(t.conv1.weight)
        inner = top_channels(score, s.conv1.weight.shape[0])
        _copy_norm(s.norm1, t.norm1, kin)
        s.conv1.weight.copy_(t.conv1.weight[inner][:, kin])
        s.conv1.bias.copy_(t.conv1.bias[inner])
        _copy_norm(s.norm2, t.norm2, inner)
        s.conv2.weight.copy_(t.conv2.weight[kout][:, inner])
        s.conv2.bias.copy_(t.conv2.bias[kout])
        s.skip.weight.copy_(t.skip.weight[kout][:, kin])
        s.skip.bias.copy_(t.skip.bias[kout])
    last = keeps[n]
    copy_batchnorm(student.out_norm, teacher.out_norm, last)
    student.to_image.weight.copy_(teacher.to_image.weight[:, last])
    student.to_image.bias.copy_(teacher.to_image.bias)
    return keeps


@torch.no_grad()
def _prune_sr(student: SRGenerator, teacher: SRGenerator) -> list[torch.Tensor]:
    """The SR generator: the trunk's channels (head output, every residual block's output,
    the long skip) are one index set, scored by the L1 norm of the filters that write them
    (head, each block's last conv, body_end); each block's inner channels are pruned on their
    own by the L1 norm of its first conv. The sub-pixel output conv keeps all its outputs and
    the kept inputs; the bicubic interpolation conv is copied whole. A student with fewer
    blocks keeps the teacher's blocks whose output convs have the largest L1 norm."""
    if student.scale != teacher.scale:
        raise UserError("distill.student.init: prune needs the teacher's scale")
    t_blocks = strongest_blocks(teacher.blocks, len(student.blocks), lambda b: filters_l1(b.body[2].weight).sum())
    k = student.head.out_channels
    trunk = filters_l1(teacher.head.weight) + filters_l1(teacher.body_end.weight)
    for block in t_blocks:
        trunk = trunk + filters_l1(block.body[2].weight)
    keep = top_channels(trunk, k)
    student.head.weight.copy_(teacher.head.weight[keep])
    student.head.bias.copy_(teacher.head.bias[keep])
    kept = [keep]
    for t, s in zip(t_blocks, student.blocks):
        inner = top_channels(filters_l1(t.body[0].weight), s.body[0].out_channels)
        s.body[0].weight.copy_(t.body[0].weight[inner][:, keep])
        s.body[0].bias.copy_(t.body[0].bias[inner])
        s.body[2].weight.copy_(t.body[2].weight[keep][:, inner])
        s.body[2].bias.copy_(t.body[2].bias[keep])
        kept.append(inner)
    student.body_end.weight.copy_(teacher.body_end.weight[keep][:, keep])
    student.body_end.bias.copy_(teacher.body_end.bias[keep])
    student.to_subpixels.weight.copy_(teacher.to_subpixels.weight[:, keep])
    student.to_subpixels.bias.copy_(teacher.to_subpixels.bias)
    student.interpolate.weight.copy_(teacher.interpolate.weight)
    return kept

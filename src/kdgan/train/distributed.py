"""Multi-process data parallelism on PyTorch's own engine.

Launch with torchrun (`torchrun --nproc_per_node=N -m kdgan train|distill ...`, multi-node
through torchrun's usual rendezvous flags): each process takes an equal shard of every
global batch, the networks are wrapped in DistributedDataParallel (gloo on CPU, NCCL on
GPU), and only rank 0 writes logs, samples and checkpoints. Everything random is drawn
for the global batch on every rank from the same seeded generator and then sharded, so a
run with N processes computes what one process computes with the same global batch.

BatchNorm: per-process statistics would differ from single-process ones (each process sees
B/N samples). On GPU, BatchNorm layers become nn.SyncBatchNorm. SyncBatchNorm has no CPU
kernels, so on CPU they become `CrossProcessBatchNorm1d/2d/3d`, which all-reduce the batch
statistics through differentiable collectives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from kdgan.errors import UserError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def launched_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun set up (no-op for a single process). On CUDA each
    process takes the GPU of its local rank."""
    if launched_world_size() <= 1:
        return DistInfo(), device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device(device.type, local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # On GPUs, NCCL for the tensors on the device and gloo for the few on the host (the
        # agreed stop signal), which NCCL cannot reduce.
        dist.init_process_group("cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank), device


def shutdown() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose gradient is again the sum over processes (each process's
    output feeds its own loss, and every loss depends on every process's input)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def all_reduce(x: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(x)


class CrossProcessBatchNorm:
    """Mixed into a BatchNorm class: training statistics are those of the global batch across
    all processes (mean and variance all-reduced with differentiable collectives, so the
    backward pass is exact too), over every dimension but the channels: (B, C), (B, C, L),
    (B, C, H, W) and (B, C, D, H, W) alike. Eval mode and state_dict keys are the base class's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized():
            return super().forward(x)
        c, dims = x.shape[1], [0, *range(2, x.ndim)]
        shape = (1, c) + (1,) * (x.ndim - 2)  # broadcast a per-channel vector over x
        count = torch.tensor([x.numel() / c], dtype=x.dtype, device=x.device)
        total = all_reduce(torch.cat([x.sum(dims), count]))
        n = total[c]
        mean = total[:c] / n
        centred = x - mean.view(shape)
        var = all_reduce(centred.pow(2).sum(dims)) / n  # two passes: as exact as one process
        if self.track_running_stats:
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1), alpha=m)
                self.num_batches_tracked.add_(1)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


class CrossProcessBatchNorm1d(CrossProcessBatchNorm, nn.BatchNorm1d):
    pass


class CrossProcessBatchNorm2d(CrossProcessBatchNorm, nn.BatchNorm2d):
    pass


class CrossProcessBatchNorm3d(CrossProcessBatchNorm, nn.BatchNorm3d):
    pass


CROSS_PROCESS = {nn.BatchNorm1d: CrossProcessBatchNorm1d, nn.BatchNorm2d: CrossProcessBatchNorm2d,
                 nn.BatchNorm3d: CrossProcessBatchNorm3d}


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm layer by its cross-process version (weights and buffers kept).
    A BatchNorm kind this cannot convert is refused: its statistics would silently stay those
    of each process's shard."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if type(child) in CROSS_PROCESS:
            synced = CROSS_PROCESS[type(child)](child.num_features, child.eps, child.momentum, child.affine,
                                               child.track_running_stats).to(device)
            synced.load_state_dict(child.state_dict())
            setattr(module, name, synced)
        elif isinstance(child, nn.modules.batchnorm._NormBase) and not isinstance(child, CrossProcessBatchNorm):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                raise UserError(f"{name}: {type(child).__name__} cannot be synchronised across CPU processes (kdgan "
                                "converts BatchNorm1d/2d/3d); train it in one process or on GPUs (SyncBatchNorm)")
        else:
            sync_batchnorm(child, device)
    return module


def all_reduce_mean(tensors: list[torch.Tensor], info: DistInfo) -> list[torch.Tensor]:
    """Average tensors over processes (logging); one collective for all of them."""
    if not info.enabled or not tensors:
        return tensors
    flat = torch.stack([t.detach().float().reshape(()) for t in tensors])
    dist.all_reduce(flat)
    return list(flat / info.world)


def all_reduce_min(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return t


def all_reduce_grads(params: list[nn.Parameter], info: DistInfo) -> None:
    """Average gradients of parameters that live outside the DDP-wrapped networks (the
    feature adapters of distillation terms)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not info.enabled or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= info.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()

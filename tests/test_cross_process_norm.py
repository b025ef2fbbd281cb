"""Cross-process BatchNorm on CPU for every BatchNorm kind: two processes, each with half the
batch, give the outputs, input gradients and running statistics of one process with all of it."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from kdgan.errors import UserError
from kdgan.train.distributed import sync_batchnorm

def kinds():
    return [(nn.BatchNorm1d, (8, 3)), (nn.BatchNorm1d, (8, 3, 5)), (nn.BatchNorm2d, (8, 3, 4, 4)),
            (nn.BatchNorm3d, (8, 3, 2, 3, 3))]


def shard_run(rank: int, world: int, store: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.manual_seed(0)
    out = []
    for kind, shape in kinds():
        x = torch.randn(shape)
        net = sync_batchnorm(nn.Sequential(kind(3)), torch.device("cpu")).train()
        with torch.no_grad():
            net[0].weight.uniform_(0.5, 1.5), net[0].bias.uniform_(-0.5, 0.5)
        part = x.chunk(world)[rank].clone().requires_grad_(True)
        y = net(part)
        (y * torch.arange(y.numel()).view_as(y).float().div(y.numel())).sum().backward()
        out.append((y.detach(), part.grad, net[0].running_mean.clone(), net[0].running_var.clone()))
    results[rank] = out
    dist.destroy_process_group()


def test_two_processes_normalise_like_one(tmp_path):
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(shard_run, args=(2, str(tmp_path / "store"), results), nprocs=2, join=True)
        results = dict(results)
    torch.manual_seed(0)
    for i, (kind, shape) in enumerate(kinds()):
        x = torch.randn(shape)
        net = nn.Sequential(kind(3)).train()
        with torch.no_grad():
            net[0].weight.uniform_(0.5, 1.5), net[0].bias.uniform_(-0.5, 0.5)
        full = x.clone().requires_grad_(True)
        y = net(full)
        weights = torch.cat([torch.arange(p.numel()).view_as(p).float().div(p.numel()) for p in y.chunk(2)])
        (y * weights).sum().backward()
        ours = [torch.cat([results[r][i][k] for r in (0, 1)]) for k in (0, 1)]
        assert torch.allclose(ours[0], y.detach(), atol=1e-5), kind
        assert torch.allclose(ours[1], full.grad, atol=1e-5), kind
        for r in (0, 1):  # running statistics: the global batch's, on every process
            assert torch.allclose(results[r][i][2], net[0].running_mean, atol=1e-6)
            assert torch.allclose(results[r][i][3], net[0].running_var, atol=1e-5)


def test_an_unknown_batchnorm_kind_is_refused_on_cpu():
    class MyNorm(nn.modules.batchnorm._BatchNorm):
        def _check_input_dim(self, x):
            pass

    net = nn.Sequential()
    net.add_module("norm", MyNorm(3))
    with pytest.raises(UserError, match="norm: MyNorm cannot be synchronised across CPU processes"):
        sync_batchnorm(net, torch.device("cpu"))

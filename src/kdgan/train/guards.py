"""Guards around the loop: non-finite values, stop signals, mode collapse."""

from __future__ import annotations

import signal
import threading

import torch
from torch import nn


class NonFinite(Exception):
    """A loss term or a network's weights became NaN/Inf; the message names which."""


def first_nonfinite(values: dict[str, torch.Tensor], modules: dict[str, nn.Module]) -> str | None:
    """The name of the first non-finite loss term or network, else None.

    One host-device synchronisation per call: each network is reduced to the sum of its
    weights (a NaN or Inf anywhere makes that sum non-finite) and all flags are read at once.
    Names are only looked up when something is wrong."""
    names = [f"loss term {k}" for k in values] + [f"weights of {k}" for k in modules]
    sums = [torch.stack([p.detach().float().sum() for p in m.parameters()]).sum() for m in modules.values()]
    flags = torch.stack([torch.isfinite(v.detach().float()).all() for v in [*values.values(), *sums]])
    if bool(flags.all()):
        return None
    return names[int((~flags).nonzero()[0])]


def diversity(images: torch.Tensor) -> float:
    """Mean L1 distance between all pairs of a batch (images in [-1, 1]): near 0 when every
    input gives the same image, i.e. mode collapse."""
    flat = images.detach().float().flatten(1)
    n = flat.shape[0]
    if n < 2:
        return float("nan")
    d = torch.cdist(flat, flat, p=1) / flat.shape[1]
    return float(d.sum() / (n * (n - 1)))


class StopSignals:
    """Turns SIGTERM (pre-emption) and SIGINT (Ctrl-C) into a request that the loop honours
    at the next step boundary, so the checkpoint it then writes is consistent."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.received: int | None = None
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        self.received = signum

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():  # handlers only work there
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def requested(self, info) -> int | None:
        """The signal number, agreed by all processes (any process's signal stops all)."""
        if not info.enabled:
            return self.received
        import torch.distributed as dist

        flag = torch.tensor([self.received or 0], dtype=torch.int64)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag) or None

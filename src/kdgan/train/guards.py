"""Guards around the loop: non-finite values, stop signals, mode collapse."""

from __future__ import annotations

import signal
import threading

import torch
from torch import nn


class FiniteWatch:
    """Watches the loss terms for NaN/Inf without synchronising with the device each step.

    `observe` keeps, on the device, the first step at which each term was non-finite;
    `check` reads those steps and the finiteness of the networks' weights in one
    synchronisation. The loop checks before it logs, draws samples or saves a checkpoint, so
    a diverged run is caught within `log.log_every` steps and never checkpointed."""

    NEVER = 2**62

    def __init__(self) -> None:
        self.first_bad: dict[str, torch.Tensor] = {}

    def observe(self, values: dict[str, torch.Tensor], step: int) -> None:
        for name, v in values.items():
            finite = torch.isfinite(v.detach().float()).all()
            seen = self.first_bad.get(name)
            if seen is None:
                seen = torch.full((), self.NEVER, dtype=torch.int64, device=v.device)
            self.first_bad[name] = torch.where(finite, seen, seen.clamp(max=step))

    def check(self, modules: dict[str, nn.Module], step: int, reduce_min=None) -> str | None:
        """'<what> is NaN/Inf at step N' for the earliest problem, else None. `reduce_min`
        takes the minimum over processes, so that every process agrees (DDP)."""
        names = [f"loss term {k}" for k in self.first_bad] + [f"weights of {k}" for k in modules]
        # A NaN or Inf anywhere in a network makes the sum of its weights non-finite.
        sums = [torch.stack([p.detach().float().sum() for p in m.parameters()]).sum() for m in modules.values()]
        at_step = [torch.where(torch.isfinite(s), self.NEVER, step) for s in sums]
        steps = torch.stack([*self.first_bad.values(), *[t.to(torch.int64) for t in at_step]])
        if reduce_min is not None:
            steps = reduce_min(steps)
        steps = steps.tolist()
        first = min(range(len(steps)), key=steps.__getitem__)
        return None if steps[first] == self.NEVER else f"{names[first]} is NaN/Inf at step {steps[first]}"

    def reset(self) -> None:
        self.first_bad.clear()


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


class FidelityWatch:
    """How closely the sampling generator follows its reference (the teacher, when
    distilling): mean |G(z) - T(z)| on the fixed inputs at each sample grid. A distillation
    whose student drifts away from the teacher while the terms pulling it there are on is
    learning the data, not the teacher; `observe` says so once per rise: when the distance has
    grown at `patience` grids in a row and stands `rise` x above its best."""

    def __init__(self, patience: int = 3, rise: float = 1.1):
        self.patience, self.rise = patience, rise
        self.history: list[float] = []
        self.warned = False

    def observe(self, step: int, distance: float) -> str | None:
        self.history.append(distance)
        recent = self.history[-(self.patience + 1):]
        rising = len(recent) == self.patience + 1 and all(b > a for a, b in zip(recent, recent[1:]))
        if not rising or distance < self.rise * min(self.history):
            self.warned = self.warned and rising
            return None
        if self.warned:
            return None
        self.warned = True
        return (f"the student is drifting away from its teacher: output L1 to the teacher rose at the last "
                f"{self.patience} sample grids to {distance:.4f} at step {step} (best {min(self.history):.4f}); "
                "it is following the data rather than the teacher: raise the distillation weights or lower the "
                "adversarial one")

"""Where a run reports: a JSON-lines log of every loss term, TensorBoard, and progress on
stderr: a bar in a terminal, plain periodic lines in a log file (a bar redrawn with carriage
returns becomes one huge line there)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm


class RunLog:
    """Loss terms are accumulated as tensors and averaged over each logging interval, so the
    step itself never synchronises with the device; only `flush` reads values."""

    PLAIN_EVERY_S = 10.0  # at most one plain progress line per this many seconds (and the last)

    def __init__(self, run_dir: Path, start: int, total: int, progress: bool, tensorboard: bool,
                 write: bool = True, terms: list[str] = ()):
        self.path, self.write = run_dir / "log.jsonl", write  # write: False on ranks other than 0
        self.terms = list(terms)  # the loss terms of L_D and L_G, shown as progress
        self.total, self.start = total, start
        if write:  # fit() may be called from Python on a folder that does not exist yet
            run_dir.mkdir(parents=True, exist_ok=True)
        self._sums: dict[str, torch.Tensor] = {}
        # steps each value was accumulated over: a term may be absent from some steps (the
        # adversarial terms during train.adversarial_start)
        self._counts: dict[str, int] = {}
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(run_dir / "tb"), purge_step=start)
        terminal = sys.stderr.isatty()
        self._bar = tqdm(total=total, initial=start, disable=not (progress and terminal), unit="step",
                         dynamic_ncols=True, file=sys.stderr, mininterval=0.1)
        self._plain = progress and not terminal
        self._last_plain = float("-inf")
        self._since, self._since_step = time.monotonic(), start  # the rate's window: since the last line

    def accumulate(self, values: dict[str, torch.Tensor]) -> None:
        for name, v in values.items():
            v = v.detach().float()
            # pop + insert keeps the log's keys in the step's order, also after `restore`
            self._sums[name] = self._sums.pop(name) + v if name in self._sums else v
            self._counts[name] = self._counts.get(name, 0) + 1

    def flush(self, step: int, reduce=None) -> dict:
        """Write the means since the last flush as one JSON line (step = steps completed).
        `reduce` averages the sums over processes; every process must call flush."""
        names, sums = list(self._sums), list(self._sums.values())
        if reduce is not None:
            sums = reduce(sums)
        record = {"step": step, **{k: round(float(v) / self._counts[k], 6) for k, v in zip(names, sums)}}
        self._sums, self._counts = {}, {}
        if not self.write:
            return record
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for k, v in record.items():
                if k != "step" and isinstance(v, (int, float)):
                    self._writer.add_scalar(f"loss/{k}" if k in self.terms else k, v, step)
        shown = {k: f"{record[k]:.3f}" for k in self.terms if k in record}
        self._bar.set_postfix(shown)
        now = time.monotonic()
        if self._plain and (now - self._last_plain >= self.PLAIN_EVERY_S or step == self.total):
            self._last_plain = now
            # the recent rate, not the run's mean: steps change speed where a phase begins
            # (train.adversarial_start makes them ~10x slower), and the estimate should follow
            rate = (step - self._since_step) / max(now - self._since, 1e-9)
            self._since, self._since_step = now, step
            eta = (self.total - step) / rate if rate > 0 else 0.0
            terms = "  ".join(f"{k} {v}" for k, v in shown.items())
            print(f"step {step}/{self.total}  {terms}  ({rate:.1f} steps/s, {eta:.0f} s left)", file=sys.stderr,
                  flush=True)
        return record

    def pending(self, reduce=None) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
        """What was accumulated since the last flush (sums averaged over processes by
        `reduce`; every process must call it), for a checkpoint: a run resumed from it then
        writes the same log lines as one that was never stopped."""
        names, sums = list(self._sums), list(self._sums.values())
        if reduce is not None:
            sums = reduce(sums)
        return {n: s.detach().float().cpu() for n, s in zip(names, sums)}, dict(self._counts)

    def restore(self, sums: dict[str, torch.Tensor], counts: dict[str, int] | int) -> None:
        """Continue accumulating from a checkpoint's `pending` state (earlier checkpoints hold
        one count for every value)."""
        self._sums = dict(sums)
        self._counts = {n: counts for n in sums} if isinstance(counts, int) else dict(counts)

    def event(self, record: dict) -> None:
        """A line in events.jsonl: what is not a loss average (sample diversity, a rollback)."""
        if self.write:
            with open(self.path.with_name("events.jsonl"), "a") as f:
                f.write(json.dumps(record) + "\n")

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Measurements that are not loss averages (e.g. fidelity to the teacher) to TensorBoard."""
        if self._writer is not None:
            for k, v in values.items():
                self._writer.add_scalar(k, v, step)

    def image(self, tag: str, grid_path: Path, step: int) -> None:
        if self._writer is not None:
            import numpy as np
            from PIL import Image

            arr = np.asarray(Image.open(grid_path).convert("RGB"))
            self._writer.add_image(tag, arr, step, dataformats="HWC")

    def advance(self, n: int = 1) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()
        if self._writer is not None:
            self._writer.close()


def truncate_log(path: Path, step: int) -> None:
    """On resume, drop log lines written after the checkpoint's step (and a torn last line),
    so the log reads as one uninterrupted run."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError):
            continue
    path.write_text("".join(line + "\n" for line in kept))

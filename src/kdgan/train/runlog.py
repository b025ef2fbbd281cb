"""Where a run reports: a JSON-lines log of every loss term, TensorBoard, a progress bar."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm


class RunLog:
    """Loss terms are accumulated as tensors and averaged over each logging interval, so the
    step itself never synchronises with the device; only `flush` reads values."""

    def __init__(self, run_dir: Path, start: int, total: int, progress: bool, tensorboard: bool,
                 write: bool = True):
        self.path, self.write = run_dir / "log.jsonl", write  # write: False on ranks other than 0
        if write:  # fit() may be called from Python on a folder that does not exist yet
            run_dir.mkdir(parents=True, exist_ok=True)
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(run_dir / "tb"), purge_step=start)
        # redraw at most every 5 s when stderr is a log file rather than a terminal
        self._bar = tqdm(total=total, initial=start, disable=not progress, unit="step", dynamic_ncols=True,
                         file=sys.stderr, mininterval=0.1 if sys.stderr.isatty() else 5.0)

    def accumulate(self, values: dict[str, torch.Tensor]) -> None:
        for name, v in values.items():
            v = v.detach().float()
            self._sums[name] = self._sums[name] + v if name in self._sums else v
        self._count += 1

    def flush(self, step: int, reduce=None) -> dict:
        """Write the means since the last flush as one JSON line (step = steps completed).
        `reduce` averages the sums over processes; every process must call flush."""
        names, sums = list(self._sums), list(self._sums.values())
        if reduce is not None:
            sums = reduce(sums)
        record = {"step": step, **{k: round(float(v) / self._count, 6) for k, v in zip(names, sums)}}
        self._sums, self._count = {}, 0
        if not self.write:
            return record
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for k, v in record.items():
                if k != "step" and isinstance(v, (int, float)):
                    self._writer.add_scalar(f"loss/{k}" if k.startswith(("g_", "d_")) else k, v, step)
        self._bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k.startswith(("g_", "d_"))})
        return record

    def event(self, record: dict) -> None:
        """A line in events.jsonl: what is not a loss average (sample diversity, a rollback)."""
        if self.write:
            with open(self.path.with_name("events.jsonl"), "a") as f:
                f.write(json.dumps(record) + "\n")

    def discard(self) -> None:
        """Forget what was accumulated since the last flush (after a rollback)."""
        self._sums, self._count = {}, 0

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

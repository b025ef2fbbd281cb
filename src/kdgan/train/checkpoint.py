"""Checkpoints: tensors in one safetensors file, everything else in a JSON file beside it.

`step_000500.safetensors` holds the weights of every network, the optimizer moments and the
noise generator's state; `step_000500.json` holds the step, the network specs (enough to
rebuild the networks without the training code), the resolved config and the optimizers'
hyper-parameters. Both are written to a temporary name, flushed and renamed, the JSON last:
a checkpoint whose JSON exists is complete. Nothing here unpickles, so loading a checkpoint
cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from kdgan.errors import UserError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary name, fsync, rename: `path` is either the old file or the whole
    new one. A failed write (a full disk) removes its temporary file and raises the OSError."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Tensors as one safetensors file, written atomically; returns its sha256. Serialised in
    memory and written by Python, so that a full disk is an OSError with its errno
    (safetensors' own writer raises a SafetensorError wrapping the message)."""
    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def flatten_optimizer(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    """Optimizer state -> flat tensors `{prefix}.{param index}.{key}` + JSON-able param groups."""
    sd = opt.state_dict()
    tensors = {
        f"{prefix}.{idx}.{key}": (v if torch.is_tensor(v) else torch.tensor(v))
        for idx, state in sd["state"].items()
        for key, v in state.items()
    }
    return tensors, sd["param_groups"]


def unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], groups: list) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            idx, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": groups}


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def save_checkpoint(folder: Path, step: int, tensors: dict[str, torch.Tensor], meta: dict, keep: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"step_{step:07d}"
    digest = atomic_save_tensors(stem.with_suffix(".safetensors"), tensors)
    # the JSON goes last and names the tensors' checksum: its presence marks a complete
    # checkpoint, and the checksum catches a file damaged later
    meta = {"step": step, **meta, "sha256": digest}
    atomic_write_bytes(stem.with_suffix(".json"), json.dumps(meta, indent=2).encode())
    for old in complete_checkpoints(folder)[:-keep]:
        old.unlink()
        old.with_suffix(".safetensors").unlink(missing_ok=True)
    return stem.with_suffix(".json")


def complete_checkpoints(folder: Path) -> list[Path]:
    """JSON files of complete checkpoints, oldest first."""
    return sorted(p for p in folder.glob("step_*.json") if p.with_suffix(".safetensors").is_file())


def damage(json_path: Path) -> str | None:
    """Why a checkpoint cannot be trusted, or None when it is intact: its JSON parses and
    records the tensors' sha256, and the tensors match it (a missing checksum proves nothing)."""
    try:
        meta = json.loads(json_path.read_text())
    except json.JSONDecodeError as err:
        return f"its JSON does not parse ({err.msg}, line {err.lineno})"
    except (OSError, UnicodeDecodeError) as err:
        return f"its JSON cannot be read ({getattr(err, 'strerror', None) or err})"
    digest = meta.get("sha256") if isinstance(meta, dict) else None
    if not isinstance(digest, str):
        return "its JSON records no sha256 of the tensors"
    if file_sha256(json_path.with_suffix(".safetensors")) != digest:
        return "its tensors do not match the recorded sha256"
    return None


def resolve_checkpoint(path: Path) -> Path:
    """A run folder, a checkpoints folder, or a checkpoint's .json/.safetensors -> its .json.
    For a folder: the newest intact checkpoint (a damaged newer one is skipped, with a note)."""
    if path.is_dir():
        for folder in (path / "checkpoints", path):
            found = complete_checkpoints(folder)
            for candidate in reversed(found):
                why = damage(candidate)
                if why is None:
                    return candidate
                print(f"kdgan: skipping damaged checkpoint {candidate}: {why}", file=sys.stderr)
        raise UserError(f"{path}: no complete, intact checkpoint (step_*.json + step_*.safetensors) found")
    json_path = path.with_suffix(".json")
    if not json_path.is_file() or not json_path.with_suffix(".safetensors").is_file():
        raise UserError(f"{path}: not a checkpoint (expected step_N.json beside step_N.safetensors)")
    return json_path


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    json_path = resolve_checkpoint(Path(path))
    why = damage(json_path)
    if why is not None:
        raise UserError(f"{json_path}: damaged checkpoint: {why}")
    try:
        meta = json.loads(json_path.read_text())
        tensors = load_file(str(json_path.with_suffix(".safetensors")))
    except (json.JSONDecodeError, SafetensorError, OSError) as err:
        raise UserError(f"{json_path}: unreadable checkpoint: {err}") from None
    return meta, tensors

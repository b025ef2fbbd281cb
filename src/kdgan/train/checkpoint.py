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
from safetensors.torch import load_file, save_file

from kdgan.errors import UserError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Write, fsync, rename; returns the file's sha256 (as written to disk)."""
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    digest = file_sha256(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return digest


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


def intact(json_path: Path) -> bool:
    """The checkpoint's JSON parses and its tensors match the recorded checksum."""
    try:
        digest = json.loads(json_path.read_text()).get("sha256")
    except (json.JSONDecodeError, OSError):
        return False
    return digest is None or file_sha256(json_path.with_suffix(".safetensors")) == digest


def resolve_checkpoint(path: Path) -> Path:
    """A run folder, a checkpoints folder, or a checkpoint's .json/.safetensors -> its .json.
    For a folder: the newest intact checkpoint (a damaged newer one is skipped, with a note)."""
    if path.is_dir():
        for folder in (path / "checkpoints", path):
            found = complete_checkpoints(folder)
            for candidate in reversed(found):
                if intact(candidate):
                    return candidate
                print(f"kdgan: skipping damaged checkpoint {candidate} (checksum mismatch)", file=sys.stderr)
        raise UserError(f"{path}: no complete, intact checkpoint (step_*.json + step_*.safetensors) found")
    json_path = path.with_suffix(".json")
    if not json_path.is_file() or not json_path.with_suffix(".safetensors").is_file():
        raise UserError(f"{path}: not a checkpoint (expected step_N.json beside step_N.safetensors)")
    return json_path


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    json_path = resolve_checkpoint(Path(path))
    if not intact(json_path):
        raise UserError(f"{json_path}: damaged checkpoint: its tensors do not match the recorded sha256")
    try:
        meta = json.loads(json_path.read_text())
        tensors = load_file(str(json_path.with_suffix(".safetensors")))
    except (json.JSONDecodeError, SafetensorError, OSError) as err:
        raise UserError(f"{json_path}: unreadable checkpoint: {err}") from None
    return meta, tensors

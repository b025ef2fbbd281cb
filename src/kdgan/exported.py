"""Reading what `kdgan export` writes, so that `kdgan sample` and `kdgan evaluate` take an
exported generator like a run or a checkpoint: an ONNX file, a TorchScript file, or the
folder an export wrote one of them into (`generator.onnx` / `generator.pt`).

Each file carries kdgan's metadata (deploy.export_metadata): the generator spec and size
multiple, and the training config and step of the checkpoint it came from. Running an
exported file runs its graph (onnxruntime, or TorchScript's interpreter); nothing is unpickled.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel
from torch import nn

from kdgan.deploy import EXPORT_FILES, TORCHSCRIPT_METADATA, onnx_runner
from kdgan.errors import UserError
from kdgan.families import read_generator_spec


@dataclass
class Exported:
    path: Path
    format: str  # "onnx" or "torchscript"
    generator: nn.Module  # runs the file; takes and returns CPU tensors
    spec: BaseModel  # the generator family's spec
    size_multiple: int | None  # None: exported before H and W were dynamic (one input size only)
    train_config: dict | None  # None: exported by a kdgan that did not record it
    step: int | None


class OnnxGenerator(nn.Module):
    """An ONNX file behind the nn.Module call interface (one onnxruntime session)."""

    def __init__(self, path: Path):
        super().__init__()
        self.run = onnx_runner(path)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.run(*(t.cpu() for t in inputs))


def is_torchscript(path: Path) -> bool:
    """torch.jit.save writes a zip with a `code/` folder; torch.save's zip has none."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def exported_file(source: str | Path) -> Path | None:
    """The exported file SOURCE names, or None when SOURCE is something else (a run, ...)."""
    path = Path(source)
    if path.is_file():
        if path.suffix.lower() == ".onnx" or (path.suffix.lower() == ".pt" and is_torchscript(path)):
            return path
        return None
    if not path.is_dir() or (path / "config.json").is_file() or (path / "checkpoints").is_dir():
        return None
    found = [path / name for name in EXPORT_FILES.values() if (path / name).is_file()]
    if len(found) > 1:
        raise UserError(f"SOURCE: {path} holds {' and '.join(f.name for f in found)}; name the file to use")
    return found[0] if found else None


def load_exported(path: Path) -> Exported:
    if path.suffix.lower() == ".onnx":
        import onnx

        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as err:  # onnx raises DecodeError and others for a damaged file
            raise UserError(f"SOURCE: {path} is not a readable ONNX file ({type(err).__name__})") from None
        props = {p.key: p.value for p in model.metadata_props}
        fmt, generator = "onnx", None
    else:
        files = {TORCHSCRIPT_METADATA: ""}
        try:
            generator = torch.jit.load(str(path), map_location="cpu", _extra_files=files).eval()
        except RuntimeError as err:
            raise UserError(f"SOURCE: {path} is not a readable TorchScript file: {str(err).splitlines()[0]}") from None
        props = json.loads(files[TORCHSCRIPT_METADATA] or "{}")
        fmt = "torchscript"
    if "kdgan.generator_spec" not in props:
        raise UserError(f"SOURCE: {path}: not a file exported by kdgan (no kdgan.generator_spec metadata)")
    spec = read_generator_spec(json.loads(props["kdgan.generator_spec"]))
    train_config, step = props.get("kdgan.train_config"), props.get("kdgan.step")
    train_config = json.loads(train_config) if train_config else None
    if train_config is not None:  # a task whose export is several graphs runs them its own way
        from kdgan.registry import TASKS

        task = TASKS.get((train_config.get("task") or {}).get("name", "generation"), "task.name")
        generator = task.exported_generator(path, fmt, spec) or generator
    if generator is None:
        generator = OnnxGenerator(path)
    multiple = props.get("kdgan.size_multiple")
    if multiple is not None:  # read by tiled inference, as on kdgan's own image-to-image networks
        generator.size_multiple = int(multiple)
    return Exported(path, fmt, generator, spec, int(multiple) if multiple is not None else None, train_config,
                    json.loads(step) if step else None)

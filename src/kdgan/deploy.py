"""Deployable generators: ONNX and TorchScript files, each verified against PyTorch.

An export only succeeds after the exported model has been run on fresh inputs, at a batch
size other than the one traced, and matched the PyTorch generator within a tolerance; the
maximum absolute error is reported. The batch axis is dynamic in both formats; so are H and
W of an image-to-image generator's input (any multiple of the network's `size_multiple`),
verified at a second size.

Generator inputs are z (B, latent_dim) float32 and, for class-conditional generators,
y (B,) int64; image-to-image generators take x (B, C_in, H, W). The ONNX file carries the
generator spec and size multiple as metadata (`kdgan.generator_spec`, `kdgan.size_multiple`),
so `kdgan sample` can drive it without any other file.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from pydantic import BaseModel
from torch import nn

from kdgan.errors import UserError
from kdgan.registry import EXPORTERS


TOLERANCE = 1e-4
EXPORT_FILES = {"onnx": "generator.onnx", "torchscript": "generator.pt"}  # names inside an --out folder
TORCHSCRIPT_METADATA = "kdgan.json"


def example_inputs(spec: BaseModel, n: int, seed: int, size: tuple[int, int] | None = None) -> tuple[torch.Tensor, ...]:
    """Inputs for a batch of n. Image-to-image: an image of `size` (H, W), by default the
    training crop size (SR: its low-resolution side)."""
    gen = torch.Generator().manual_seed(seed)
    if getattr(spec, "in_channels", 0):
        side = spec.resolution // getattr(spec, "scale", 1)
        h, w = size or (side, side)
        return (torch.rand(n, spec.in_channels, h, w, generator=gen) * 2 - 1,)
    z = torch.randn(n, spec.latent_dim, generator=gen)
    if not getattr(spec, "num_classes", 0):
        return (z,)
    return (z, torch.randint(0, spec.num_classes, (n,), generator=gen))


def input_names(spec: BaseModel) -> list[str]:
    if getattr(spec, "in_channels", 0):
        return ["x"]
    return ["z", "y"] if getattr(spec, "num_classes", 0) else ["z"]


def size_multiple(generator: nn.Module) -> int:
    """What an image-to-image generator's H and W must be a multiple of (its downsamplings):
    its `size_multiple` attribute, which kdgan's networks and exported files carry; 1 (any
    size) for a module that declares none."""
    return getattr(generator, "size_multiple", 1)


def dynamic_shapes(generator: nn.Module, names: list[str], image_input: bool, length_axis: int | None = None
                   ) -> tuple[dict, ...]:
    batch = torch.export.Dim("batch", min=1)
    if length_axis is not None:  # a sequence (a mel spectrogram's frames): its length is free too
        frames = torch.export.Dim("length", min=2, max=1 << 20)
        return ({0: batch, length_axis: frames}, *({0: batch} for _ in names[1:]))
    if not image_input:
        return tuple({0: batch} for _ in names)
    m = size_multiple(generator)
    # H = m * k: the exporter then knows every downsampling divides exactly. k >= 2 keeps
    # the sizes away from 1, which torch.export specialises.
    h, w = torch.export.Dim("h_blocks", min=2, max=4096), torch.export.Dim("w_blocks", min=2, max=4096)
    return ({0: batch, 2: h * m if m > 1 else h, 3: w * m if m > 1 else w},)


def onnx_model(generator: nn.Module, inputs: tuple[torch.Tensor, ...], names: list[str], image_input: bool = False,
               length_axis: int | None = None):
    """The ModelProto of torch.export-based ONNX export: batch axis dynamic, and H, W too
    for image inputs, or the first input's `length_axis` for sequences."""
    # the exporter logs a warning per torchvision op it cannot register; kdgan uses none
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(generator.eval(), inputs, dynamo=True, input_names=names,
                                    output_names=["images"],
                                    dynamic_shapes=dynamic_shapes(generator, names, image_input, length_axis),
                                    verbose=False)
    return program.model_proto


def export_target(out: Path, fmt: str) -> Path:
    """The file `kdgan export --out OUT` writes: OUT itself when it ends in the format's suffix
    (.onnx, or .pt for TorchScript), else OUT/generator.onnx or OUT/generator.pt, OUT a folder."""
    name = EXPORT_FILES[fmt]
    suffix = out.suffix.lower()
    if suffix == Path(name).suffix:
        return out
    if suffix in {Path(n).suffix for n in EXPORT_FILES.values()}:
        raise UserError(f"--out: a {fmt} file ends in {Path(name).suffix}, not {out.suffix} (or give a folder)")
    return out / name


@dataclass
class Signature:
    """A generator's inputs as an exported file takes them: their names, example inputs for a
    batch of n (`size`: another spatial size, for spatial inputs), whether the first input's
    last two axes are dynamic, and the extra sizes verification tries. A task declares its
    generators' signature (Task.export_signature); the default covers latent codes (+ class
    labels) and image inputs."""

    names: list[str]
    example: Callable[..., tuple[torch.Tensor, ...]]  # (n, seed, size=None) -> inputs
    spatial: bool = False
    sizes: list[tuple[int, ...]] = field(default_factory=list)
    length_axis: int | None = None  # a sequence input: this axis of the first input is dynamic


def default_signature(spec: BaseModel, generator: nn.Module) -> Signature:
    sizes = []
    if getattr(spec, "in_channels", 0):
        m, side = size_multiple(generator), spec.resolution // getattr(spec, "scale", 1)
        sizes = [(side + 2 * m, side + 3 * m)]
    return Signature(input_names(spec), lambda n, seed, size=None: example_inputs(spec, n, seed, size),
                     bool(getattr(spec, "in_channels", 0)), sizes)


def export_metadata(spec: BaseModel, generator: nn.Module, info: dict) -> dict[str, str]:
    """What an exported file carries besides the network, as strings: the generator spec and
    size multiple (enough for `kdgan sample`) and `info`'s entries (the training config and
    step, for `kdgan evaluate`)."""
    from kdgan.families import saved_spec

    return {"kdgan.generator_spec": json.dumps(saved_spec(spec)), "kdgan.size_multiple": str(size_multiple(generator)),
            **{f"kdgan.{k}": json.dumps(v) for k, v in info.items()}}


@EXPORTERS.register("onnx")
def export_onnx(generator: nn.Module, spec: BaseModel, path: Path, info: dict | None = None,
                signature: Signature | None = None) -> float:
    """torch.export-based ONNX export with a dynamic batch axis; verified with onnxruntime."""
    try:
        import onnx
        import onnxruntime  # noqa: F401
    except ImportError:
        raise UserError("--format onnx: needs onnx, onnxscript and onnxruntime (pip install 'kdgan[export]')") from None
    generator = generator.eval()
    signature = signature or default_signature(spec, generator)
    model = onnx_model(generator, signature.example(2, 0), signature.names, image_input=signature.spatial,
                       length_axis=signature.length_axis)
    onnx.helper.set_model_props(model, export_metadata(spec, generator, info or {}))
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return verify(generator, signature, lambda inputs: run_onnx(path, inputs), "onnx")


def onnx_runner(path: Path):
    """A callable (*tensors) -> tensor running the file in onnxruntime (one session)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0])

    return run


def run_onnx(path: Path, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return onnx_runner(path)(*inputs)


@EXPORTERS.register("torchscript")
def export_torchscript(generator: nn.Module, spec: BaseModel, path: Path, info: dict | None = None,
                       signature: Signature | None = None) -> float:
    """Traced TorchScript (the batch size is not baked in: no op depends on it), with the
    metadata of `export_metadata` as the extra file `kdgan.json`."""
    generator = generator.eval()
    signature = signature or default_signature(spec, generator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            traced = torch.jit.trace(generator, signature.example(2, 0), check_trace=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(path), _extra_files={TORCHSCRIPT_METADATA: json.dumps(export_metadata(spec, generator, info or {}))})
    with warnings.catch_warnings():  # TorchScript is deprecated upstream; it is still what many runtimes load
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(path))
    return verify(generator, signature, lambda inputs: loaded(*inputs), "torchscript")


@torch.no_grad()
def verify(generator: nn.Module, signature: Signature, run, fmt: str) -> float:
    """Max |exported - PyTorch| on fresh inputs at batch sizes 1 and 7 (not the traced 2);
    spatial inputs also at the signature's other, non-square sizes."""
    worst = 0.0
    cases = [(1, 11, None), (7, 12, None), *[(2, 13 + i, size) for i, size in enumerate(signature.sizes)]]
    for n, seed, size in cases:
        inputs = signature.example(n, seed, size)
        want, got = generator(*inputs), run(inputs)
        if tuple(got.shape) != tuple(want.shape):
            raise RuntimeError(f"{fmt} export gives shape {tuple(got.shape)} for input {tuple(inputs[0].shape)}, "
                               f"PyTorch {tuple(want.shape)}")
        worst = max(worst, float((got - want).abs().max()))
    if worst > TOLERANCE:
        raise RuntimeError(f"{fmt} export differs from PyTorch by {worst:.3g} (tolerance {TOLERANCE})")
    return worst

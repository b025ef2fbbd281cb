"""Deployable generators: ONNX and TorchScript files, each verified against PyTorch.

An export only succeeds after the exported model has been run on fresh inputs, at a batch
size other than the one traced, and matched the PyTorch generator within a tolerance; the
maximum absolute error is reported. The batch axis is dynamic in both formats.

Generator inputs are z (B, latent_dim) float32 and, for class-conditional generators,
y (B,) int64; image-to-image generators take x (B, C_in, H, W) at the training crop size. The ONNX file carries the generator spec as metadata (`kdgan.generator_spec`),
so `kdgan sample` can drive it without any other file.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from kdgan.errors import UserError
from kdgan.nets import GeneratorSpec

TOLERANCE = 1e-4


def example_inputs(spec: GeneratorSpec, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    if spec.in_channels:  # image-to-image: an image at the training crop size (SR: its low-resolution side)
        side = spec.resolution // spec.scale
        return (torch.rand(n, spec.in_channels, side, side, generator=gen) * 2 - 1,)
    z = torch.randn(n, spec.latent_dim, generator=gen)
    if not spec.num_classes:
        return (z,)
    return (z, torch.randint(0, spec.num_classes, (n,), generator=gen))


def input_names(spec: GeneratorSpec) -> list[str]:
    if spec.in_channels:
        return ["x"]
    return ["z", "y"] if spec.num_classes else ["z"]


def onnx_model(generator: nn.Module, inputs: tuple[torch.Tensor, ...], names: list[str]):
    """The ModelProto of torch.export-based ONNX export, batch axis dynamic."""
    batch = torch.export.Dim("batch", min=1)
    # the exporter logs a warning per torchvision op it cannot register; kdgan uses none
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(generator.eval(), inputs, dynamo=True, input_names=names,
                                    output_names=["images"], dynamic_shapes=tuple({0: batch} for _ in names),
                                    verbose=False)
    return program.model_proto


def export_onnx(generator: nn.Module, spec: GeneratorSpec, path: Path) -> float:
    """torch.export-based ONNX export with a dynamic batch axis; verified with onnxruntime."""
    try:
        import onnx
        import onnxruntime  # noqa: F401
    except ImportError:
        raise UserError("--format onnx: needs onnx, onnxscript and onnxruntime (pip install 'kdgan[export]')") from None
    generator = generator.eval()
    model = onnx_model(generator, example_inputs(spec, 2, 0), input_names(spec))
    onnx.helper.set_model_props(model, {"kdgan.generator_spec": spec.model_dump_json()})
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return verify(generator, spec, lambda inputs: run_onnx(path, inputs), "onnx")


def run_onnx(path: Path, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
    return torch.from_numpy(session.run(None, feed)[0])


def onnx_spec(path: Path) -> GeneratorSpec:
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if "kdgan.generator_spec" not in props:
        raise UserError(f"{path}: not an ONNX file exported by kdgan (no kdgan.generator_spec metadata)")
    return GeneratorSpec(**json.loads(props["kdgan.generator_spec"]))


def export_torchscript(generator: nn.Module, spec: GeneratorSpec, path: Path) -> float:
    """Traced TorchScript (the batch size is not baked in: no op depends on it)."""
    generator = generator.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            traced = torch.jit.trace(generator, example_inputs(spec, 2, 0), check_trace=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(path))
    with warnings.catch_warnings():  # TorchScript is deprecated upstream; it is still what many runtimes load
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(path))
    return verify(generator, spec, lambda inputs: loaded(*inputs), "torchscript")


@torch.no_grad()
def verify(generator: nn.Module, spec: GeneratorSpec, run, fmt: str) -> float:
    """Max |exported - PyTorch| on fresh inputs at batch sizes 1 and 7 (not the traced 2)."""
    worst = 0.0
    for n, seed in ((1, 11), (7, 12)):
        inputs = example_inputs(spec, n, seed)
        want, got = generator(*inputs), run(inputs)
        if tuple(got.shape) != tuple(want.shape):
            raise RuntimeError(f"{fmt} export gives shape {tuple(got.shape)} for batch {n}, PyTorch {tuple(want.shape)}")
        worst = max(worst, float((got - want).abs().max()))
    if worst > TOLERANCE:
        raise RuntimeError(f"{fmt} export differs from PyTorch by {worst:.3g} (tolerance {TOLERANCE})")
    return worst

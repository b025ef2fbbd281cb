"""Exports round-trip for every generator family, with a dynamic batch; sampling from both."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, set_args, tiny_overrides
from kdgan.families import read_generator_spec
from kdgan.deploy import example_inputs, export_onnx, export_torchscript, run_onnx
from kdgan.exported import load_exported
from kdgan.nets import GeneratorSpec, build_generator

FAMILIES = [("dcgan", 0), ("resnet", 0), ("dcgan-separable", 0), ("resnet-separable", 0), ("dcgan-subpixel", 0),
            ("dcgan", 3), ("resnet", 3), ("dcgan-subpixel", 3), ("dcgan-subpixel-residual", 0)]


@pytest.mark.parametrize("arch,classes", FAMILIES, ids=lambda v: str(v))
def test_onnx_and_torchscript_round_trip(tmp_path, arch, classes):
    residual = 6 if arch.endswith("-residual") else 0
    spec = GeneratorSpec(arch=arch.removesuffix("-residual"), width=4, latent_dim=8, resolution=16, channels=3,
                         num_classes=classes, head_residual=residual)
    torch.manual_seed(0)
    g = build_generator(spec).eval()
    if residual:  # give the zero-initialised branch weights, so that the export must carry it
        torch.nn.init.normal_(g.head_residual[-1].weight, 0, 0.1)
    assert export_onnx(g, spec, tmp_path / "g.onnx") < 1e-4
    assert export_torchscript(g, spec, tmp_path / "g.pt") < 1e-4
    assert load_exported(tmp_path / "g.onnx").spec == read_generator_spec(spec)  # as its family's typed spec
    assert load_exported(tmp_path / "g.pt").spec == read_generator_spec(spec)
    inputs = example_inputs(spec, 5, seed=3)  # a batch size neither export was traced with
    with torch.no_grad():
        want = g(*inputs)
    assert torch.allclose(run_onnx(tmp_path / "g.onnx", inputs), want, atol=1e-5)
    assert torch.allclose(torch.jit.load(str(tmp_path / "g.pt"))(*inputs), want, atol=1e-6)


def test_export_and_sample_from_the_cli(run_cli, tmp_path):
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--config", ROOT / "configs/digits_teacher.yaml", "--out", run,
                           *set_args(tiny_overrides(**{"model.latent_dim": 8, "train.steps": 2})))
    assert code == 0, err
    code, out, err = run_cli("export", run, "--format", "onnx", "--out", tmp_path / "g.onnx")
    assert code == 0 and "max abs error" in out, err
    code, out, err = run_cli("export", run, "--format", "torchscript", "--out", tmp_path / "g.pt")
    assert code == 0, err
    # a path without the format's suffix is a folder that gets generator.onnx / generator.pt
    for fmt, name in (("onnx", "generator.onnx"), ("torchscript", "generator.pt")):
        code, out, err = run_cli("export", run, "--format", fmt, "--out", tmp_path / f"{fmt}_folder")
        assert code == 0 and (tmp_path / f"{fmt}_folder" / name).is_file(), err
    code, _, err = run_cli("export", run, "--format", "onnx", "--out", tmp_path / "g2.pt")
    assert code == 2 and "ends in .onnx" in err
    # the same seed gives the same images from the checkpoint and from the ONNX file
    assert run_cli("sample", run, "-n", 6, "--out", tmp_path / "a.png")[0] == 0
    assert run_cli("sample", tmp_path / "g.onnx", "-n", 6, "--out", tmp_path / "b.png")[0] == 0
    # every file export writes is a SOURCE for sample: the files, and the folders holding them
    for i, exported in enumerate(("g.pt", "onnx_folder", "torchscript_folder")):
        code, _, err = run_cli("sample", tmp_path / exported, "-n", 6, "--out", tmp_path / f"c{i}.png")
        assert code == 0, err
    a, b, *more = (np.asarray(Image.open(tmp_path / f), dtype=np.int16) for f in ("a.png", "b.png", "c0.png", "c1.png", "c2.png"))
    for other in (b, *more):
        assert a.shape == other.shape and np.abs(a - other).max() <= 1  # uint8 rounding
    assert run_cli("sample", run, "-n", 3, "--out", tmp_path / "many")[0] == 0
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    code, _, err = run_cli("sample", tmp_path / "missing.onnx", "--out", tmp_path / "x.png")
    assert code == 2 and "does not exist" in err
    (tmp_path / "corrupt.onnx").write_bytes(bytes(range(256)) * 8)
    for command in ("sample", "evaluate"):
        code, _, err = run_cli(command, tmp_path / "corrupt.onnx", "--out", tmp_path / "y")
        assert code == 2 and err.strip().splitlines() == [
            f"kdgan: SOURCE: {tmp_path / 'corrupt.onnx'} is not a readable ONNX file (DecodeError)"]

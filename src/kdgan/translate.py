"""`kdgan sample --input`: run an image-to-image generator on whole image files.

Inputs are read with the generator's input channels: 1 = grey, 3 = RGB, C+1 = an inpainting
input given as an image with an alpha channel whose 0s mark the hole (the masked image and
mask are built exactly as in training: hole pixels 0, mask +1 / -1). Each image is cut to a
multiple of 8 px and run tiled, so any size fits in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from kdgan.data.photos import cut_to_multiple, image_files
from kdgan.errors import UserError
from kdgan.tasks.image.metrics import run_tiled
from kdgan.tasks.image.grid import image_grid


def read_input(path: Path, in_channels: int) -> torch.Tensor:
    """(1, in_channels, H, W) in [-1, 1]."""
    try:
        img = Image.open(path)
        img.load()
    except OSError as e:  # PIL's UnidentifiedImageError included: a corrupt or non-image file
        raise UserError(f"--input: {path} is not a readable image ({e.__class__.__name__}); give a PNG or JPEG "
                        "file, or a folder of them") from None
    with img:
        if in_channels in (1, 3):
            arr = np.asarray(img.convert("L" if in_channels == 1 else "RGB"), dtype=np.float32)
            x = torch.from_numpy(arr if arr.ndim == 3 else arr[..., None]).permute(2, 0, 1) / 127.5 - 1
        elif in_channels in (2, 4):  # inpainting: colour (or grey) + mask from alpha
            mode = "LA" if in_channels == 2 else "RGBA"
            if img.mode not in ("LA", "RGBA", "PA"):
                raise UserError(f"--input: {path} has no alpha channel to mark the hole (alpha 0 = hole)")
            arr = np.asarray(img.convert(mode), dtype=np.float32)
            colour = torch.from_numpy(arr[..., :-1]).permute(2, 0, 1) / 127.5 - 1
            hole = torch.from_numpy((arr[..., -1] == 0).astype(np.float32))[None]
            x = torch.cat([colour * (1 - hole), hole * 2 - 1])
        else:
            raise UserError(f"--input: generators taking {in_channels} channels are not supported by sample")
    return cut_to_multiple(x[None])


@torch.no_grad()
def translate_files(generator, spec, inputs: Path, out: Path, multiple: int) -> list[Path]:
    """generator: a module or any callable x -> y (an ONNX Runtime session); H and W of what
    it is given are multiples of `multiple`."""
    if isinstance(generator, torch.nn.Module):
        generator = generator.eval()
    if not inputs.exists():
        raise UserError(f"--input: {inputs} does not exist; give an image or a folder of images")
    single = inputs.is_file()
    files = [inputs] if single else image_files(inputs, "--input")
    to_file = single and out.suffix.lower() == ".png"  # one image to one named file; else a folder of them
    written = []
    for f in files:
        y = run_tiled(generator, read_input(f, spec.in_channels), getattr(spec, "scale", 1), multiple=multiple)
        target = out if to_file else out / f"{f.stem}.png"
        target.parent.mkdir(parents=True, exist_ok=True)  # only once an image is ready: a bad input writes nothing
        partial = target.with_name(target.name + ".partial")
        image_grid(y, nrow=1, pad=0).save(partial, format="PNG")
        partial.replace(target)
        written.append(target)
    return written

"""Sample grids as PNG."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from kdgan.data.images import to_uint8
from kdgan.train.checkpoint import atomic_write_bytes


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> Image.Image:
    """(N, C, H, W) in [-1, 1] -> one PIL image, `nrow` images per row, `pad` px black gaps."""
    x = to_uint8(images.float().cpu()).numpy()
    n, c, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    canvas = np.zeros((c, rows * (h + pad) + pad, nrow * (w + pad) + pad), dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        canvas[:, top : top + h, left : left + w] = x[i]
    return Image.fromarray(canvas[0] if c == 1 else canvas.transpose(1, 2, 0))


def side_by_side(grids: list[Image.Image], gap: int = 8) -> Image.Image:
    """Grids left to right, separated by a grey band."""
    width = sum(g.width for g in grids) + gap * (len(grids) - 1)
    out = Image.new(grids[0].mode, (width, max(g.height for g in grids)), 128 if grids[0].mode == "L" else (128,) * 3)
    left = 0
    for g in grids:
        out.paste(g, (left, 0))
        left += g.width + gap
    return out


def with_label(grid: Image.Image, text: str, height: int = 14) -> Image.Image:
    """The grid under a white strip naming it."""
    white = 255 if grid.mode == "L" else (255,) * len(grid.getbands())
    out = Image.new(grid.mode, (grid.width, grid.height + height), white)
    out.paste(grid, (0, height))
    ImageDraw.Draw(out).text((3, 1), text, fill=0 if grid.mode == "L" else (0,) * len(grid.getbands()))
    return out


def save_grid(images: torch.Tensor | list[torch.Tensor], path: Path, nrow: int | None = None, scale: int = 1,
              labels: list[str] | None = None) -> Path:
    """One grid, or several side by side (e.g. [teacher, student] on the same inputs), each
    under its label when `labels` are given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    batches = images if isinstance(images, list) else [images]
    grids = [image_grid(b, nrow) for b in batches]
    if scale > 1:
        grids = [g.resize((g.width * scale, g.height * scale), Image.NEAREST) for g in grids]
    if labels:
        grids = [with_label(g, text) for g, text in zip(grids, labels)]
    img = side_by_side(grids)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())  # a full disk leaves the old grid, and no .tmp file
    return path


def save_images(images: torch.Tensor, folder: Path) -> list[Path]:
    """One PNG per image: folder/000000.png, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        paths.append(folder / f"{i:06d}.png")
        image_grid(img[None], nrow=1, pad=0).save(paths[-1], format="PNG")
    return paths

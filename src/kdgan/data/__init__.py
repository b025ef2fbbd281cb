"""Datasets by name and the per-step samplers of real batches and generator inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from kdgan.data.embedded import load_digits, load_glyphs
from kdgan.data.images import ImageDataset, Reading, to_float, to_uint8
from kdgan.data.photos import load_embedded, random_crops
from kdgan.data.user import load_folder, load_npz
from kdgan.errors import UserError

# name -> loader(path, resolution, channels, reading). `path` is used by the user-data
# sources only, `reading` (data.grey_to_rgb, data.background) by the folder source.
DATASETS: dict[str, Callable[..., ImageDataset]] = {
    "glyphs": lambda path, r, c, g: load_glyphs(r, c),
    "digits": lambda path, r, c, g: load_digits(r, c),
    "folder": lambda path, r, c, reading: load_folder(path, r, c, reading),
    "npz": lambda path, r, c, g: load_npz(path, r, c),
    # scikit-image's photos; for generation, 4,096 random crops of the training photos.
    "photos": lambda path, r, c, g: random_crops(load_embedded(c, 512)[0], 4096, r, seed=0),
}
NEEDS_PATH = {"folder", "npz"}


def load_dataset(name: str, path: Path | None, resolution: int, channels: int,
                 reading: Reading = Reading()) -> ImageDataset:
    if name not in DATASETS:
        raise UserError(f"data.name: unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    if name in NEEDS_PATH and path is None:
        raise UserError(f"data.path: dataset {name!r} needs a path")
    return DATASETS[name](path, resolution, channels, reading)


__all__ = ["DATASETS", "ImageDataset", "load_dataset", "to_float", "to_uint8"]

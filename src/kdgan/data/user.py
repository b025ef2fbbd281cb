"""User data: a folder of images (class labels from sub-folder names) or an .npz array file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from kdgan.data.images import ImageDataset, Reading, fit_array, fit_image, flatten_alpha
from kdgan.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F", "P"}  # P: checked after palette expansion


def is_grey(img: Image.Image) -> bool:
    if img.mode == "P":
        img = img.convert("RGB")
        r, g, b = img.split()
        return r.tobytes() == g.tobytes() == b.tobytes()
    return img.mode in GREY_MODES


def check_colour(img: Image.Image, file: Path, channels: int, grey_to_rgb: bool) -> None:
    """A grey image in a folder read as RGB is most often a stray file (a mask, a scan); it
    is refused unless data.grey_to_rgb says to replicate its channel."""
    if channels == 3 and not grey_to_rgb and is_grey(img):
        raise UserError(f"data.path: {file} is a grey image but data.channels is 3; remove it, set "
                        "data.channels: 1, or set data.grey_to_rgb: true to replicate its grey channel")


def load_folder(path: Path, resolution: int, channels: int, reading: Reading = Reading()) -> ImageDataset:
    """Every PNG/JPEG under `path`, recursively, in sorted order (other files are ignored).

    When every image sits in a sub-folder of `path`, the first-level sub-folder names are the
    classes (ImageFolder's convention); otherwise the data is unlabelled.
    """
    if not path.is_dir():
        raise UserError(f"data.path: {path} is not a folder of images")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"data.path: no .png/.jpg/.jpeg images found under {path}")
    arrays = [_read(f, resolution, channels, reading) for f in files]
    parts = [f.relative_to(path).parts for f in files]
    if all(len(p) > 1 for p in parts):
        class_names = sorted({p[0] for p in parts})
        index = {c: i for i, c in enumerate(class_names)}
        labels = [index[p[0]] for p in parts]
    else:
        class_names, labels = [], [0] * len(files)
    images = torch.from_numpy(np.stack(arrays))
    return ImageDataset(images, torch.tensor(labels, dtype=torch.int64), class_names, path.name)


def _read(file: Path, resolution: int, channels: int, reading: Reading) -> np.ndarray:
    try:
        with Image.open(file) as img:
            img.load()  # decode now: a truncated file fails here, not later
            check_colour(img, file, channels, reading.grey_to_rgb)
            return fit_image(flatten_alpha(img, reading.background), resolution, channels)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"data.path: cannot read image {file}: {err}") from None


def load_npz(path: Path, resolution: int, channels: int) -> ImageDataset:
    """An .npz with `images` uint8 (N, H, W), (N, H, W, C) or (N, C, H, W), C in {1, 3},
    and optionally `labels` int (N,) and `class_names` (K,)."""
    if not path.is_file():
        raise UserError(f"data.path: {path} does not exist (expected an .npz file)")
    try:
        arrays = np.load(path, allow_pickle=False)
        images = arrays["images"]
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"data.path: {path} is not an .npz with an 'images' array: {err}") from None
    if images.dtype != np.uint8:
        raise UserError(f"data.path: {path}: 'images' must be uint8 in [0, 255], got {images.dtype}")
    if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[3] not in (1, 3):
        images = images.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    if images.ndim == 4 and images.shape[3] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] != 3):
        raise UserError(
            f"data.path: {path}: 'images' must be (N, H, W), (N, H, W, C) or (N, C, H, W) "
            f"with C in {{1, 3}}, got shape {images.shape}"
        )
    n = images.shape[0]
    labels = arrays["labels"].astype(np.int64) if "labels" in arrays else np.zeros(n, np.int64)
    if labels.shape != (n,):
        raise UserError(f"data.path: {path}: 'labels' must have shape ({n},), got {labels.shape}")
    if "class_names" in arrays:
        class_names = [str(c) for c in arrays["class_names"]]
    else:
        class_names = [str(i) for i in range(int(labels.max()) + 1)] if "labels" in arrays else []
    return ImageDataset(fit_array(images, resolution, channels), torch.from_numpy(labels), class_names, path.stem)

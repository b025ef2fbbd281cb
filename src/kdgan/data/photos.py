"""Whole photographs for image-to-image tasks, and the pool of random training crops.

Sources:
  * `photos`: scikit-image's bundled images (they load offline), with a fixed held-out
    split of whole images for evaluation: chelsea, coffee and camera are never trained on;
  * `folder`: a user folder of images; every 10th file in sorted order (at least one) is
    held out;
  * `paired` (task `paired`): a folder with `A/` (inputs) and `B/` (targets) holding files
    of the same names and sizes; held out as for `folder`;
  * `unpaired` (task `unpaired`): `A/` and `B/` with no correspondence.

Every photo is shrunk (Lanczos) so that its longer side is at most `max_side`, then stored
as uint8 (C, H, W). A paired photo stacks target and input channels, so one crop cuts both
at the same place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from kdgan.data.images import ImageDataset, Reading, flatten_alpha
from kdgan.data.user import IMAGE_SUFFIXES
from kdgan.errors import UserError

# Natural RGB photographs first, then grey ones (textures, objects, text), used as RGB.
EMBEDDED_TRAIN = ("astronaut", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
                  "coins", "moon", "brick", "grass", "gravel", "clock", "text", "page")
EMBEDDED_HELD_OUT = ("chelsea", "coffee", "camera")


@dataclass
class Photo:
    name: str
    pixels: torch.Tensor  # uint8 (C, H, W)


def shrink(img: Image.Image, max_side: int) -> Image.Image:
    scale = max_side / max(img.size)
    if scale >= 1:
        return img
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)


def to_pixels(img: Image.Image, channels: int) -> torch.Tensor:
    arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    # a copy: PIL's buffer is read-only, and torch warns about (and must not write into) it
    return torch.from_numpy(np.array(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1), order="C"))


def embedded_photo(name: str, channels: int, max_side: int) -> Photo:
    import skimage.data

    arr = getattr(skimage.data, name)()
    return Photo(name, to_pixels(shrink(Image.fromarray(arr), max_side), channels))


def load_embedded(channels: int, max_side: int) -> tuple[list[Photo], list[Photo]]:
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        raise UserError("data.name: photos needs scikit-image (pip install scikit-image)") from None
    return ([embedded_photo(n, channels, max_side) for n in EMBEDDED_TRAIN],
            [embedded_photo(n, channels, max_side) for n in EMBEDDED_HELD_OUT])


def image_files(folder: Path, field: str = "data.path") -> list[Path]:
    if not folder.is_dir():
        raise UserError(f"{field}: {folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{field}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return files


def read_photo(path: Path, channels: int, max_side: int, reading: Reading = Reading()) -> torch.Tensor:
    from kdgan.data.user import check_colour

    try:
        with Image.open(path) as img:
            img.load()
            check_colour(img, path, channels, reading.grey_to_rgb)
            return to_pixels(shrink(flatten_alpha(img, reading.background), max_side), channels)
    except (UnidentifiedImageError, OSError) as err:
        raise UserError(f"data.path: cannot read image {path}: {err}") from None


def held_out_split(items: list) -> tuple[list, list]:
    """Every 10th item in order (at least one, when there are two or more) is held out."""
    held = [i for i in range(len(items)) if i % 10 == 9] or ([len(items) - 1] if len(items) > 1 else [])
    return [x for i, x in enumerate(items) if i not in held], [items[i] for i in held]


def read_folder(path: Path, channels: int, max_side: int, reading: Reading = Reading(),
                field: str = "data.path") -> list[Photo]:
    """Every image under `path` as a Photo named by its relative path, in sorted order."""
    return [Photo(str(f.relative_to(path)), read_photo(f, channels, max_side, reading))
            for f in image_files(path, field)]


def load_folder(path: Path, channels: int, max_side: int, reading: Reading = Reading()) -> tuple[list[Photo], list[Photo]]:
    return held_out_split(read_folder(path, channels, max_side, reading))


def cut_to_multiple(x: torch.Tensor, multiple: int = 8) -> torch.Tensor:
    """(..., H, W) with H and W cut down to multiples of `multiple` (bottom/right rows dropped),
    so every degradation and network divides a whole photo."""
    h, w = x.shape[-2:]
    return x[..., : h - h % multiple, : w - w % multiple]


def load_paired(path: Path, channels: int, in_channels: int, max_side: int) -> tuple[list[Photo], list[Photo]]:
    """Photos whose pixels are (target B channels, input A channels), matched by file name."""
    a_files = {f.relative_to(path / "A").as_posix(): f for f in image_files(path / "A", "data.path (A/)")}
    b_files = {f.relative_to(path / "B").as_posix(): f for f in image_files(path / "B", "data.path (B/)")}
    for name in sorted(a_files.keys() ^ b_files.keys()):
        side, other = ("A", "B") if name in a_files else ("B", "A")
        raise UserError(f"data.path: {path / side / name} has no partner {path / other / name}")
    photos = []
    for name in sorted(a_files):
        a = read_photo(a_files[name], in_channels, max_side)
        b = read_photo(b_files[name], channels, max_side)
        if a.shape[1:] != b.shape[1:]:
            raise UserError(f"data.path: {a_files[name]} is {a.shape[2]}x{a.shape[1]} but {b_files[name]} is "
                            f"{b.shape[2]}x{b.shape[1]}; paired images must have the same size")
        photos.append(Photo(name, torch.cat([b, a])))
    return held_out_split(photos)


def random_crops(photos: list[Photo], count: int, size: int, seed: int) -> ImageDataset:
    """`count` crops of size x size from random places of random photos (a photo drawn with
    probability proportional to its number of crop positions), half of them mirrored
    left-right. A pure function of the seed. -> ImageDataset uint8 (count, C, size, size)."""
    small = [p.name for p in photos if min(p.pixels.shape[1:]) < size]
    if small:
        raise UserError(f"data.resolution: {size}px crops do not fit in {', '.join(small[:3])} "
                        f"(smaller than {size}px); use a smaller data.resolution or larger images")
    gen = torch.Generator().manual_seed(seed)
    positions = torch.tensor([(p.pixels.shape[1] - size + 1) * (p.pixels.shape[2] - size + 1) for p in photos],
                             dtype=torch.float64)
    which = torch.multinomial(positions, count, replacement=True, generator=gen)
    out = torch.empty(count, photos[0].pixels.shape[0], size, size, dtype=torch.uint8)
    for i, k in enumerate(which.tolist()):
        px = photos[k].pixels
        top = int(torch.randint(px.shape[1] - size + 1, (), generator=gen))
        left = int(torch.randint(px.shape[2] - size + 1, (), generator=gen))
        crop = px[:, top : top + size, left : left + size]
        out[i] = crop.flip(-1) if torch.rand((), generator=gen) < 0.5 else crop
    return ImageDataset(out, which.to(torch.int64), [p.name for p in photos], name="crops")

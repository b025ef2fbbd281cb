"""The in-memory image dataset every source is turned into, and the image conversions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image


@dataclass(frozen=True)
class Reading:
    """How user image files become pixels: a grey file in an RGB run is refused unless
    `grey_to_rgb` replicates its channel; transparent pixels (RGBA, LA, palette transparency)
    are composited over `background` (RGB), since dropping alpha would show whatever colour
    the file happens to store under it (black, for most emoji and icons)."""

    grey_to_rgb: bool = False
    background: tuple[int, int, int] = (255, 255, 255)


def flatten_alpha(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """`img` without transparency: composited over `background` when it has any."""
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode not in ("RGBA", "LA", "PA", "RGBa", "La"):
        return img
    return Image.alpha_composite(Image.new("RGBA", img.size, (*background, 255)), img.convert("RGBA")).convert("RGB")


@dataclass
class ImageDataset:
    """All images of a dataset, held as uint8 (N, C, H, W) so that a step's batch is one
    index operation and the sampling order is a pure function of (seed, step).

    Labels are int64 (N,); `class_names[label]` names a class (empty when unlabelled).
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str] = field(default_factory=list)
    name: str = ""

    def __post_init__(self) -> None:
        assert self.images.dtype == torch.uint8 and self.images.ndim == 4, self.images.shape
        assert self.labels.shape == (self.images.shape[0],), self.labels.shape

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def resolution(self) -> int:
        return self.images.shape[-1]


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], the range of the generators' tanh output."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255] (clamped, rounded)."""
    return images.detach().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def fit_image(img: Image.Image, resolution: int, channels: int) -> np.ndarray:
    """Convert to the channel count (L or RGB), resize the shorter side to `resolution`
    (Lanczos, so downscaling does not alias), centre-crop to a square. -> uint8 (C, R, R)."""
    img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    scale = resolution / min(w, h)
    nw, nh = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.LANCZOS)
    left, top = (nw - resolution) // 2, (nh - resolution) // 2
    img = img.crop((left, top, left + resolution, top + resolution))
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def fit_array(images: np.ndarray, resolution: int, channels: int) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) -> uint8 (N, channels, resolution, resolution)."""
    if images.shape[1:3] == (resolution, resolution) and (
        (images.ndim == 3 and channels == 1) or (images.ndim == 4 and images.shape[3] == channels)
    ):
        out = images if images.ndim == 4 else images[..., None]
        return torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2)))
    return torch.from_numpy(np.stack([fit_image(Image.fromarray(a), resolution, channels) for a in images]))

"""How image-to-image inputs are made from a target image: the super-resolution
degradation, inpainting masks and edge maps. All randomness comes from a torch.Generator,
so a seed fixes every low-resolution image and every mask.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur, kernel radius 3 sigma, reflect padding. x (B, C, H, W)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def downscale(hr: torch.Tensor, scale: int, kernel: str = "bicubic", blur_sigma: float = 0.0,
              noise_sigma: float = 0.0, noise: torch.Generator | None = None) -> torch.Tensor:
    """The SR degradation: optional Gaussian blur, downscaling by `scale` with `kernel`
    (bicubic and bilinear antialiased, i.e. MATLAB's imresize; area = box average), optional
    Gaussian noise of `noise_sigma` grey levels (of 255). Images in [-1, 1]; H and W must be
    multiples of `scale`."""
    if hr.shape[-1] % scale or hr.shape[-2] % scale:
        raise ValueError(f"image size {tuple(hr.shape[-2:])} is not a multiple of the SR scale {scale}")
    x = gaussian_blur(hr, blur_sigma) if blur_sigma > 0 else hr
    size = (hr.shape[-2] // scale, hr.shape[-1] // scale)
    if kernel == "area":
        lr = F.interpolate(x, size=size, mode="area")
    else:
        lr = F.interpolate(x, size=size, mode=kernel, align_corners=False, antialias=True)
    if noise_sigma > 0:
        lr = lr + torch.randn(lr.shape, generator=noise).to(lr) * (noise_sigma / 127.5)
    return lr.clamp(-1, 1)


def rect_masks(n: int, h: int, w: int, noise: torch.Generator) -> torch.Tensor:
    """One axis-aligned hole per image, each side 25-50% of the image's. (n, 1, h, w), 1 = hole."""
    masks = torch.zeros(n, 1, h, w)
    for i in range(n):
        mh = int(h * (0.25 + 0.25 * torch.rand((), generator=noise)))
        mw = int(w * (0.25 + 0.25 * torch.rand((), generator=noise)))
        top = int(torch.randint(h - mh + 1, (), generator=noise))
        left = int(torch.randint(w - mw + 1, (), generator=noise))
        masks[i, 0, top : top + mh, left : left + mw] = 1
    return masks


def segment_distance(yy: torch.Tensor, xx: torch.Tensor, y0: float, x0: float, y1: float, x1: float) -> torch.Tensor:
    """Distance of every grid point to the segment (y0, x0)-(y1, x1)."""
    dy, dx = y1 - y0, x1 - x0
    t = (((yy - y0) * dy + (xx - x0) * dx) / max(dy * dy + dx * dx, 1e-9)).clamp(0, 1)
    return torch.hypot(yy - (y0 + t * dy), xx - (x0 + t * dx))


def freeform_masks(n: int, h: int, w: int, noise: torch.Generator) -> torch.Tensor:
    """Free-form holes as in DeepFill v2: 1-3 strokes per image, each a random walk of 4-8
    segments drawn with a round brush 4-10% of the image's size wide. (n, 1, h, w)."""
    side = min(h, w)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    masks = torch.zeros(n, 1, h, w)
    for i in range(n):
        for _ in range(int(torch.randint(1, 4, (), generator=noise))):
            radius = side * (0.04 + 0.06 * float(torch.rand((), generator=noise))) / 2 + 0.5
            y, x = float(torch.rand((), generator=noise)) * h, float(torch.rand((), generator=noise)) * w
            points = [(y, x)]
            for _ in range(int(torch.randint(4, 9, (), generator=noise))):
                angle = float(torch.rand((), generator=noise)) * 2 * math.pi
                length = side * (0.1 + 0.2 * float(torch.rand((), generator=noise)))
                y = min(max(y + length * math.sin(angle), 0), h - 1)
                x = min(max(x + length * math.cos(angle), 0), w - 1)
                points.append((y, x))
            for (y0, x0), (y1, x1) in zip(points[:-1], points[1:]):  # a round brush along each segment
                masks[i, 0][segment_distance(yy, xx, y0, x0, y1, x1) <= radius] = 1
    return masks


def make_masks(kind: str, n: int, h: int, w: int, noise: torch.Generator) -> torch.Tensor:
    """kind: rect, freeform, or mixed (each image a coin flip between the two)."""
    if kind == "rect":
        return rect_masks(n, h, w, noise)
    if kind == "freeform":
        return freeform_masks(n, h, w, noise)
    rect = torch.rand(n, generator=noise) < 0.5
    masks = torch.empty(n, 1, h, w)
    for i in range(n):
        masks[i] = (rect_masks if rect[i] else freeform_masks)(1, h, w, noise)[0]
    return masks


def canny_edges(pixels: torch.Tensor, sigma: float) -> torch.Tensor:
    """Edge map of a uint8 (C, H, W) image by scikit-image's Canny detector (on the grey
    image, Gaussian `sigma`, its default hysteresis thresholds). -> uint8 (1, H, W), 255 on
    edges. Computed once per whole photo, so crops of the map align with crops of the photo."""
    from skimage.feature import canny

    grey = pixels.float().mean(0).numpy() / 255.0
    return torch.from_numpy(canny(grey, sigma=sigma).astype(np.uint8) * 255)[None]

"""Quality of an image-to-image generator on the task's held-out whole photos.

Protocol (fixed, so numbers compare across runs):
  * each held-out photo, cut to a multiple of 8 px, gives one (input, ground truth) pair;
    the input's randomness (SR noise, inpainting masks) is seeded by (seed + photo index);
  * the generator runs on the whole photo, in tiles when it is larger than `tile` px
    (overlapping tiles, each tile's border margin discarded), in eval mode;
  * PSNR and SSIM (torchmetrics, Gaussian 11x11 window, sigma 1.5) on RGB (or grey) images
    in [0, 1], averaged over photos; for super-resolution a border of `scale` px is shaved
    first, as is usual;
  * FID and KID on non-overlapping patches of the extractor's size (the shipped `photos`
    extractor: 32x32 RGB), outputs against ground truth (unpaired: against domain-B crops).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from kdgan.data.images import to_float
from kdgan.deploy import size_multiple
from kdgan.metrics.quality import fid, kid, real_vs_real


@torch.no_grad()
def run_tiled(generator, x: torch.Tensor, scale: int = 1, tile: int = 128, margin: int = 16,
              multiple: int = 8) -> torch.Tensor:
    """generator(x) for one large input (1, C, H, W), computed tile by tile: each tile is
    `tile` px plus a `margin` of context on every side (reflect-padded at the photo's
    edges), and only its centre is kept. Output scaled by `scale` (super-resolution)."""
    _, _, h, w = x.shape
    if h <= tile and w <= tile:
        return _padded_call(generator, x, multiple) if scale == 1 or multiple > 1 else generator(x)
    out = None
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            t0, l0 = max(0, top - margin), max(0, left - margin)
            t1, l1 = min(h, top + tile + margin), min(w, left + tile + margin)
            y = _padded_call(generator, x[:, :, t0:t1, l0:l1], multiple)
            if out is None:
                out = y.new_zeros(1, y.shape[1], h * scale, w * scale)
            bh, bw = min(tile, h - top), min(tile, w - left)
            ct, cl = (top - t0) * scale, (left - l0) * scale
            out[:, :, top * scale : (top + bh) * scale, left * scale : (left + bw) * scale] = \
                y[:, :, ct : ct + bh * scale, cl : cl + bw * scale]
    return out


def _padded_call(generator, x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad H and W up to a multiple the network divides, run, cut the padding off."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    y = generator(F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x)
    s = y.shape[-1] // (w + pw)
    return y[:, :, : h * s, : w * s]


def patches(images: torch.Tensor, size: int) -> torch.Tensor:
    """Non-overlapping size x size patches of (N, C, H, W) -> (P, C, size, size); none when
    the images are smaller than a patch."""
    if min(images.shape[-2:]) < size:
        return images.new_zeros(0, images.shape[1], size, size)
    p = images.unfold(2, size, size).unfold(3, size, size)  # N, C, h, w, size, size
    return p.permute(0, 2, 3, 1, 4, 5).reshape(-1, images.shape[1], size, size)


def psnr_ssim(output: torch.Tensor, target: torch.Tensor, shave: int) -> tuple[float, float]:
    """Images in [-1, 1] -> PSNR (dB) and SSIM on [0, 1], `shave` px cut from each border."""
    if shave:
        output, target = output[..., shave:-shave, shave:-shave], target[..., shave:-shave, shave:-shave]
    a, b = (output.float().clamp(-1, 1) + 1) / 2, (target.float() + 1) / 2
    return (float(peak_signal_noise_ratio(a, b, data_range=1.0)),
            float(structural_similarity_index_measure(a, b, data_range=1.0)))


def lpips_distance(network: nn.Module, output: torch.Tensor, target: torch.Tensor) -> float:
    a, b = output.float().clamp(-1, 1), target.float()
    if a.shape[1] == 1:
        a, b = a.repeat(1, 3, 1, 1), b.repeat(1, 3, 1, 1)
    return float(network.eval()(a, b).mean())


@torch.no_grad()
def evaluate_image_task(generator, task, classifier=None, metrics=("psnr", "ssim", "fid", "kid"), seed: int = 0,
                        tile: int = 128, lpips: nn.Module | None = None) -> dict:
    """Per held-out photo and averaged: PSNR/SSIM against ground truth, LPIPS (with the given
    network: images in [-1, 1], grey repeated to RGB, lower is closer); FID/KID on patches."""
    generator.eval()
    multiple = size_multiple(generator)
    scale = getattr(task, "scale", 1)
    per_photo, fake_patches, real_patches = [], [], []
    for k, photo in enumerate(task.held_out):
        inputs, target = task.photo_example(photo, seed + k)
        output = run_tiled(generator, inputs, scale, tile, multiple=multiple).float().cpu()
        entry = {"photo": photo.name, "size": list(output.shape[-2:])}
        if target is not None:
            entry["psnr"], entry["ssim"] = psnr_ssim(output, target, shave=scale if scale > 1 else 0)
            if lpips is not None:
                entry["lpips"] = lpips_distance(lpips, output, target)
            real_patches.append(target)
        fake_patches.append(output)
        per_photo.append(entry)
    result = {"photos": per_photo, "seed": seed, "tile": tile}
    if task.has_ground_truth:
        for m in ("psnr", "ssim", "lpips"):
            if m in metrics and m in per_photo[0]:
                result[m] = sum(e[m] for e in per_photo) / len(per_photo)
    wanted = [m for m in ("fid", "kid") if m in metrics]
    if wanted and classifier is not None:
        size = classifier.spec.resolution
        fake = torch.cat([patches(x, size) for x in fake_patches])
        if task.has_ground_truth:
            real = torch.cat([patches(x, size) for x in real_patches])
        else:  # unpaired: real domain-B crops, cut the same way
            real = patches(to_float(task.dataset.images[:512]), size)
        feats = lambda x: torch.cat([classifier.features_and_logits(c)[0] for c in x.split(256)])  # noqa: E731
        result["patches"] = {"real": len(real), "fake": len(fake), "size": size}
        if min(len(real), len(fake)) < 2:
            result["patches"]["skipped"] = f"FID/KID need at least 2 patches of {size}px; the photos are too small"
            return result
        f_real, f_fake = feats(real), feats(fake)
        if "fid" in wanted:
            result["fid"] = fid(f_real, f_fake)
        if "kid" in wanted:
            result["kid"], result["kid_std"] = kid(f_real, f_fake, seed)
        if len(f_real) >= 4:
            result["real_vs_real"] = real_vs_real(f_real, wanted, seed)
    return result

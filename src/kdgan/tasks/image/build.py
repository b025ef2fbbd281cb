"""Build the image task a config names: a dataset, or photos -> crop pool -> task."""

from __future__ import annotations

import torch

from kdgan.data import load_dataset
from kdgan.data.degrade import canny_edges
from kdgan.tasks.image.generation import ImageGeneration
from kdgan.tasks.image.i2i import FromCondition, ImageToImageTask, Inpainting, SuperResolution, Unpaired
from kdgan.data.photos import (Photo, held_out_split, load_embedded, load_folder, load_paired, random_crops,
                               read_folder)
from kdgan.errors import UserError


def load_photos(cfg) -> tuple[list[Photo], list[Photo]]:
    d, t = cfg.data, cfg.task
    if d.name == "photos":
        return load_embedded(d.channels, t.max_side)
    if d.path is None:
        raise UserError("data.path: a folder of photos is needed for data.name folder")
    return load_folder(d.path, d.channels, t.max_side, d.reading)


def with_edges(photos: list[Photo], sigma: float) -> list[Photo]:
    """Each photo with its Canny edge map as one more channel (computed on the whole photo)."""
    return [Photo(p.name, torch.cat([p.pixels, canny_edges(p.pixels, sigma)])) for p in photos]


def image_task(cfg) -> ImageToImageTask:
    d, t = cfg.data, cfg.task
    crops = lambda photos, seed: random_crops(photos, t.crops, d.resolution, seed)  # noqa: E731
    if t.name == "paired":
        train, held = load_paired(d.path, d.channels, t.input_channels, t.max_side)
        if not held:
            raise UserError(f"data.path: {d.path} needs at least two image pairs (one is held out for evaluation)")
        return FromCondition(crops(train, cfg.seed), held, d.channels, t.input_channels)
    if t.name == "unpaired":
        return unpaired_task(cfg)
    train, held = load_photos(cfg)
    if not held:
        raise UserError(f"data.path: {d.path} needs at least two images (one is held out for evaluation)")
    if t.name == "super_resolution":
        if d.resolution % t.scale:
            raise UserError(f"data.resolution: {d.resolution}px crops do not divide by task.scale {t.scale}")
        g = t.degradation
        return SuperResolution(crops(train, cfg.seed), held, d.channels, t.scale, g.kernel, g.blur_sigma, g.noise_sigma)
    if t.name == "inpainting":
        return Inpainting(crops(train, cfg.seed), held, d.channels, t.mask)
    if t.name == "edges":
        return FromCondition(crops(with_edges(train, t.edge_sigma), cfg.seed), with_edges(held, t.edge_sigma),
                             d.channels, 1)
    raise AssertionError(t.name)


def unpaired_task(cfg) -> Unpaired:
    """A folder's A/ and B/ domains; on the embedded photos, edge maps (A) and photos (B)
    cut from different places, so that no input has its ground truth; on the embedded glyphs,
    two font styles (task.domains)."""
    d, t = cfg.data, cfg.task
    if d.name == "glyphs":
        from kdgan.tasks.image.glyph_styles import GlyphStyles

        return GlyphStyles(t.domains, d.resolution)
    if d.name == "photos":
        if t.input_channels != 1:
            raise UserError("task.input_channels: unpaired on the embedded photos maps edge maps (1 channel); set 1")
        train, held = load_photos(cfg)
        edge = lambda photos: [Photo(p.name, p.pixels[-1:]) for p in with_edges(photos, t.edge_sigma)]  # noqa: E731
        pool_b = random_crops(train, t.crops, d.resolution, cfg.seed)
        return Unpaired(pool_b, random_crops(edge(train), t.crops, d.resolution, cfg.seed + 1), edge(held),
                        d.channels, 1)

    def domain(side: str, channels: int) -> list[Photo]:
        return read_folder(d.path / side, channels, t.max_side, d.reading, f"data.path ({side}/)")

    train_a, held_a = held_out_split(domain("A", t.input_channels))
    pool_b = random_crops(domain("B", d.channels), t.crops, d.resolution, cfg.seed)
    return Unpaired(pool_b, random_crops(train_a, t.crops, d.resolution, cfg.seed + 1), held_a or train_a[-1:],
                    d.channels, t.input_channels)


def generation_task(cfg) -> ImageGeneration:
    """Generation from latent codes over a dataset (the embedded photos: a pool of crops,
    drawn as the image-to-image tasks draw theirs)."""
    if cfg.data.name == "photos":
        dataset = random_crops(load_photos(cfg)[0], cfg.task.crops, cfg.data.resolution, cfg.seed)
    else:
        dataset = load_dataset(cfg.data.name, cfg.data.path, cfg.data.resolution, cfg.data.channels,
                               cfg.data.reading)
    return ImageGeneration(dataset, cfg.model.latent_dim, cfg.data.conditional)

"""Datasets that ship with kdgan: rendered font glyphs and scikit-learn's handwritten digits."""

from __future__ import annotations

from importlib import resources

import numpy as np
import torch

from kdgan.data.images import ImageDataset, fit_array


def load_glyphs(resolution: int, channels: int) -> ImageDataset:
    """0-9, A-Z, a-z from 152 free font faces (see GLYPHS_FONTS.md): 9,424 images, 62 classes.

    Labels are the character class; `font_ids` (which face drew it) and `font_names` (each
    face's name) are kept as attributes for analyses and tasks that need them.
    """
    with resources.files("kdgan.data").joinpath("glyphs.npz").open("rb") as f:
        arrays = np.load(f)
        images, labels = arrays["images"], arrays["labels"]
        classes, font_ids = [str(c) for c in arrays["classes"]], arrays["font_ids"]
        font_names = [str(n) for n in arrays["font_names"]]
    ds = ImageDataset(fit_array(images, resolution, channels), torch.from_numpy(labels), classes, "glyphs")
    ds.font_ids, ds.font_names = torch.from_numpy(font_ids), font_names
    return ds


def load_digits(resolution: int, channels: int) -> ImageDataset:
    """scikit-learn's 1,797 real handwritten digits (8x8, 17 grey levels), resized."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    return ImageDataset(fit_array(images, resolution, channels), labels, [str(i) for i in range(10)], "digits")

"""The image tasks' config sections: `data`, `task`, `model.generator`, `model.discriminator`.

Each is the schema its registered task or network family validates the YAML section with
(see kdgan.tasks.image), so a section only has the keys that mean something for images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from kdgan.data import DATASETS, Reading
from kdgan.nets.specs import DISCRIMINATOR_SPECS, GENERATOR_SPECS
from kdgan.schema import Strict, choice

IMAGE_GENERATORS, IMAGE_DISCRIMINATORS = tuple(GENERATOR_SPECS), tuple(DISCRIMINATOR_SPECS)


class DataConfig(Strict):
    name: str = "glyphs"
    path: Path | None = None  # for `folder` and `npz`
    resolution: int = 32
    channels: int = Field(1, ge=1, le=3)
    conditional: bool = False  # feed class labels to G and D
    # folder, channels 3: a grey image is an error naming it, unless this replicates its channel
    grey_to_rgb: bool = False
    # folders: transparent pixels are composited over this colour (a name or #rrggbb)
    background: str = "white"

    @field_validator("background", mode="before")
    @classmethod
    def _background(cls, v) -> str:
        from PIL import ImageColor

        if v is None:  # `background: #fff` unquoted: YAML reads the rest of the line as a comment
            raise ValueError("give a colour name or a quoted '#rrggbb' (YAML reads a bare # as a comment)")
        try:
            ImageColor.getrgb(v)
        except ValueError:
            raise ValueError(f"unknown colour {v!r}; give a colour name (white, black, ...) or #rrggbb") from None
        return v

    @property
    def reading(self) -> Reading:
        from PIL import ImageColor

        return Reading(self.grey_to_rgb, ImageColor.getrgb(self.background)[:3])

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return choice(v, DATASETS)

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v: int) -> int:
        if v not in (8, 16, 32, 64, 128, 256):
            raise ValueError(f"must be one of 8, 16, 32, 64, 128, 256, got {v}")
        return v

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: int) -> int:
        if v not in (1, 3):
            raise ValueError(f"must be 1 (grey) or 3 (RGB), got {v}")
        return v


class GeneratorConfig(Strict):
    arch: str = "dcgan"
    width: int = Field(64, ge=1)
    spectral_norm: bool = False
    # image-to-image: residual blocks / U-Net levels; dcgan-subpixel: hidden 3x3 convs in its
    # sub-pixel head; 0 = the arch's default (dcgan and resnet have no such depth)
    blocks: int = Field(0, ge=0)
    # dcgan-subpixel: channels of a nonlinear branch added to its linear sub-pixel head (0: none)
    head_residual: int = Field(0, ge=0)

    @field_validator("arch")
    @classmethod
    def _arch(cls, v: str) -> str:
        return choice(v, IMAGE_GENERATORS)


class DiscriminatorConfig(Strict):
    arch: str = "dcgan"
    width: int = Field(64, ge=1)
    spectral_norm: bool = False
    batch_norm: bool = True
    layers: int = Field(3, ge=1, le=6)  # patchgan: stride-2 layers (3: pix2pix's 70x70 patches)

    @field_validator("arch")
    @classmethod
    def _arch(cls, v: str) -> str:
        return choice(v, IMAGE_DISCRIMINATORS)


class DegradationConfig(Strict):
    """Super-resolution input = noise(downscale(blur(HR))); see kdgan.data.degrade.downscale."""

    kernel: Literal["bicubic", "bilinear", "area"] = "bicubic"
    blur_sigma: float = Field(0.0, ge=0)  # Gaussian blur before downscaling, in HR pixels; 0: none
    noise_sigma: float = Field(0.0, ge=0)  # Gaussian noise after, in grey levels of 255; 0: none


class TaskConfig(Strict):
    """What the generator maps from: a latent code (generation) or an image (the others).
    Image-to-image tasks train on `crops` random data.resolution-px crops of whole photos
    (data.name photos, or a folder) and are evaluated on held-out whole photos."""

    name: Literal["generation", "super_resolution", "inpainting", "edges", "paired", "unpaired"] = "generation"
    scale: Literal[2, 4, 8] = 4  # super_resolution
    degradation: DegradationConfig = DegradationConfig()  # super_resolution
    mask: Literal["rect", "freeform", "mixed"] = "mixed"  # inpainting
    edge_sigma: float = Field(2.0, gt=0)  # edges: Canny's Gaussian sigma
    input_channels: int = Field(3, ge=1, le=3)  # paired / unpaired: channels of the A images
    crops: int = Field(4096, ge=1)
    max_side: int = Field(512, ge=16)  # photos are shrunk to at most this many px on the longer side
    # unpaired on the embedded glyphs (data.name glyphs): the font styles of domains A and B
    domains: tuple[Literal["serif", "sans"], Literal["serif", "sans"]] = ("serif", "sans")

    @field_validator("domains")
    @classmethod
    def _domains(cls, v: tuple[str, str]) -> tuple[str, str]:
        if v[0] == v[1]:
            raise ValueError(f"domains A and B are both {v[0]}; give two styles, e.g. [serif, sans]")
        return v

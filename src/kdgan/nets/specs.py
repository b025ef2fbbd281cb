"""Typed specs of kdgan's image network families, one schema per family (version 2).

Version 1 (kdgan.nets.GeneratorSpec / DiscriminatorSpec) was one flat schema for every
family, whose fields meant different things per family (`scale: 1` meant x4 for the
sub-pixel head; `blocks` counted residual blocks, U-Net levels or hidden head layers).
Checkpoints and pretrained folders written with it are converted on reading (`upgrade_*`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

IMAGE_TO_IMAGE = ("resnet-i2i", "unet", "sr")


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: str
    width: int = Field(ge=1)
    resolution: int  # of the output images (the training crop size for image-to-image)
    channels: int  # of the output images
    spectral_norm: bool = False


class LatentSpec(Spec):
    """dcgan, resnet, dcgan-separable, resnet-separable: z (B, latent_dim) [+ labels] -> images."""

    latent_dim: int
    num_classes: int = 0  # > 0: class-conditional


class SubpixelSpec(LatentSpec):
    """dcgan-subpixel: the last doublings by one sub-pixel convolution."""

    upscale: int = Field(4, ge=2)  # the sub-pixel head's upscaling factor (a power of two up to resolution / 4)
    head_layers: int = Field(0, ge=0)  # hidden 3x3 convs in the head
    head_residual: int = Field(0, ge=0)  # channels of a nonlinear branch beside a linear head


class ImageToImageSpec(Spec):
    in_channels: int = Field(ge=1)  # of the input image


class ResnetI2ISpec(ImageToImageSpec):
    blocks: int = Field(6, ge=1)  # residual blocks at the bottleneck


class UNetSpec(ImageToImageSpec):
    levels: int = Field(4, ge=1)  # down/up-sampling levels


class SRSpec(ImageToImageSpec):
    blocks: int = Field(8, ge=1)  # residual blocks
    scale: Literal[2, 4, 8] = 4  # upscaling factor


class LatentDiscriminatorSpec(Spec):
    """dcgan, resnet: images [+ labels, projection] -> one logit per image."""

    num_classes: int = 0
    batch_norm: bool = True


class PatchSpec(BaseModel):
    """patchgan: a map of logits, one per overlapping patch; resolution-free."""

    model_config = ConfigDict(extra="forbid")
    arch: Literal["patchgan"] = "patchgan"
    width: int = Field(ge=1)
    channels: int
    in_channels: int = 0  # > 0: conditioned on the generator input
    layers: int = Field(3, ge=1)
    spectral_norm: bool = False
    batch_norm: bool = True


GENERATOR_SPECS = {"dcgan": LatentSpec, "resnet": LatentSpec, "dcgan-separable": LatentSpec,
                   "resnet-separable": LatentSpec, "dcgan-subpixel": SubpixelSpec, "resnet-i2i": ResnetI2ISpec,
                   "unet": UNetSpec, "sr": SRSpec}
DISCRIMINATOR_SPECS = {"dcgan": LatentDiscriminatorSpec, "resnet": LatentDiscriminatorSpec, "patchgan": PatchSpec}


def upgrade_generator(flat: dict) -> dict:
    """A version-1 flat generator spec as its family's version-2 fields."""
    arch, blocks = flat["arch"], flat.get("blocks", 0)
    common = {k: flat[k] for k in ("arch", "width", "resolution", "channels", "spectral_norm") if k in flat}
    if arch in IMAGE_TO_IMAGE:
        common["in_channels"] = flat["in_channels"]
        if arch == "resnet-i2i":
            return {**common, "blocks": blocks or 6}
        if arch == "unet":
            return {**common, "levels": blocks or 4}
        return {**common, "blocks": blocks or 8, "scale": flat.get("scale", 4)}
    common.update(latent_dim=flat["latent_dim"], num_classes=flat.get("num_classes", 0))
    if flat.get("in_channels"):  # a latent family given an image input: left for validation to refuse
        common["in_channels"] = flat["in_channels"]
    if arch == "dcgan-subpixel":
        scale = flat.get("scale", 1)
        return {**common, "upscale": 4 if scale == 1 else scale, "head_layers": blocks,
                "head_residual": flat.get("head_residual", 0)}
    return common


def upgrade_discriminator(flat: dict) -> dict:
    """A version-1 flat discriminator spec as its family's version-2 fields."""
    keep = (("arch", "width", "channels", "in_channels", "layers", "spectral_norm", "batch_norm")
            if flat["arch"] == "patchgan" else
            ("arch", "width", "resolution", "channels", "num_classes", "spectral_norm", "batch_norm"))
    return {k: flat[k] for k in keep if k in flat}

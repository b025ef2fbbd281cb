"""Generator and discriminator families, built by name from a spec that is saved with them.

A spec is everything needed to rebuild a network from nothing (diffusers-style): the
checkpoint's JSON carries it, so loading weights never needs the training config.
"""

from __future__ import annotations

from typing import Callable

from pydantic import BaseModel, ConfigDict
from torch import nn

from kdgan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from kdgan.nets.i2i import PatchDiscriminator, ResnetI2IGenerator, SRGenerator, UNetGenerator
from kdgan.nets.resnet import ResNetDiscriminator, ResNetGenerator
from kdgan.nets.separable import SeparableDCGANGenerator, SeparableResNetGenerator
from kdgan.nets.subpixel import SubpixelGenerator


class GeneratorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: str
    width: int
    latent_dim: int
    resolution: int
    channels: int
    num_classes: int = 0
    spectral_norm: bool = False
    # Image-to-image generators (in_channels > 0): their input's channels, the depth
    # (residual blocks; U-Net levels; 0 = the family's default) and the SR upscaling factor
    # (dcgan-subpixel: its sub-pixel head's).
    in_channels: int = 0
    blocks: int = 0
    scale: int = 1
    head_residual: int = 0  # dcgan-subpixel: channels of the nonlinear branch beside its linear head


class DiscriminatorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: str
    width: int
    resolution: int
    channels: int
    num_classes: int = 0
    spectral_norm: bool = False
    batch_norm: bool = True
    in_channels: int = 0  # PatchGAN: channels of the generator input it is conditioned on
    layers: int = 3  # PatchGAN: stride-2 layers (3 = pix2pix's 70x70 receptive field)


GENERATORS: dict[str, Callable[[GeneratorSpec], nn.Module]] = {
    "dcgan": lambda s: DCGANGenerator(s.latent_dim, s.width, s.resolution, s.channels, s.num_classes),
    "resnet": lambda s: ResNetGenerator(
        s.latent_dim, s.width, s.resolution, s.channels, s.num_classes, s.spectral_norm
    ),
    # Mobile students (depthwise-separable convolutions); no spectral norm option.
    "dcgan-separable": lambda s: SeparableDCGANGenerator(s.latent_dim, s.width, s.resolution, s.channels, s.num_classes),
    "resnet-separable": lambda s: SeparableResNetGenerator(s.latent_dim, s.width, s.resolution, s.channels, s.num_classes),
    # CPU-latency students (nets/subpixel.py): linear stem, fewer transposed convs, the last
    # doublings by one sub-pixel convolution of upscaling `scale` (1 = the default, x4).
    "dcgan-subpixel": lambda s: SubpixelGenerator(s.latent_dim, s.width, s.resolution, s.channels, s.num_classes,
                                                  4 if s.scale == 1 else s.scale, s.blocks, s.head_residual),
    # Image-to-image (see nets/i2i.py): the input is an image, not a latent code.
    "resnet-i2i": lambda s: ResnetI2IGenerator(s.in_channels, s.channels, s.width, s.blocks or 6),
    "unet": lambda s: UNetGenerator(s.in_channels, s.channels, s.width, s.blocks or 4),
    "sr": lambda s: SRGenerator(s.in_channels, s.channels, s.width, s.blocks or 8, s.scale),
}
IMAGE_TO_IMAGE = ("resnet-i2i", "unet", "sr")

DISCRIMINATORS: dict[str, Callable[[DiscriminatorSpec], nn.Module]] = {
    "dcgan": lambda s: DCGANDiscriminator(
        s.width, s.resolution, s.channels, s.num_classes, s.spectral_norm, s.batch_norm
    ),
    "resnet": lambda s: ResNetDiscriminator(
        s.width, s.resolution, s.channels, s.num_classes, s.spectral_norm, s.batch_norm
    ),
    "patchgan": lambda s: PatchDiscriminator(s.channels, s.width, s.in_channels, s.layers, s.spectral_norm,
                                             s.batch_norm),
}


def build_generator(spec: GeneratorSpec) -> nn.Module:
    if (spec.arch in IMAGE_TO_IMAGE) != (spec.in_channels > 0):
        raise ValueError(f"generator {spec.arch!r} with in_channels={spec.in_channels}: image-to-image "
                         f"generators ({', '.join(IMAGE_TO_IMAGE)}) take an image, the others a latent code")
    return GENERATORS[spec.arch](spec)


def build_discriminator(spec: DiscriminatorSpec) -> nn.Module:
    return DISCRIMINATORS[spec.arch](spec)


__all__ = [
    "GeneratorSpec",
    "DiscriminatorSpec",
    "GENERATORS",
    "IMAGE_TO_IMAGE",
    "DISCRIMINATORS",
    "build_generator",
    "build_discriminator",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "ResNetGenerator",
    "ResNetDiscriminator",
    "SeparableDCGANGenerator",
    "SeparableResNetGenerator",
    "SubpixelGenerator",
]

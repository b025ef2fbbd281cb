"""kdgan's image networks; they are registered as families by kdgan.tasks.image.families,
each with its typed spec (kdgan.nets.specs), and built by name with build_generator /
build_discriminator.

A spec is everything needed to rebuild a network from nothing (diffusers-style): the
checkpoint's JSON carries it, so loading weights never needs the training config.
GeneratorSpec and DiscriminatorSpec below are the version-1 flat schema, one for every image
family, which early checkpoints and the shipped folders use: build_generator and every reader
accept them and convert them to the family's spec.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from kdgan.families import build_discriminator, build_generator
from kdgan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
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


__all__ = [
    "GeneratorSpec",
    "DiscriminatorSpec",
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

"""Generator and discriminator families, built by name from a spec that is saved with them.

A spec is everything needed to rebuild a network from nothing (diffusers-style): the
checkpoint's JSON carries it, so loading weights never needs the training config.
"""

from __future__ import annotations

from typing import Callable

from pydantic import BaseModel, ConfigDict
from torch import nn

from kdgan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from kdgan.nets.resnet import ResNetDiscriminator, ResNetGenerator
from kdgan.nets.separable import SeparableDCGANGenerator, SeparableResNetGenerator


class GeneratorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: str
    width: int
    latent_dim: int
    resolution: int
    channels: int
    num_classes: int = 0
    spectral_norm: bool = False


class DiscriminatorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: str
    width: int
    resolution: int
    channels: int
    num_classes: int = 0
    spectral_norm: bool = False
    batch_norm: bool = True


GENERATORS: dict[str, Callable[[GeneratorSpec], nn.Module]] = {
    "dcgan": lambda s: DCGANGenerator(s.latent_dim, s.width, s.resolution, s.channels, s.num_classes),
    "resnet": lambda s: ResNetGenerator(
        s.latent_dim, s.width, s.resolution, s.channels, s.num_classes, s.spectral_norm
    ),
    # Mobile students (depthwise-separable convolutions); no spectral norm option.
    "dcgan-separable": lambda s: SeparableDCGANGenerator(s.latent_dim, s.width, s.resolution, s.channels, s.num_classes),
    "resnet-separable": lambda s: SeparableResNetGenerator(s.latent_dim, s.width, s.resolution, s.channels, s.num_classes),
}

DISCRIMINATORS: dict[str, Callable[[DiscriminatorSpec], nn.Module]] = {
    "dcgan": lambda s: DCGANDiscriminator(
        s.width, s.resolution, s.channels, s.num_classes, s.spectral_norm, s.batch_norm
    ),
    "resnet": lambda s: ResNetDiscriminator(
        s.width, s.resolution, s.channels, s.num_classes, s.spectral_norm, s.batch_norm
    ),
}


def build_generator(spec: GeneratorSpec) -> nn.Module:
    return GENERATORS[spec.arch](spec)


def build_discriminator(spec: DiscriminatorSpec) -> nn.Module:
    return DISCRIMINATORS[spec.arch](spec)


__all__ = [
    "GeneratorSpec",
    "DiscriminatorSpec",
    "GENERATORS",
    "DISCRIMINATORS",
    "build_generator",
    "build_discriminator",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "ResNetGenerator",
    "ResNetDiscriminator",
    "SeparableDCGANGenerator",
    "SeparableResNetGenerator",
]

"""kdgan's image networks as registered families (kdgan.families.Family), each with its own
typed spec (kdgan.nets.specs, version 2); version-1 flat specs are converted on reading."""

from __future__ import annotations

from kdgan.distill.students import prune_init
from kdgan.families import Family
from kdgan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from kdgan.nets.i2i import PatchDiscriminator, ResnetI2IGenerator, SRGenerator, UNetGenerator
from kdgan.nets.resnet import ResNetDiscriminator, ResNetGenerator
from kdgan.nets.separable import SeparableDCGANGenerator, SeparableResNetGenerator
from kdgan.nets.specs import DISCRIMINATOR_SPECS, GENERATOR_SPECS, upgrade_discriminator, upgrade_generator
from kdgan.nets.subpixel import SubpixelGenerator
from kdgan.registry import DISCRIMINATORS, GENERATORS
from kdgan.tasks.image.settings import DiscriminatorConfig, GeneratorConfig

GENERATOR_BUILDERS = {
    "dcgan": lambda s: DCGANGenerator(s.latent_dim, s.width, s.resolution, s.channels, s.num_classes),
    "resnet": lambda s: ResNetGenerator(s.latent_dim, s.width, s.resolution, s.channels, s.num_classes,
                                        s.spectral_norm),
    # Mobile students (depthwise-separable convolutions); no spectral norm option.
    "dcgan-separable": lambda s: SeparableDCGANGenerator(s.latent_dim, s.width, s.resolution, s.channels,
                                                         s.num_classes),
    "resnet-separable": lambda s: SeparableResNetGenerator(s.latent_dim, s.width, s.resolution, s.channels,
                                                           s.num_classes),
    # CPU-latency students (nets/subpixel.py): linear stem, fewer transposed convs, the last
    # doublings by one sub-pixel convolution.
    "dcgan-subpixel": lambda s: SubpixelGenerator(s.latent_dim, s.width, s.resolution, s.channels, s.num_classes,
                                                  s.upscale, s.head_layers, s.head_residual),
    # Image-to-image (see nets/i2i.py): the input is an image, not a latent code.
    "resnet-i2i": lambda s: ResnetI2IGenerator(s.in_channels, s.channels, s.width, s.blocks),
    "unet": lambda s: UNetGenerator(s.in_channels, s.channels, s.width, s.levels),
    "sr": lambda s: SRGenerator(s.in_channels, s.channels, s.width, s.blocks, s.scale),
}
for _name, _build in GENERATOR_BUILDERS.items():
    GENERATORS.register(_name, Family(build=_build, spec=GENERATOR_SPECS[_name], config=GeneratorConfig,
                                      prune=prune_init, version=2, modality="image",
                                      upgrade=lambda fields, version: upgrade_generator(fields)))

DISCRIMINATOR_BUILDERS = {
    "dcgan": lambda s: DCGANDiscriminator(s.width, s.resolution, s.channels, s.num_classes, s.spectral_norm,
                                          s.batch_norm),
    "resnet": lambda s: ResNetDiscriminator(s.width, s.resolution, s.channels, s.num_classes, s.spectral_norm,
                                            s.batch_norm),
    "patchgan": lambda s: PatchDiscriminator(s.channels, s.width, s.in_channels, s.layers, s.spectral_norm,
                                             s.batch_norm),
}
for _name, _build in DISCRIMINATOR_BUILDERS.items():
    DISCRIMINATORS.register(_name, Family(build=_build, spec=DISCRIMINATOR_SPECS[_name], config=DiscriminatorConfig,
                                          version=2, upgrade=lambda fields, version: upgrade_discriminator(fields),
                                          modality="image"))

"""kdgan's image networks as registered families (kdgan.families.Family).

Every image family shares one spec schema (kdgan.nets.GeneratorSpec / DiscriminatorSpec)
and one config section schema (tasks.image.settings), as the first checkpoints saved them.
"""

from __future__ import annotations

from kdgan.distill.students import prune_init
from kdgan.families import Family
from kdgan.nets import DiscriminatorSpec, GeneratorSpec
from kdgan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from kdgan.nets.i2i import PatchDiscriminator, ResnetI2IGenerator, SRGenerator, UNetGenerator
from kdgan.nets.resnet import ResNetDiscriminator, ResNetGenerator
from kdgan.nets.separable import SeparableDCGANGenerator, SeparableResNetGenerator
from kdgan.nets.subpixel import SubpixelGenerator
from kdgan.registry import DISCRIMINATORS, GENERATORS
from kdgan.tasks.image.settings import IMAGE_TO_IMAGE, DiscriminatorConfig, GeneratorConfig


def _generator(build):
    def checked(s: GeneratorSpec):
        if (s.arch in IMAGE_TO_IMAGE) != (s.in_channels > 0):
            raise ValueError(f"generator {s.arch!r} with in_channels={s.in_channels}: image-to-image "
                             f"generators ({', '.join(IMAGE_TO_IMAGE)}) take an image, the others a latent code")
        return build(s)

    return Family(build=checked, spec=GeneratorSpec, config=GeneratorConfig, prune=prune_init)


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
    # doublings by one sub-pixel convolution of upscaling `scale` (1 = the default, x4).
    "dcgan-subpixel": lambda s: SubpixelGenerator(s.latent_dim, s.width, s.resolution, s.channels, s.num_classes,
                                                  4 if s.scale == 1 else s.scale, s.blocks, s.head_residual),
    # Image-to-image (see nets/i2i.py): the input is an image, not a latent code.
    "resnet-i2i": lambda s: ResnetI2IGenerator(s.in_channels, s.channels, s.width, s.blocks or 6),
    "unet": lambda s: UNetGenerator(s.in_channels, s.channels, s.width, s.blocks or 4),
    "sr": lambda s: SRGenerator(s.in_channels, s.channels, s.width, s.blocks or 8, s.scale),
}
for _name, _build in GENERATOR_BUILDERS.items():
    GENERATORS.register(_name, _generator(_build))

DISCRIMINATOR_BUILDERS = {
    "dcgan": lambda s: DCGANDiscriminator(s.width, s.resolution, s.channels, s.num_classes, s.spectral_norm,
                                          s.batch_norm),
    "resnet": lambda s: ResNetDiscriminator(s.width, s.resolution, s.channels, s.num_classes, s.spectral_norm,
                                            s.batch_norm),
    "patchgan": lambda s: PatchDiscriminator(s.channels, s.width, s.in_channels, s.layers, s.spectral_norm,
                                             s.batch_norm),
}
for _name, _build in DISCRIMINATOR_BUILDERS.items():
    DISCRIMINATORS.register(_name, Family(build=_build, spec=DiscriminatorSpec, config=DiscriminatorConfig))

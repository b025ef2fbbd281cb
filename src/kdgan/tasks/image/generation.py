"""Image generation from latent codes (task.name: generation)."""

from __future__ import annotations

import torch

from kdgan.data.images import ImageDataset, to_float
from kdgan.data.sampling import StepBatch
from kdgan.errors import UserError
from kdgan.nets.specs import LatentDiscriminatorSpec, LatentSpec, SubpixelSpec
from kdgan.tasks.image.task import ImageTask


class ImageGeneration(ImageTask):
    """Image generation from a latent code z ~ N(0, I), optionally class-conditional.

    Conditional: the real batch's labels are the generator's class inputs and the
    discriminator's labels for both real and fake images, so fakes follow the data's class
    frequencies.
    """

    default_metrics = ("fid", "kid", "is", "pr", "c2st")
    metric_names = default_metrics

    def __init__(self, dataset: ImageDataset, latent_dim: int, conditional: bool):
        if conditional and dataset.num_classes < 2:
            raise UserError(
                f"data.conditional: dataset {dataset.name!r} has no class labels "
                "(for a folder, put each class's images in its own sub-folder)"
            )
        self.dataset, self.latent_dim, self.conditional = dataset, latent_dim, conditional

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes if self.conditional else 0

    def batch(self, indices: torch.Tensor, noise: torch.Generator) -> StepBatch:
        real = to_float(self.dataset.images[indices])
        z = torch.randn(len(indices), self.latent_dim, generator=noise)
        if not self.conditional:
            return StepBatch(real, (z,), ())
        y = self.dataset.labels[indices]
        return StepBatch(real, (z, y), (y,))

    def fixed_batch(self, n: int, seed: int) -> StepBatch:
        inputs = self.fixed_inputs(n, seed)
        real = to_float(self.dataset.images[: min(n, len(self.dataset))])
        return StepBatch(real, inputs, inputs[1:])

    def fixed_inputs(self, n: int, seed: int) -> tuple[torch.Tensor, ...]:
        """The same inputs at every sample grid, so grids show progress, not noise.
        Conditional grids cycle through the classes along each row."""
        z = torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))
        if not self.conditional:
            return (z,)
        return (z, torch.arange(n) % self.num_classes)

    def network_specs(self, cfg) -> tuple[LatentSpec, LatentDiscriminatorSpec]:
        g, d = cfg.model.generator, cfg.model.discriminator
        common = dict(resolution=cfg.data.resolution, channels=cfg.data.channels, num_classes=self.num_classes)
        latent = dict(arch=g.arch, width=g.width, latent_dim=cfg.model.latent_dim, spectral_norm=g.spectral_norm)
        g_spec = (SubpixelSpec(**latent, head_layers=g.blocks, head_residual=g.head_residual, **common)
                  if g.arch == "dcgan-subpixel" else LatentSpec(**latent, **common))
        return g_spec, LatentDiscriminatorSpec(arch=d.arch, width=d.width, spectral_norm=d.spectral_norm,
                                               batch_norm=d.batch_norm, **common)

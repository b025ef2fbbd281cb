"""Image-to-image tasks: what one step consumes when the generator's input is an image.

Each task draws training pairs from a pool of random crops (data/photos.py) and makes the
generator's input from the target crop on the fly (the SR degradation, an inpainting mask)
or cuts it from the same place (an edge map, a paired A image):

    real      (B, C, R, R)    the target crop: ground truth, and what D sees as real
    g_inputs  (input,)        SR: (B, C, R/s, R/s); inpainting: masked image + mask
                              (B, C+1, R, R); edges: (B, 1, R, R); paired: (B, C_A, R, R)
    d_inputs  (input,)        the PatchGAN judges (output, input) pairs, as in pix2pix

`unpaired` (CycleGAN's setting) has no ground truth: inputs are A crops, `real` are B crops
from other places, and D judges outputs alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdgan.data.degrade import downscale, make_masks
from kdgan.data.images import ImageDataset, to_float
from kdgan.data.photos import Photo, cut_to_multiple
from kdgan.data.sampling import StepBatch
from kdgan.nets.specs import GENERATOR_SPECS, ImageToImageSpec, PatchSpec
from kdgan.tasks.image.task import ImageTask


class ImageToImageTask(ImageTask):
    num_classes = 0
    has_ground_truth = True
    conditional_discriminator = True
    comparison_columns = 4
    default_metrics = ("psnr", "ssim", "fid", "kid")
    metric_names = ("psnr", "ssim", "lpips", "fid", "kid")

    def __init__(self, pool: ImageDataset, held_out: list[Photo], channels: int):
        self.dataset, self.held_out, self.channels = pool, held_out, channels
        self.resolution = pool.resolution

    # -- what subclasses define -------------------------------------------------------------

    @property
    def in_channels(self) -> int:
        raise NotImplementedError

    def make_input(self, target: torch.Tensor, condition: torch.Tensor, noise: torch.Generator) -> torch.Tensor:
        """The generator's input for target images (B, C, H, W) and the pool's extra channels."""
        raise NotImplementedError

    def view_input(self, inputs: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The input drawn as a C-channel image of the output's size, for sample grids."""
        x = inputs[:, : self.channels]
        if x.shape[1] < self.channels:
            x = x.expand(-1, self.channels, -1, -1)
        return F.interpolate(x, size=size, mode="nearest") if x.shape[-2:] != size else x

    # -- the interface the training loop and the evaluation use --------------------------------

    def split(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = to_float(pixels)
        return x[:, : self.channels], x[:, self.channels :]

    def batch(self, indices: torch.Tensor, noise: torch.Generator) -> StepBatch:
        target, condition = self.split(self.dataset.images[indices])
        inputs = self.make_input(target, condition, noise)
        return StepBatch(target, (inputs,), (inputs,) if self.conditional_discriminator else ())

    def fixed_batch(self, n: int, seed: int) -> StepBatch:
        """The same crops (spread over the pool) and inputs at every sample grid."""
        gen = torch.Generator().manual_seed(seed)
        indices = torch.linspace(0, len(self.dataset) - 1, n).long()
        return self.batch(indices, gen)

    def fixed_inputs(self, n: int, seed: int) -> tuple[torch.Tensor, ...]:
        return self.fixed_batch(n, seed).g_inputs

    def panels(self, batch: StepBatch, outputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Sample-grid columns: input | outputs (teacher, student) | ground truth."""
        size = tuple(outputs[-1].shape[-2:])
        right = [batch.real.to(outputs[-1].device)] if self.has_ground_truth else []
        return [self.view_input(batch.g_inputs[0].to(outputs[-1].device), size), *outputs, *right]

    def panel_names(self, output_names: list[str]) -> list[str]:
        """Labels of `panels`' columns."""
        return ["input", *output_names, *(["ground truth"] if self.has_ground_truth else [])]

    def network_specs(self, cfg) -> tuple[ImageToImageSpec, PatchSpec]:
        g, d = cfg.model.generator, cfg.model.discriminator
        depth = {}  # model.generator.blocks: 0 keeps the family's default depth
        if g.blocks:
            depth = {"levels": g.blocks} if g.arch == "unet" else {"blocks": g.blocks}
        if g.arch == "sr":
            depth["scale"] = cfg.task.scale
        g_spec = GENERATOR_SPECS[g.arch](arch=g.arch, width=g.width, resolution=cfg.data.resolution,
                                         channels=cfg.data.channels, spectral_norm=g.spectral_norm,
                                         in_channels=self.in_channels, **depth)
        return g_spec, PatchSpec(width=d.width, channels=cfg.data.channels, spectral_norm=d.spectral_norm,
                                 batch_norm=d.batch_norm, layers=d.layers,
                                 in_channels=self.in_channels if self.conditional_discriminator else 0)

    def photo_example(self, photo: Photo, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(input (1, ...), target (1, C, H, W)) for a whole held-out photo, its size cut down to
        a multiple of 8 so every degradation and network divides it. The input's randomness
        (noise, masks) is fixed by the seed and the photo's position in the held-out list."""
        target, condition = self.split(cut_to_multiple(photo.pixels[None]))
        gen = torch.Generator().manual_seed(seed)
        return self.make_input(target, condition, gen), target


class SuperResolution(ImageToImageTask):
    def __init__(self, pool, held_out, channels, scale: int, kernel: str, blur_sigma: float, noise_sigma: float):
        super().__init__(pool, held_out, channels)
        self.scale, self.kernel, self.blur_sigma, self.noise_sigma = scale, kernel, blur_sigma, noise_sigma

    @property
    def in_channels(self) -> int:
        return self.channels

    def make_input(self, target, condition, noise):
        return downscale(target, self.scale, self.kernel, self.blur_sigma, self.noise_sigma, noise)


class Inpainting(ImageToImageTask):
    def __init__(self, pool, held_out, channels, mask: str):
        super().__init__(pool, held_out, channels)
        self.mask = mask

    @property
    def in_channels(self) -> int:
        return self.channels + 1

    def make_input(self, target, condition, noise):
        holes = make_masks(self.mask, target.shape[0], target.shape[2], target.shape[3], noise).to(target)
        # Holes are filled with 0 (mid-grey) and the mask is given as +1 / -1.
        return torch.cat([target * (1 - holes), holes * 2 - 1], 1)


class FromCondition(ImageToImageTask):
    """Edges -> image and paired A -> B: the input is the pool's extra channels."""

    def __init__(self, pool, held_out, channels, condition_channels: int):
        super().__init__(pool, held_out, channels)
        self.condition_channels = condition_channels

    @property
    def in_channels(self) -> int:
        return self.condition_channels

    def make_input(self, target, condition, noise):
        return condition


class Unpaired(ImageToImageTask):
    """Inputs are crops of domain A, real images crops of domain B from unrelated places."""

    has_ground_truth = False
    conditional_discriminator = False
    cycle_domains = True

    def __init__(self, pool_b: ImageDataset, pool_a: ImageDataset, held_out_a: list[Photo], channels: int,
                 a_channels: int):
        super().__init__(pool_b, held_out_a, channels)
        self.pool_a, self.a_channels = pool_a, a_channels

    @property
    def in_channels(self) -> int:
        return self.a_channels

    def batch(self, indices, noise):
        real = to_float(self.dataset.images[indices])
        a = torch.randint(len(self.pool_a), (len(indices),), generator=noise)
        return StepBatch(real, (to_float(self.pool_a.images[a]),), ())

    def unpaired_batch(self, indices, noise):
        batch = self.batch(indices, noise)
        return batch.g_inputs[0], batch.real

    def photo_example(self, photo, seed):
        return to_float(cut_to_multiple(photo.pixels[None])), None

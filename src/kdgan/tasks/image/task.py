"""What the image tasks share: config schemas, cross-section rules, sample grids, evaluation
and PNG output. ImageGeneration (latent codes) and the image-to-image tasks subclass it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import ClassVar

import torch
from PIL import Image

from kdgan.data.sampling import StepBatch
from kdgan.tasks.base import Task
from kdgan.nets.specs import IMAGE_TO_IMAGE
from kdgan.tasks.image.settings import DataConfig, TaskConfig


class ImageTask(Task):
    settings = TaskConfig
    data_settings = DataConfig
    default_generator = default_discriminator = "dcgan"
    modality = "image"
    metric_names = ("fid", "kid", "is", "pr", "c2st", "psnr", "ssim", "lpips")
    grid_columns: ClassVar[int | None] = None  # images per row in sample grids (None: square)

    @classmethod
    def from_config(cls, cfg) -> "ImageTask":
        from kdgan.tasks.image.build import generation_task, image_task

        return generation_task(cfg) if cfg.task.name == "generation" else image_task(cfg)

    @classmethod
    def check(cls, cfg) -> None:
        disc, gen, loss = cfg.model.discriminator, cfg.model.generator, cfg.train.loss
        if loss.name == "wgan-gp" and disc.batch_norm:
            raise ValueError("model.discriminator.batch_norm: must be false with wgan-gp "
                             "(the gradient penalty is per sample; BatchNorm mixes samples)")
        check_task(cfg)
        if disc.arch == "resnet" and disc.batch_norm:
            raise ValueError("model.discriminator.batch_norm: the resnet discriminator has none; set false")
        if gen.head_residual and (gen.arch != "dcgan-subpixel" or gen.blocks):
            raise ValueError("model.generator.head_residual: only a dcgan-subpixel generator without hidden head "
                             "layers (blocks: 0) has one; set 0")

    # -- data -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def class_names(self) -> list[str]:
        return self.dataset.class_names if self.num_classes else []

    def panels(self, batch: StepBatch, outputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Sample-grid columns for the outputs (teacher, student) on the same inputs."""
        return outputs

    def panel_names(self, output_names: list[str]) -> list[str]:
        """Labels of `panels`' columns."""
        return output_names

    # -- what the run shows ------------------------------------------------------------------
    def save_samples(self, path: Path, batch: StepBatch, outputs: list[torch.Tensor], names: list[str]) -> Path:
        from kdgan.tasks.image.grid import save_grid

        nrow = self.num_classes if 0 < self.num_classes <= 64 else self.grid_columns  # a class per column
        return save_grid(self.panels(batch, outputs), path.with_suffix(".png"), nrow=nrow, scale=2,
                         labels=self.panel_names(names))

    def comparison_panel(self, names: list[str], batch: StepBatch, outputs: list[torch.Tensor]) -> bytes:
        """One labelled grid per column (panels), left to right."""
        from kdgan.tasks.image.grid import image_grid, with_label

        grids = []
        for name, images in zip(self.panel_names(names), self.panels(batch, outputs)):
            grid = image_grid(images, nrow=self.comparison_columns).convert("RGB")
            grids.append(with_label(grid.resize((grid.width * 2, grid.height * 2), Image.NEAREST), name, height=18))
        gap = 10
        out = Image.new("RGB", (sum(g.width for g in grids) + gap * (len(grids) - 1), max(g.height for g in grids)),
                        (255, 255, 255))
        left = 0
        for g in grids:
            out.paste(g, (left, 0))
            left += g.width + gap
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        return buf.getvalue()

    comparison_columns = 8

    def evaluate(self, generator, cfg, metrics, options, reference=None) -> dict:
        from kdgan.metrics.evaluate import evaluate_generation, evaluate_image_source

        seed, features, weights = options["seed"], options.get("features"), options.get("inception_weights")
        if cfg.task.name != "generation":
            return evaluate_image_source(generator, self, cfg, metrics, features, seed, weights)
        return evaluate_generation(generator, self, cfg, metrics, options.get("chosen", []), features,
                                   options["samples"], seed, weights)

    def checkpoint_evaluator(self, cfg):
        from kdgan.metrics.evaluate import checkpoint_evaluator

        return checkpoint_evaluator(cfg, self)

    @classmethod
    def report_columns(cls, evaluation: dict) -> list[tuple[str, str, str]]:
        from kdgan.report import COLUMNS, GLYPH_STYLE_COLUMNS, IMAGE_TASK_COLUMNS

        if "char_accuracy" in evaluation:
            return GLYPH_STYLE_COLUMNS
        return COLUMNS if evaluation.get("task", "generation") == "generation" else IMAGE_TASK_COLUMNS

    @classmethod
    def protocol(cls, evaluation: dict) -> str | None:
        if "test_a" not in evaluation:  # the other image tasks: report.py's default wording
            return None
        a, b = evaluation["domains"]
        return (f"Quality: task unpaired, {evaluation['test_a']} held-out {a} glyphs translated and scored against "
                f"{evaluation['test_b']} held-out {b} glyphs (faces no run trained on) in the features of "
                f"`{evaluation['features']}`; character accuracy by the same classifier.")

    @classmethod
    def metric_notes(cls) -> dict[str, str]:
        return {"char_accuracy": "Character accuracy: the share of translated held-out glyphs the shipped glyph "
                                 "classifier still reads as the input's character (the untranslated input's and "
                                 "the held-out B glyphs' own are the baselines)."}

    def fidelity_features(self, cfg):
        """Features of the run's extractor (log.eval_features, or the one shipped for its
        dataset); None for image-to-image tasks and runs without an extractor."""
        from kdgan.errors import UserError
        from kdgan.metrics.evaluate import generation_extractor

        if cfg.task.name != "generation":
            return None
        try:
            classifier, _, _ = generation_extractor(cfg, cfg.log.eval_features, "log.eval_features")
        except UserError:
            return None
        classifier.eval()
        return lambda images: classifier.features_and_logits(images.float().cpu())[0]

    @classmethod
    def write_samples(cls, outputs: torch.Tensor, out: Path, scale: int = 1) -> list[Path]:
        from kdgan.tasks.image.grid import save_grid, save_images

        if out.suffix.lower() == ".png":
            return [save_grid(outputs, out, scale=scale)]
        return save_images(outputs, out)


def check_task(cfg) -> None:
    """Which image families and datasets serve which image task."""
    task, g, d = cfg.task.name, cfg.model.generator.arch, cfg.model.discriminator.arch
    if task == "generation":
        if g in IMAGE_TO_IMAGE:
            raise ValueError(f"model.generator.arch: {g!r} maps images to images; set task.name "
                             "(super_resolution, inpainting, edges, paired, unpaired) or use a latent generator")
        if d == "patchgan":
            raise ValueError("model.discriminator.arch: patchgan is for image-to-image tasks; set task.name")
        if cfg.train.loss.reconstruction.weight > 0:
            raise ValueError("train.loss.reconstruction.weight: generation from a latent code has no ground truth")
        return
    if g not in IMAGE_TO_IMAGE:
        raise ValueError(f"model.generator.arch: task {task} needs an image-to-image generator; "
                         f"valid: {', '.join(IMAGE_TO_IMAGE)}")
    if (task == "super_resolution") != (g == "sr"):
        raise ValueError(f"model.generator.arch: {'super_resolution needs sr' if g != 'sr' else 'sr is for task super_resolution'}")
    if d != "patchgan":
        raise ValueError(f"model.discriminator.arch: task {task} needs patchgan (it judges image pairs)")
    if cfg.data.conditional:
        raise ValueError(f"data.conditional: class labels are for task generation, not {task}")
    if task == "paired" and cfg.data.name != "folder":
        raise ValueError("data.name: task paired reads a folder with A/ and B/ sub-folders; set data.name: folder "
                         "(the built-in paired task on the embedded photos is task edges)")
    glyph_styles = task == "unpaired" and cfg.data.name == "glyphs"
    if glyph_styles and (cfg.data.channels != 1 or cfg.task.input_channels != 1):
        raise ValueError("data.channels: glyphs are grey; set data.channels and task.input_channels to 1")
    if cfg.data.name not in ("photos", "folder") and not glyph_styles:
        raise ValueError(f"data.name: task {task} needs whole photos: photos (embedded) or folder"
                         + (" (or, for unpaired, glyphs: two font styles)" if task == "unpaired" else ""))
    if task == "unpaired" and cfg.train.loss.reconstruction.weight > 0:
        raise ValueError("train.loss.reconstruction.weight: task unpaired has no ground truth; "
                         "distil from the teacher's output (distill.terms l1) instead")

"""Unpaired translation between two font styles of the embedded glyphs (task unpaired,
data.name glyphs): serif letters to sans-serif letters, say, with no pairing between them.

The glyph data records which face drew each image (GLYPHS_FONTS.md), and each upright face
belongs to a style by its family (Century Schoolbook, Times, DejaVu Serif ... are serif;
Helvetica, Roboto, DejaVu Sans ... sans). Monospaced, script and slanted faces are left out:
slant and fixed pitch are styles of their own, and leaving them in would let a translator
pass by changing them instead. Every 5th face of each style is held out: the evaluation
translates its A glyphs, which no run trained on, and compares them with the held-out B
glyphs.

What evaluation reports (the shipped glyph classifier's features and predictions):
    fid, kid          translated held-out A against held-out B: how much the outputs look like B
    char_accuracy     how often the classifier still reads the character the input showed
    baselines         the same for the untranslated input (the style gap to close) and for
                      the held-out B glyphs themselves (the accuracy a perfect B glyph gets)
"""

from __future__ import annotations

import torch

from kdgan.data.embedded import load_glyphs
from kdgan.data.images import ImageDataset, to_float
from kdgan.data.sampling import StepBatch
from kdgan.errors import UserError
from kdgan.tasks.image.i2i import Unpaired

STYLES = {
    "serif": ("C059", "DejaVu Serif", "FreeSerif", "Liberation Serif", "Nimbus Roman", "Noto Serif", "P052",
              "TeX Gyre Bonum", "TeX Gyre Pagella", "TeX Gyre Schola", "TeX Gyre Termes", "URW Bookman"),
    "sans": ("DejaVu Sans", "FreeSans", "Liberation Sans", "Nimbus Sans", "Noto Sans", "Roboto",
             "TeX Gyre Adventor", "TeX Gyre Heros", "URW Gothic"),
}
HELD_OUT_EVERY = 5  # every 5th face of a style (by face id) is held out
FEATURES = "glyphs"  # the shipped glyph classifier: its features for FID/KID, its predictions for characters


def face_style(name: str) -> str | None:
    """The style of an upright, proportional face by its family name; None for the others."""
    if "Mono" in name or "Italic" in name or "Oblique" in name:
        return None
    return next((style for style, families in STYLES.items() if any(name.startswith(f) for f in families)), None)


def style_faces(font_names: list[str], style: str) -> tuple[list[int], list[int]]:
    """(training face ids, held-out face ids) of one style."""
    faces = [i for i, name in enumerate(font_names) if face_style(name) == style]
    held = faces[HELD_OUT_EVERY - 1 :: HELD_OUT_EVERY]
    return [f for f in faces if f not in held], held


def subset(ds: ImageDataset, faces: list[int], tag: str) -> ImageDataset:
    keep = torch.isin(ds.font_ids, torch.tensor(faces))
    part = ImageDataset(ds.images[keep], ds.labels[keep], ds.class_names, f"glyphs ({tag})")
    part.font_ids = ds.font_ids[keep]
    return part


class GlyphStyles(Unpaired):
    """Domain A = glyphs of one style, domain B = glyphs of another; training draws each from
    its training faces, sample grids and evaluation use the held-out faces."""

    def __init__(self, domains: tuple[str, str], resolution: int):
        glyphs = load_glyphs(resolution, 1)
        names = list(glyphs.font_names)
        (train_a, test_a), (train_b, test_b) = (style_faces(names, s) for s in domains)
        a, b = domains
        super().__init__(subset(glyphs, train_b, f"{b}, training faces"), subset(glyphs, train_a, f"{a}, training "
                         "faces"), [], 1, 1)
        self.domains = domains
        self.test_a, self.test_b = subset(glyphs, test_a, f"{a}, held out"), subset(glyphs, test_b, f"{b}, held out")

    def fixed_batch(self, n: int, seed: int) -> StepBatch:
        """The same held-out A glyphs at every sample grid, spread over characters and faces."""

        def pick(ds: ImageDataset) -> torch.Tensor:
            by_character = torch.argsort(ds.labels * (int(ds.font_ids.max()) + 1) + ds.font_ids)
            return by_character[torch.linspace(0, len(ds) - 1, n).long()]

        return StepBatch(to_float(self.test_b.images[pick(self.test_b)]),
                         (to_float(self.test_a.images[pick(self.test_a)]),), ())

    def evaluate(self, generator, cfg, metrics, options, reference=None) -> dict:
        from kdgan.metrics.classifier import load_classifier

        features = options.get("features") or FEATURES
        return {"features": features, **evaluate_styles(generator, self, load_classifier(features)[0], metrics,
                                                       options["seed"])}

    def checkpoint_evaluator(self, cfg):
        from kdgan.metrics.classifier import load_classifier

        if not cfg.log.eval_checkpoints:
            return None
        features = cfg.log.eval_features or FEATURES
        classifier = load_classifier(features)[0]

        def evaluate(generator, step: int, reference=None) -> dict:
            return {"step": step, "task": cfg.task.name, "features": features,
                    **evaluate_styles(generator, self, classifier, ("fid", "kid"), seed=0)}

        return evaluate


@torch.no_grad()
def evaluate_styles(generator, task: GlyphStyles, classifier, metrics=("fid", "kid"), seed: int = 0) -> dict:
    from kdgan.metrics.quality import fid, kid, real_vs_real

    if classifier.spec is not None and (classifier.spec.channels, classifier.spec.resolution) != \
            (1, task.resolution):
        raise UserError(f"--features: the extractor takes {classifier.spec.resolution}px images with "
                        f"{classifier.spec.channels} channels; the glyph styles are {task.resolution}px grey")
    generator.eval()
    # an exported file (ONNX Runtime, TorchScript) has no parameters here and runs on CPU
    device = next(generator.parameters(), torch.empty(0)).device
    inputs = to_float(task.test_a.images)
    outputs = torch.cat([generator(x.to(device)).float().cpu() for x in inputs.split(256)])

    def read(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [classifier.features_and_logits(x) for x in images.split(256)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    real_feats, real_logits = read(to_float(task.test_b.images))

    def scores(images: torch.Tensor, labels: torch.Tensor) -> dict:
        feats, logits = read(images)
        out = {"char_accuracy": float((logits.argmax(1) == labels).float().mean())}
        if "fid" in metrics:
            out["fid"] = fid(real_feats, feats)
        if "kid" in metrics:
            out["kid"], out["kid_std"] = kid(real_feats, feats, seed)
        return out

    a, b = task.domains
    result = {"task": "unpaired", "domains": list(task.domains), "test_a": len(inputs), "test_b": len(real_feats),
              **scores(outputs, task.test_a.labels)}
    result["baselines"] = {
        f"the input ({a}, untranslated)": scores(inputs, task.test_a.labels),
        f"held-out {b} glyphs": {"char_accuracy": float((real_logits.argmax(1) == task.test_b.labels)
                                                        .float().mean())}}
    wanted = [m for m in ("fid", "kid") if m in metrics]
    if wanted:  # the floor: two halves of the held-out B glyphs against each other
        result["real_vs_real"] = real_vs_real(real_feats, wanted, seed)
    return result

"""A small classifier trained by kdgan on a dataset; its penultimate layer is the feature
space for FID/KID/precision-recall, its softmax the class posterior for Inception Score.

Inception-v3 features describe natural photographs; on 32x32 glyphs or 16x16 digits they
measure mostly resizing artefacts. A classifier trained on the data itself sees what tells
its classes apart, works offline, and runs in milliseconds on a CPU.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import BaseModel
from safetensors.torch import load_file
from torch import nn

from kdgan.errors import UserError
from kdgan.train.checkpoint import atomic_save_tensors, atomic_write_bytes


class ClassifierSpec(BaseModel):
    dataset: str
    resolution: int
    channels: int
    num_classes: int
    width: int = 16
    feature_dim: int = 128


class FeatureClassifier(nn.Module):
    """x (B, C, R, R) in [-1, 1] -> logits (B, classes); `features(x)` -> (B, feature_dim)."""

    def __init__(self, spec: ClassifierSpec):
        super().__init__()
        w = spec.width

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.MaxPool2d(2),
            )

        self.spec = spec
        self.body = nn.Sequential(block(spec.channels, w), block(w, 2 * w), block(2 * w, 4 * w))
        self.embed = nn.Sequential(nn.Flatten(), nn.LazyLinear(spec.feature_dim), nn.ReLU())
        self.head = nn.Linear(spec.feature_dim, spec.num_classes)
        self.embed(self.body(torch.zeros(1, spec.channels, spec.resolution, spec.resolution)))  # size LazyLinear

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(x)
        return feats, self.head(feats)


def save_classifier(model: FeatureClassifier, out: Path, report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_save_tensors(out / "model.safetensors", model.state_dict())
    atomic_write_bytes(out / "config.json", json.dumps({"spec": model.spec.model_dump(), **report}, indent=2).encode())


SHIPPED_FEATURES = {"glyphs": "features_glyphs", "digits": "features_digits", "photos": "features_photos"}


def load_classifier(name_or_path: str | Path, inception_weights: Path | None = None) -> tuple[nn.Module, dict]:
    """A shipped extractor by dataset name (glyphs, digits), `inception` (torch-fidelity's
    Inception-v3, when installed; weights from `inception_weights` or the usual places) or a
    folder from save_classifier."""
    if str(name_or_path) == "inception":
        from kdgan.metrics.inception import load_inception

        return load_inception(inception_weights), {"test_accuracy": None}
    if str(name_or_path) in SHIPPED_FEATURES:
        folder = Path(str(resources.files("kdgan.pretrained").joinpath(SHIPPED_FEATURES[str(name_or_path)])))
    else:
        folder = Path(name_or_path)
    if not (folder / "config.json").is_file():
        raise UserError(f"features: {name_or_path} is neither a shipped extractor ({', '.join(SHIPPED_FEATURES)}) "
                        "inception, nor a folder written by `kdgan features train`")
    config = json.loads((folder / "config.json").read_text())
    model = FeatureClassifier(ClassifierSpec(**config["spec"]))
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model.eval(), config


def train_classifier(dataset, epochs: int, batch_size: int, seed: int, lr: float = 2e-3,
                     log=print) -> tuple[FeatureClassifier, dict]:
    """Train on a fixed 90% of the images, report accuracy on the other 10%. Random shifts of
    up to 2 px (pad + crop) keep the features from keying on exact pixel positions."""
    from kdgan.data.images import to_float

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n = len(dataset)
    perm = torch.randperm(n, generator=gen)
    n_test = max(1, n // 10)
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    batch_size = min(batch_size, len(train_idx))  # a small folder still gets a step per epoch
    spec = ClassifierSpec(dataset=dataset.name, resolution=dataset.resolution, channels=dataset.channels,
                          num_classes=dataset.num_classes)
    model = FeatureClassifier(spec)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * (len(train_idx) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, steps))
    r = dataset.resolution
    for epoch in range(epochs):
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=gen)]
        for i in range(len(train_idx) // batch_size):
            idx = order[i * batch_size : (i + 1) * batch_size]
            x = F.pad(to_float(dataset.images[idx]), (2, 2, 2, 2), value=-1.0)
            dx, dy = torch.randint(0, 5, (2,), generator=gen).tolist()
            x = x[:, :, dy : dy + r, dx : dx + r]
            loss = F.cross_entropy(model(x), dataset.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(model, dataset, test_idx)
        log(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}, held-out accuracy {acc:.4f}")
    report = {"test_accuracy": accuracy(model, dataset, test_idx), "test_images": n_test,
              "train_images": len(train_idx), "epochs": epochs, "seed": seed,
              "majority_rate": float(dataset.labels.bincount().max()) / n}
    return model.eval(), report


# A labelled classifier's features are used only when its held-out accuracy covers at least
# this share of the way from the majority-class rate to 1, and its 95% interval lies above
# that rate: a classifier that cannot tell the classes apart has features that measure nothing.
CLEAR_MARGIN = 0.25


def check_classifier(report: dict) -> None:
    """Refuse (one line) a classifier that does not clearly beat the majority-class rate."""
    from kdgan.metrics.c2st import wilson_interval

    accuracy, tested, majority = report["test_accuracy"], report["test_images"], report["majority_rate"]
    needed = majority + CLEAR_MARGIN * (1 - majority)
    low = wilson_interval(round(accuracy * tested), tested)[0]
    if accuracy < needed or low <= majority:
        raise UserError(f"DATASET: the classifier's held-out accuracy {accuracy:.3f} (95% interval from {low:.3f}, "
                        f"{tested} images) does not clearly beat the majority-class rate {majority:.3f} (needs >= "
                        f"{needed:.3f}, interval above it), so its features would not measure these images; use "
                        "--self-supervised (or more epochs, more images per class)")


@torch.no_grad()
def accuracy(model: nn.Module, dataset, idx: torch.Tensor) -> float:
    from kdgan.data.images import to_float

    model.eval()
    correct = sum((model(to_float(dataset.images[c])).argmax(1) == dataset.labels[c]).sum().item()
                  for c in idx.split(512))
    return correct / len(idx)

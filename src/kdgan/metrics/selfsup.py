"""Features for a folder without labels: a contrastive (SimCLR) encoder trained on the images
themselves, offline, in minutes on a CPU.

Two augmented views of each image are pulled together and pushed away from the other images'
views (NT-Xent, Chen et al. 2020). The encoder is the classifier's body and 128-d embedding
(metrics/classifier.py), so everything that reads an extractor reads this one; its `head` is
the projection the loss uses, not a class posterior, so there is no Inception Score in it.

Augmentations, per image (documented, since they decide what the features ignore):
  * random resized crop: 50-100% of the area, aspect ratio 3/4-4/3, back to full size;
  * horizontal flip with probability 1/2;
  * colour jitter: brightness, contrast and (RGB) saturation each scaled by U(0.6, 1.4);
  * grey with probability 0.2 (RGB).

Its quality is checked on the data: the FID between two halves of the real images must be
small against the FID between the real images and uniform noise images, and where the folder
has class labels, a 10-nearest-neighbour classifier in the feature space is scored on
held-out images against the majority-class rate.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kdgan.data.images import to_float
from kdgan.metrics.classifier import ClassifierSpec, FeatureClassifier

PROJECTION_DIM = 64
TEMPERATURE = 0.2
# Learning rate 8e-3: on scripts/build_shapes.py's folder (1,200 images, 60 epochs, batch 128)
# the 10-NN held-out accuracy was 0.55 at 2e-3, 0.73 at 4e-3 and 0.81 at 8e-3 (majority 0.25);
# temperature 0.5 gave 0.55 and 0.1 gave 0.78 at 2e-3 / 4e-3.


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, C, H, W) in [-1, 1] -> one random view of each image (see the module docstring)."""
    b, c = x.shape[:2]
    area = torch.empty(b).uniform_(0.5, 1.0, generator=gen)
    log_ratio = torch.empty(b).uniform_(math.log(3 / 4), math.log(4 / 3), generator=gen)
    sx = (area * log_ratio.exp()).sqrt().clamp(max=1.0)  # crop width / image width
    sy = (area / log_ratio.exp()).sqrt().clamp(max=1.0)
    tx = (torch.rand(b, generator=gen) * 2 - 1) * (1 - sx)  # crop centre, inside the image
    ty = (torch.rand(b, generator=gen) * 2 - 1) * (1 - sy)
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx * flip, tx, sy, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def factor() -> torch.Tensor:
        return torch.empty(b, 1, 1, 1).uniform_(0.6, 1.4, generator=gen)

    x01 = (x + 1) / 2
    x01 = x01 * factor()  # brightness
    mean = x01.mean(dim=(1, 2, 3), keepdim=True)
    x01 = (x01 - mean) * factor() + mean  # contrast
    if c == 3:
        grey = (0.299 * x01[:, :1] + 0.587 * x01[:, 1:2] + 0.114 * x01[:, 2:]).expand_as(x01)
        x01 = (x01 - grey) * factor() + grey  # saturation
        to_grey = (torch.rand(b, 1, 1, 1, generator=gen) < 0.2).float()
        x01 = to_grey * grey + (1 - to_grey) * x01
    return (x01.clamp(0, 1) * 2 - 1).contiguous()


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """SimCLR's loss: each view must pick its partner among the 2B - 1 other views."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    b = z1.shape[0]
    partner = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
    return F.cross_entropy(sim, partner)


def train_self_supervised(dataset, epochs: int, batch_size: int, seed: int, lr: float = 8e-3,
                          log=print) -> tuple[FeatureClassifier, dict]:
    """A contrastive encoder on all of `dataset`'s images (no labels used), and its report."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n = len(dataset)
    batch_size = min(batch_size, n)
    spec = ClassifierSpec(dataset=dataset.name, resolution=dataset.resolution, channels=dataset.channels,
                          num_classes=PROJECTION_DIM)
    model = FeatureClassifier(spec)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    per_epoch = max(1, n // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * per_epoch)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        for i in range(per_epoch):
            x = to_float(dataset.images[order[i * batch_size : (i + 1) * batch_size]])
            loss = nt_xent(model(augment(x, gen)), model(augment(x, gen)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        log(f"epoch {epoch + 1}/{epochs}: contrastive loss {loss.item():.3f}")
    model.eval()
    report = {"objective": "simclr", "epochs": epochs, "seed": seed, "train_images": n,
              "augmentations": "resized crop 50-100%, flip, brightness/contrast/saturation x U(0.6, 1.4), grey 0.2",
              **feature_space_check(model, dataset, seed)}
    return model, report


@torch.no_grad()
def feature_space_check(model: FeatureClassifier, dataset, seed: int) -> dict:
    """Does the space tell these images apart? FID of two real halves against FID of real vs
    uniform noise (a usable space puts the first far below the second), and, with labels, a
    10-nearest-neighbour classifier's held-out accuracy against the majority-class rate."""
    from kdgan.metrics.quality import fid

    gen = torch.Generator().manual_seed(seed)
    feats = torch.cat([model.features(to_float(c)) for c in dataset.images.split(512)])
    perm = torch.randperm(len(feats), generator=gen)
    half = len(feats) // 2
    noise = torch.rand(dataset.images.shape, generator=gen) * 2 - 1
    noise_feats = torch.cat([model.features(c) for c in noise.split(512)])
    out = {"real_vs_real_fid": fid(feats[perm[:half]], feats[perm[half:]]), "real_vs_noise_fid": fid(feats, noise_feats)}
    out["fid_ratio"] = out["real_vs_real_fid"] / max(out["real_vs_noise_fid"], 1e-12)
    if dataset.num_classes >= 2:
        n_test = max(1, len(feats) // 10)
        test, train = perm[:n_test], perm[n_test:]
        a = F.normalize(feats, dim=1)
        nearest = (a[test] @ a[train].T).topk(min(10, len(train)), dim=1).indices
        votes = dataset.labels[train][nearest]
        predicted = torch.mode(votes, dim=1).values
        out["knn_accuracy"] = float((predicted == dataset.labels[test]).float().mean())
        out["majority_rate"] = float(dataset.labels.bincount().max()) / len(dataset.labels)
    return out


# A self-supervised space is used only when two halves of the real images are at most this
# share of the real-vs-noise FID apart.
MAX_FID_RATIO = 0.1


def check_self_supervised(report: dict) -> None:
    """Refuse (one line) features in which the real images are not far closer to each other
    than to noise."""
    from kdgan.errors import UserError

    if report["fid_ratio"] > MAX_FID_RATIO:
        raise UserError(f"DATASET: the self-supervised features do not separate these images from noise: two halves "
                        f"of the real images are {report['real_vs_real_fid']:.3g} apart, real vs noise "
                        f"{report['real_vs_noise_fid']:.3g} (the first must be below {MAX_FID_RATIO:g} x the "
                        "second); train longer (--epochs) or on more images")

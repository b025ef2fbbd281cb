"""Sample quality: samples -> features -> metrics (torch-fidelity's pipeline, in steps).

Features are extracted once, in batches, by any feature network; the metrics then run on
feature tensors. FID, KID and IS come from torchmetrics, fed through an identity
"extractor" so that real features can be cached and reused; precision/recall is computed
here (torchmetrics has none). FID's statistics accumulate in float64 sums, so memory does not
grow with the number of samples; KID, IS and precision/recall keep the (N, D) features.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

METRICS = ("fid", "kid", "is", "pr")


class Identity(nn.Module):
    """Passes precomputed features to torchmetrics' metrics, which call `feature(imgs)`."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=Identity(real.shape[1]), normalize=True)
    for chunk in real.split(4096):
        metric.update(chunk, real=True)
    for chunk in fake.split(4096):
        metric.update(chunk, real=False)
    return float(metric.compute())


def kid(real: torch.Tensor, fake: torch.Tensor, seed: int = 0, subsets: int = 100,
        subset_size: int = 1000) -> tuple[float, float]:
    """Unbiased MMD^2 with the cubic polynomial kernel over random subsets: (mean, std)."""
    import warnings

    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = KernelInceptionDistance(feature=Identity(real.shape[1]), subsets=subsets, subset_size=size)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng():  # torchmetrics draws the subsets from the global RNG
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def inception_score(logits: torch.Tensor, seed: int = 0, splits: int = 10) -> tuple[float, float]:
    """exp E_x KL(p(y|x) || p(y)) over `splits` random splits: (mean, std)."""
    import warnings

    from torchmetrics.image.inception import InceptionScore

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = InceptionScore(feature=Identity(logits.shape[1]), splits=splits)
    metric.update(logits)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def _kth_neighbour_radius(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance from each row of x to its k-th nearest other row."""
    radii = []
    for part in x.split(chunk):
        d = torch.cdist(part, x)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # +1: the point itself is at distance 0
    return torch.cat(radii)


def _inside_any_ball(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int) -> torch.Tensor:
    inside = []
    for part in points.split(chunk):
        inside.append((torch.cdist(part, centres) <= radii[None, :]).any(1))
    return torch.cat(inside)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3, chunk: int = 1024) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al., 2019).

    Each set's manifold is the union of balls around its points with radius the distance to
    the k-th nearest neighbour. Precision: the share of fakes inside the real manifold
    (fidelity). Recall: the share of reals inside the fake manifold (coverage).
    """
    real, fake = real.double(), fake.double()
    r_real = _kth_neighbour_radius(real, k, chunk)
    r_fake = _kth_neighbour_radius(fake, k, chunk)
    precision = _inside_any_ball(fake, real, r_real, chunk).double().mean()
    recall = _inside_any_ball(real, fake, r_fake, chunk).double().mean()
    return float(precision), float(recall)


def quality_metrics(real: torch.Tensor, fake: torch.Tensor, fake_logits: torch.Tensor | None,
                    metrics: Iterable[str], seed: int = 0) -> dict:
    """The requested metrics from real features, fake features and fake class logits."""
    out: dict = {"real_samples": len(real), "fake_samples": len(fake)}
    for name in metrics:
        if name == "fid":
            out["fid"] = fid(real, fake)
        elif name == "kid":
            out["kid"], out["kid_std"] = kid(real, fake, seed)
        elif name == "is":
            out["is"], out["is_std"] = inception_score(fake_logits, seed)
        elif name == "pr":
            out["precision"], out["recall"] = precision_recall(real, fake)
    return out


@torch.no_grad()
def real_vs_real(real: torch.Tensor, metrics: Iterable[str], seed: int = 0,
                 logits_of: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict:
    """The metrics between two random halves of the real features: what each metric gives for
    two samples of one distribution at half this sample size, the scale a model's number is
    read against (FID/KID near their floor, precision/recall near their ceiling). IS is the
    second half's own score, when `logits_of` maps features to class logits."""
    perm = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))
    half = len(real) // 2
    a, b = real[perm[:half]], real[perm[half : 2 * half]]
    chosen = [m for m in metrics if m in METRICS and (m != "is" or logits_of is not None)]
    out = quality_metrics(a, b, logits_of(b) if "is" in chosen else None, chosen, seed)
    return {k: v for k, v in out.items() if k not in ("real_samples", "fake_samples")} | {"half_samples": half}

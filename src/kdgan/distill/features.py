"""Feature distillation terms: intermediate activations of teacher and student.

`ctx.extra` holds, for the generator phase:
    student_features  {student path: (B, C_s, H, W)}  from the student's forward (with graph)
    teacher_features  {teacher path: (B, C_t, H, W)}  from the teacher's forward (no graph)
    d_features_fake / d_features_teacher  {path: ...}  teacher-discriminator activations on
                      the student's fakes (with graph) and the teacher's outputs (no graph)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kdgan.losses.terms import LossTerm, StepContext


def kernel_alignment_loss(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    """1 - KA(K_s, K_t) with K = F F^T the batch Gram matrix of flattened features
    (CAT, Jin et al. 2021). Channel counts may differ: no adapter is needed.

    Features are centred over the batch first (linear CKA, Kornblith et al. 2019): post-ReLU
    activations share a large positive mean that makes uncentred alignment ~1 for any pair
    of networks, leaving almost no signal to learn from."""
    fs, ft = fs.flatten(1), ft.flatten(1)
    fs, ft = fs - fs.mean(0, keepdim=True), ft - ft.mean(0, keepdim=True)
    ks, kt = fs @ fs.T, ft @ ft.T  # (B, B)
    return 1 - (ks * kt).sum() / (ks.norm() * kt.norm() + 1e-12)


def relation_loss(fs: torch.Tensor, ft: torch.Tensor, temperature: float) -> torch.Tensor:
    """Batch-similarity relation (StyleKD, Xu et al. 2022): for each sample, a softmax over its
    cosine similarities to the other samples of the batch; KL(teacher row || student row)."""
    fs, ft = F.normalize(fs.flatten(1), dim=1), F.normalize(ft.flatten(1), dim=1)
    b = fs.shape[0]
    off = ~torch.eye(b, dtype=torch.bool, device=fs.device)  # a sample's similarity to itself says nothing
    ss, st = (fs @ fs.T)[off].view(b, b - 1), (ft @ ft.T)[off].view(b, b - 1)
    log_ps = F.log_softmax(ss / temperature, dim=1)
    pt = F.softmax(st / temperature, dim=1)
    return F.kl_div(log_ps, pt, reduction="batchmean")


def attention_loss(ms: torch.Tensor, mt: torch.Tensor) -> torch.Tensor:
    """Attention transfer for transformers: KL(teacher || student) between the head-averaged
    attention distributions of each query over the keys, maps (B, heads, queries, keys) whose
    rows sum to 1; head counts may differ (no adapter), the queries and keys must agree. The
    mean over batch and queries (padded query rows included: both networks see the same
    input, so those rows add no bias, only a little noise)."""
    ps, pt = ms.mean(1), mt.mean(1)
    if ps.shape != pt.shape:
        raise ValueError(f"attention maps of shapes {tuple(ms.shape)} and {tuple(mt.shape)} do not pair up")
    kl = pt * (pt.clamp_min(1e-12).log() - ps.clamp_min(1e-12).log())  # 0 where the teacher gives 0
    return kl.sum(-1).mean()


def make_adapter(student_shape: tuple, teacher_shape: tuple, layout: str = "channels_first") -> nn.Module:
    """Student -> teacher feature space, from per-sample shapes. Feature maps (C, H, W) on both
    sides: a 1x1 conv on channels (GAN Compression), the map resized afterwards if the
    resolutions differ; 1-D maps (C, T) (audio, signals): the same with a 1x1 Conv1d, resized
    linearly. layout channels_last, e.g. a transformer's (T, C) per position: a linear map of
    the last axis. Anything else (a user's MLP layer): a linear map between the flattened
    features."""
    if layout == "channels_last" and len(student_shape) == len(teacher_shape) >= 2:
        return nn.Linear(student_shape[-1], teacher_shape[-1])
    if len(student_shape) == 3 and len(teacher_shape) == 3:
        return nn.Conv2d(student_shape[0], teacher_shape[0], 1)
    if len(student_shape) == 2 and len(teacher_shape) == 2:
        return nn.Conv1d(student_shape[0], teacher_shape[0], 1)
    numel = lambda shape: int(torch.tensor(shape).prod())  # noqa: E731
    return nn.Sequential(nn.Flatten(), nn.Linear(numel(student_shape), numel(teacher_shape)))


class FeatureDistill(LossTerm):
    """Mean over tap pairs of a feature loss:
      mse      ||adapter(f_s) - f_t||^2 through a learned 1x1 conv from student to teacher
               channels (GAN Compression), trained with the student;
      kernel   CAT's kernel alignment of batch Gram matrices (no adapter);
      relation StyleKD's batch-similarity relation (no adapter);
      attention KL between head-averaged attention maps (a transformer's `attention_taps`).
    """

    phase, needs = "g", ("student_features", "teacher_features")

    def __init__(self, pairs: list[tuple[str, str]], loss: str, shapes: list[tuple[tuple, tuple]] | None = None,
                 weight: float = 1.0, temperature: float = 1.0, layout: str = "channels_first"):
        super().__init__(weight)
        self.name = f"feature_{loss}"
        self.pairs, self.loss, self.temperature = pairs, loss, temperature
        if loss == "mse":
            assert shapes is not None and len(shapes) == len(pairs)
            # per pair (student per-sample shape, teacher per-sample shape); indices follow `pairs`
            self.adapters = nn.ModuleList(make_adapter(s, t, layout) for s, t in shapes)
        self.layout = layout

    def compute(self, ctx: StepContext) -> torch.Tensor:
        fs_all, ft_all = ctx.extra["student_features"], ctx.extra["teacher_features"]
        losses = []
        for i, (sp, tp) in enumerate(self.pairs):
            fs, ft = fs_all[sp], ft_all[tp]
            if self.loss == "mse":
                fs = self.adapters[i](fs)
                if self.layout == "channels_first" and fs.ndim in (3, 4) and fs.shape[2:] != ft.shape[2:]:
                    mode = "bilinear" if fs.ndim == 4 else "linear"
                    fs = F.interpolate(fs, size=ft.shape[2:], mode=mode, align_corners=False)
                losses.append(F.mse_loss(fs, ft.reshape(fs.shape)))
            elif self.loss == "kernel":
                losses.append(kernel_alignment_loss(fs, ft))
            elif self.loss == "attention":
                losses.append(attention_loss(fs, ft))
            else:
                losses.append(relation_loss(fs, ft, self.temperature))
        return torch.stack(losses).mean()


class DiscriminatorPerceptual(LossTerm):
    """A perceptual distance in the frozen teacher discriminator's feature space: mean over
    its layers of |phi_l(S(z)) - phi_l(T(z))| (TinyGAN's feature loss; the teacher D plays
    the role VGG plays for LPIPS, and it knows this data domain)."""

    name, phase, needs, adversarial = "perceptual", "g", ("d_features_fake", "d_features_teacher"), True

    def compute(self, ctx: StepContext) -> torch.Tensor:
        fake, teacher = ctx.extra["d_features_fake"], ctx.extra["d_features_teacher"]
        return torch.stack([F.l1_loss(fake[k], teacher[k]) for k in teacher]).mean()


class LPIPSPerceptual(LossTerm):
    """LPIPS (Zhang et al., 2018) between S(z) and T(z), with AlexNet features. Grey images
    are repeated to three channels. Needs the `lpips` package and its backbone weights on
    this machine: kdgan never downloads them (see `load_lpips`)."""

    name, phase, needs = "perceptual_lpips", "g", ("teacher_out",)

    def __init__(self, network: nn.Module, weight: float = 1.0):
        super().__init__(weight)
        self.network = network.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "LPIPSPerceptual":
        super().train(mode)
        self.network.eval()  # a frozen metric network
        return self

    def compute(self, ctx: StepContext) -> torch.Tensor:
        s, t = ctx.fake, ctx.extra["teacher_out"]
        if s.shape[1] == 1:
            s, t = s.repeat(1, 3, 1, 1), t.repeat(1, 3, 1, 1)
        return self.network(s, t).mean()


def load_lpips(field: str) -> nn.Module:
    """The LPIPS network, or a UserError saying exactly what is missing. lpips takes its
    AlexNet backbone from torchvision's model zoo, which downloads on first use; offline
    that would fail or hang, so the weights must already be in torch's hub cache."""
    from pathlib import Path

    from kdgan.errors import UserError

    try:
        import lpips
    except ImportError:
        raise UserError(f"{field}: lpips is not installed (pip install lpips torchvision); "
                        "or use network: teacher_discriminator") from None
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    if not any(cache.glob("alexnet-*.pth")):
        raise UserError(f"{field}: lpips needs AlexNet weights (alexnet-owt-7be5be79.pth) in {cache}, and kdgan "
                        "downloads nothing; put them there or use network: teacher_discriminator")
    return lpips.LPIPS(net="alex", verbose=False)

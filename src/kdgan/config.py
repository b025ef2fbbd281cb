"""Typed run configuration: YAML is plain data, validated before any work starts.

Every mistake becomes a `UserError` whose one line names the field (as a dotted path) and
what would be valid, e.g. `config error: train.loss.name: unknown 'hing'; valid: bce, ...`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kdgan.data import DATASETS, Reading
from kdgan.errors import UserError
from kdgan.losses import ADVERSARIAL_LOSSES
from kdgan.nets import DISCRIMINATORS, GENERATORS, IMAGE_TO_IMAGE


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _choice(value: str, valid: Any) -> str:
    if value not in valid:
        raise ValueError(f"unknown {value!r}; valid: {', '.join(valid)}")
    return value


class DataConfig(Strict):
    name: str = "glyphs"
    path: Path | None = None  # for `folder` and `npz`
    resolution: int = 32
    channels: int = Field(1, ge=1, le=3)
    conditional: bool = False  # feed class labels to G and D
    # folder, channels 3: a grey image is an error naming it, unless this replicates its channel
    grey_to_rgb: bool = False
    # folders: transparent pixels are composited over this colour (a name or #rrggbb)
    background: str = "white"

    @field_validator("background", mode="before")
    @classmethod
    def _background(cls, v) -> str:
        from PIL import ImageColor

        if v is None:  # `background: #fff` unquoted: YAML reads the rest of the line as a comment
            raise ValueError("give a colour name or a quoted '#rrggbb' (YAML reads a bare # as a comment)")
        try:
            ImageColor.getrgb(v)
        except ValueError:
            raise ValueError(f"unknown colour {v!r}; give a colour name (white, black, ...) or #rrggbb") from None
        return v

    @property
    def reading(self) -> Reading:
        from PIL import ImageColor

        return Reading(self.grey_to_rgb, ImageColor.getrgb(self.background)[:3])

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _choice(v, DATASETS)

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v: int) -> int:
        if v not in (8, 16, 32, 64, 128, 256):
            raise ValueError(f"must be one of 8, 16, 32, 64, 128, 256, got {v}")
        return v

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: int) -> int:
        if v not in (1, 3):
            raise ValueError(f"must be 1 (grey) or 3 (RGB), got {v}")
        return v


class GeneratorConfig(Strict):
    arch: str = "dcgan"
    width: int = Field(64, ge=1)
    spectral_norm: bool = False
    # image-to-image: residual blocks / U-Net levels; dcgan-subpixel: hidden 3x3 convs in its
    # sub-pixel head; 0 = the arch's default (dcgan and resnet have no such depth)
    blocks: int = Field(0, ge=0)
    # dcgan-subpixel: channels of a nonlinear branch added to its linear sub-pixel head (0: none)
    head_residual: int = Field(0, ge=0)

    @field_validator("arch")
    @classmethod
    def _arch(cls, v: str) -> str:
        return _choice(v, GENERATORS)


class DiscriminatorConfig(Strict):
    arch: str = "dcgan"
    width: int = Field(64, ge=1)
    spectral_norm: bool = False
    batch_norm: bool = True
    layers: int = Field(3, ge=1, le=6)  # patchgan: stride-2 layers (3: pix2pix's 70x70 patches)

    @field_validator("arch")
    @classmethod
    def _arch(cls, v: str) -> str:
        return _choice(v, DISCRIMINATORS)


class DegradationConfig(Strict):
    """Super-resolution input = noise(downscale(blur(HR))); see kdgan.data.degrade.downscale."""

    kernel: Literal["bicubic", "bilinear", "area"] = "bicubic"
    blur_sigma: float = Field(0.0, ge=0)  # Gaussian blur before downscaling, in HR pixels; 0: none
    noise_sigma: float = Field(0.0, ge=0)  # Gaussian noise after, in grey levels of 255; 0: none


class TaskConfig(Strict):
    """What the generator maps from: a latent code (generation) or an image (the others).
    Image-to-image tasks train on `crops` random data.resolution-px crops of whole photos
    (data.name photos, or a folder) and are evaluated on held-out whole photos."""

    name: Literal["generation", "super_resolution", "inpainting", "edges", "paired", "unpaired"] = "generation"
    scale: Literal[2, 4, 8] = 4  # super_resolution
    degradation: DegradationConfig = DegradationConfig()  # super_resolution
    mask: Literal["rect", "freeform", "mixed"] = "mixed"  # inpainting
    edge_sigma: float = Field(2.0, gt=0)  # edges: Canny's Gaussian sigma
    input_channels: int = Field(3, ge=1, le=3)  # paired / unpaired: channels of the A images
    crops: int = Field(4096, ge=1)
    max_side: int = Field(512, ge=16)  # photos are shrunk to at most this many px on the longer side


class ModelConfig(Strict):
    latent_dim: int = Field(128, ge=1)
    generator: GeneratorConfig = GeneratorConfig()
    discriminator: DiscriminatorConfig = DiscriminatorConfig()


class ReconstructionConfig(Strict):
    """Image-to-image tasks with ground truth: weight * |G(x) - y| against the target image y
    (pix2pix's lambda * L1). Distillation's l1/l2 terms target the teacher's output instead;
    a recipe may use either or both, and says which."""

    loss: Literal["l1", "l2"] = "l1"
    weight: float = Field(0.0, ge=0)  # 0: no reconstruction term


class LossConfig(Strict):
    name: str = "nonsaturating"
    r1_gamma: float = Field(0.0, ge=0)  # R1 weight is gamma / 2; 0 disables it
    # Weight of the generator's adversarial term: L_G = g_weight * L_adv + sum(distill terms).
    # 0 turns distillation into pure regression onto the teacher (the D still trains, unused).
    g_weight: float = Field(1.0, ge=0)
    reconstruction: ReconstructionConfig = ReconstructionConfig()
    gp_lambda: float = Field(10.0, ge=0)  # used by wgan-gp only

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _choice(v, ADVERSARIAL_LOSSES)


class OptimConfig(Strict):
    lr: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)


class TrainConfig(Strict):
    steps: int = Field(2000, ge=1)
    batch_size: int = Field(64, ge=1)
    d_steps: int = Field(1, ge=1)  # discriminator updates per generator update
    loss: LossConfig = LossConfig()
    g_optim: OptimConfig = OptimConfig()
    d_optim: OptimConfig = OptimConfig()
    ema_decay: float = Field(0.999, ge=0, lt=1)  # 0: no EMA, samples come from G itself
    # From this fraction of train.steps on, both learning rates fall linearly towards 0 at the
    # last step (pix2pix / CycleGAN's schedule); 1: constant rates.
    lr_decay_start: float = Field(1.0, ge=0, le=1)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast dtype (fp16 adds gradient scaling)
    channels_last: bool = False  # NHWC memory format for networks and images
    compile: bool = False  # torch.compile the generator and discriminator forwards


class LogConfig(Strict):
    log_every: int = Field(10, ge=1)
    sample_every: int = Field(500, ge=1)
    checkpoint_every: int = Field(500, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    num_samples: int = Field(64, ge=1)  # images in each sample grid
    progress: bool = True
    tensorboard: bool = True
    # Evaluate the (EMA) generator at every checkpoint into eval.json, so `kdgan compare` can
    # plot quality over training: FID/KID (eval_samples samples) for generation, PSNR/SSIM +
    # patch FID/KID for image-to-image tasks. eval_features: as `kdgan evaluate --features`.
    eval_checkpoints: bool = False
    eval_samples: int = Field(2000, ge=2)
    eval_features: str | None = None


# -- distillation --------------------------------------------------------------------------


class L1Term(Strict):
    name: Literal["l1"]
    weight: float = 1.0


class L2Term(Strict):
    name: Literal["l2"]
    weight: float = 1.0


class KLTerm(Strict):
    """The seed's KL response distillation; see kdgan.losses.distill.OutputKL for `dim`."""

    name: Literal["kl"]
    weight: float = 1.0
    temperature: float = Field(1.0, gt=0)
    dim: Literal["pixels", "channels"] = "pixels"
    reduction: Literal["distribution", "elementwise"] = "distribution"


class PerceptualTerm(Strict):
    name: Literal["perceptual"]
    weight: float = 1.0
    network: Literal["teacher_discriminator", "lpips"] = "teacher_discriminator"
    layers: list[str] | None = None  # teacher-discriminator module paths; default: its stages


class FeatureTerm(Strict):
    name: Literal["feature"]
    weight: float = 1.0
    loss: Literal["mse", "kernel", "relation"] = "mse"
    taps: list[tuple[str, str]] | None = None  # (student path, teacher path); default: stage outputs
    temperature: float = Field(1.0, gt=0)  # relation only


class DiscriminatorKLTerm(Strict):
    name: Literal["d_kl"]
    weight: float = 1.0
    temperature: float = Field(1.0, gt=0)


class TeacherCriticTerm(Strict):
    name: Literal["g_teacher_adv"]
    weight: float = 1.0


TermConfig = Annotated[
    Union[L1Term, L2Term, KLTerm, PerceptualTerm, FeatureTerm, DiscriminatorKLTerm, TeacherCriticTerm],
    Field(discriminator="name"),
]


class StudentConfig(Strict):
    # Student G = the teacher's spec with width * multiplier (and `arch` if given, e.g. the
    # mobile dcgan-separable). null: the student is model.generator as written.
    width_multiplier: float | None = Field(0.25, gt=0)
    arch: str | None = None
    init: Literal["scratch", "prune"] = "scratch"  # prune: teacher's most important channels
    importance: Literal["bn", "l1"] = "bn"
    # Residual blocks of a width-scaled sr / resnet-i2i student (null: the teacher's). Fewer,
    # wider blocks run nearer a CPU's peak than many narrow ones at the same MACs.
    blocks: int | None = Field(None, ge=1)

    @field_validator("arch")
    @classmethod
    def _arch(cls, v: str | None) -> str | None:
        return None if v is None else _choice(v, GENERATORS)


class StudentDiscriminatorConfig(Strict):
    # Student D = the teacher's D spec with width * multiplier; null: model.discriminator.
    width_multiplier: float | None = Field(1.0, gt=0)
    init: Literal["scratch", "teacher"] = "scratch"  # teacher: copy its weights (same width only)


class DistillConfig(Strict):
    teacher: str | None = None  # shipped name, pretrained folder, run folder, checkpoint or .pt file
    # A .pt teacher that is a whole pickled nn.Module can run code when unpickled: only with
    # this explicit opt-in (--trust-pickle) is it loaded; otherwise torch.load(weights_only=True).
    trust_pickle: bool = False
    student: StudentConfig = StudentConfig()
    discriminator: StudentDiscriminatorConfig = StudentDiscriminatorConfig()
    terms: list[TermConfig] = []


class GuardConfig(Strict):
    # A NaN/Inf in a loss term or weight: stop with an error, or reload the last checkpoint
    # and continue with the learning rates times rollback_lr_factor (at most max_rollbacks).
    nonfinite: Literal["stop", "rollback"] = "stop"
    rollback_lr_factor: float = Field(0.5, gt=0, lt=1)
    max_rollbacks: int = Field(3, ge=1)
    # Flag mode collapse when the fixed-input samples' mean pairwise L1 distance (images in
    # [-1, 1]) falls below this; 0 disables the flag (the diversity is logged regardless).
    collapse_threshold: float = Field(0.05, ge=0)


def _check_task(cfg: "Config") -> None:
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
    if cfg.data.name not in ("photos", "folder"):
        raise ValueError(f"data.name: task {task} needs whole photos: photos (embedded) or folder")
    if task == "unpaired" and cfg.train.loss.reconstruction.weight > 0:
        raise ValueError("train.loss.reconstruction.weight: task unpaired has no ground truth; "
                         "distil from the teacher's output (distill.terms l1) instead")


class Config(Strict):
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | cuda:N | auto
    # CPU runs are bit-reproducible as they are. On GPUs this selects deterministic kernels
    # (torch.use_deterministic_algorithms, cuDNN without autotuning, a fixed cuBLAS workspace),
    # a few ops then raise instead of running non-deterministically; it costs some speed.
    deterministic: bool = False
    data: DataConfig = DataConfig()
    task: TaskConfig = TaskConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    log: LogConfig = LogConfig()
    guard: GuardConfig = GuardConfig()
    distill: DistillConfig | None = None  # present: distil a teacher into the networks above

    @model_validator(mode="after")
    def _consistent(self) -> "Config":
        disc = self.model.discriminator
        if self.train.loss.name == "wgan-gp" and disc.batch_norm:
            raise ValueError(
                "model.discriminator.batch_norm: must be false with wgan-gp "
                "(the gradient penalty is per sample; BatchNorm mixes samples)"
            )
        _check_task(self)
        if disc.arch == "resnet" and disc.batch_norm:
            raise ValueError("model.discriminator.batch_norm: the resnet discriminator has none; set false")
        gen = self.model.generator
        if gen.head_residual and (gen.arch != "dcgan-subpixel" or gen.blocks):
            raise ValueError("model.generator.head_residual: only a dcgan-subpixel generator without hidden head "
                             "layers (blocks: 0) has one; set 0")
        return self


def _error_line(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        valid = _valid_keys(first["loc"][:-1])
        msg = f"unknown key; valid keys: {', '.join(valid)}" if valid else "unknown key"
    elif first["type"] != "value_error" and "input" in first:
        msg = f"{msg} (got {first['input']!r})"
    return f"config error: {where + ': ' if where else ''}{msg}"


def _valid_keys(loc: tuple) -> list[str]:
    """The field names of the section at `loc` (e.g. ('train', 'loss')), for error messages.
    List indices and union tags in `loc` (distill.terms.0.kl) are walked through."""
    candidates: list = [Config]
    for part in loc:
        if isinstance(part, int):
            continue
        found = []
        for model in candidates:
            fields = model.model_fields
            if part in fields:
                found += _members(fields[part].annotation)
            elif "name" in fields and get_args(fields["name"].annotation) == (part,):
                found.append(model)  # the union member tagged `part`
        candidates = [m for m in found if hasattr(m, "model_fields")]
    return list(candidates[0].model_fields) if candidates else []


def _members(tp: Any) -> list:
    """Flatten list[...], Optional, Union and Annotated down to the model classes inside."""
    args = get_args(tp)
    return [m for a in args for m in _members(a)] if args else [tp]


def parse_overrides(pairs: list[str]) -> dict:
    """`["train.steps=20", "data.name=digits"]` -> nested dict; values are parsed as YAML."""
    tree: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set {pair!r}: expected KEY=VALUE, e.g. train.steps=100")
        node = tree
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {pair!r}: {part} is set both as a value and as a section")
        node[leaf] = yaml.safe_load(raw) if raw.strip() else None
    return tree


def merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--config: {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"config error: {path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config error: {path}: the top level must be a mapping of sections")
    return data


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """The YAML recipe at `path` (a str or a Path) with `overrides` ("a.b=value") applied."""
    raw = read_yaml(path) if path is not None else {}
    return validate(merge(raw, parse_overrides(list(overrides))))


def validate(raw: dict) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise UserError(_error_line(err)) from None


def to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)

"""Typed run configuration: YAML is plain data, validated before any work starts.

Every mistake becomes a `UserError` whose one line names the field (as a dotted path) and
what would be valid, e.g. `config error: train.loss.name: unknown 'hing'; valid: bce, ...`.

The sections that depend on what is trained are validated by the schema of what they name
in the registries (kdgan.registry): `task` and `data` by the task (`task.name`),
`model.generator` / `model.discriminator` by the network family (`arch`), each entry of
`distill.terms` by its term (`name`). The rest is shared by every task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, Field, SerializeAsAny, ValidationError, field_validator, model_validator

from kdgan.errors import UserError
from kdgan.families import check_modality
from kdgan.losses import ADVERSARIAL_LOSSES
from kdgan.registry import DISCRIMINATORS, GENERATORS, TASKS, TERMS
from kdgan.schema import Strict, choice


# A section whose schema the registries pick (see validate_sections); model_dump writes the
# picked schema's fields.
Section = SerializeAsAny[Strict]


class ModelConfig(Strict):
    latent_dim: int = Field(128, ge=1)  # size of the latent code, for tasks that draw one
    generator: Section
    discriminator: Section


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
    # HiFi-GAN's feature matching: weight of the L1 between the discriminator's feature maps
    # on real data and on samples (needs a discriminator that returns them); 0: off
    feature_matching: float = Field(0.0, ge=0)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return choice(v, ADVERSARIAL_LOSSES)


class OptimConfig(Strict):
    lr: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)


class CycleConfig(Strict):
    """CycleGAN training between a task's two domains (kdgan.train.cycle): two generators and
    two discriminators, with these weights of the cycle-consistency and identity L1 terms."""

    cycle: float = Field(10.0, ge=0)
    identity: float = Field(5.0, ge=0)  # 0: no identity term (its forwards are skipped)


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
    # Both learning rates rise linearly over the first N steps (Transformers need it: Adam's
    # early updates are large before its second-moment estimates settle); 0: no warm-up
    warmup_steps: int = Field(0, ge=0)
    # The first N steps train the generator on its other terms alone (the task's reconstruction
    # or mel loss, distillation's terms): the discriminator neither trains nor judges, and its
    # adversarial and feature-matching terms start at step N (Parallel WaveGAN's warm-up)
    adversarial_start: int = Field(0, ge=0)
    # CycleGAN's two translators between the task's two domains, with cycle and identity terms
    cycle: CycleConfig | None = None
    # > 0: the discriminator judges a mix of new and past generator samples from a pool of this
    # many (Shrivastava et al.; CycleGAN uses 50), kdgan.train.pool
    fake_pool: int = Field(0, ge=0)
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
        return None if v is None else choice(v, GENERATORS.names())


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
    terms: list[Section] = []  # each validated by its registered term's schema (`name`)


class GuardConfig(Strict):
    # A NaN/Inf in a loss term or weight: stop with an error, or reload the last checkpoint
    # and continue with the learning rates times rollback_lr_factor (at most max_rollbacks).
    nonfinite: Literal["stop", "rollback"] = "stop"
    rollback_lr_factor: float = Field(0.5, gt=0, lt=1)
    max_rollbacks: int = Field(3, ge=1)
    # Flag mode collapse when the fixed-input samples' mean pairwise L1 distance (images in
    # [-1, 1]) falls below this; 0 disables the flag (the diversity is logged regardless).
    collapse_threshold: float = Field(0.05, ge=0)


class Config(Strict):
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | cuda:N | auto
    # CPU runs are bit-reproducible as they are. On GPUs this selects deterministic kernels
    # (torch.use_deterministic_algorithms, cuDNN without autotuning, a fixed cuBLAS workspace),
    # a few ops then raise instead of running non-deterministically; it costs some speed.
    deterministic: bool = False
    data: Section  # the task's data schema
    task: Section  # the task's own schema; `name` picks the task
    model: ModelConfig
    train: TrainConfig = TrainConfig()
    log: LogConfig = LogConfig()
    guard: GuardConfig = GuardConfig()
    distill: DistillConfig | None = None  # present: distil a teacher into the networks above

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, raw: Any) -> Any:
        return validate_sections(raw) if isinstance(raw, dict) else raw

    @model_validator(mode="after")
    def _consistent(self) -> "Config":
        if self.train.cycle is not None and self.distill is not None:
            raise ValueError("train.cycle: distillation trains the A -> B student alone, from the cycle "
                             "teacher's A -> B half; remove train.cycle from the distillation config")
        TASKS.get(self.task.name, "task.name").check(self)  # the task's cross-section rules
        return self


def validate_sections(raw: dict) -> dict:
    """`raw` with its registry-picked sections replaced by their validated schema objects.
    A missing section is its schema's defaults; `task.name` and the families' `arch` default
    to the task's."""
    raw = dict(raw)
    task_raw = _mapping(raw.get("task"), "task")
    task_name = task_raw.get("name", "generation")
    task = TASKS.get(task_name, "task.name")
    raw["task"] = section(task.settings, task_raw, "task")
    raw["data"] = section(task.data_settings, _mapping(raw.get("data"), "data"), "data")
    model = dict(_mapping(raw.get("model"), "model"))
    for key, registry, default in (("generator", GENERATORS, task.default_generator),
                                   ("discriminator", DISCRIMINATORS, task.default_discriminator)):
        where = f"model.{key}"
        part = _mapping(model.get(key), where)
        arch = part.get("arch", default)
        family = registry.get(arch, f"{where}.arch")
        check_modality(family, arch, task, task_name, registry, f"{where}.arch")
        model[key] = section(family.config, part, where)
    raw["model"] = model
    distill = raw.get("distill")
    student = distill.get("student") if isinstance(distill, dict) else None
    if isinstance(student, dict) and isinstance(student.get("arch"), str):
        family = GENERATORS.get(student["arch"], "distill.student.arch")
        check_modality(family, student["arch"], task, task_name, GENERATORS, "distill.student.arch")
    if isinstance(distill, dict) and isinstance(distill.get("terms"), list):
        terms = []
        for i, term in enumerate(distill["terms"]):
            where = f"distill.terms.{i}"
            term = _mapping(term, where)
            if "name" not in term:
                raise UserError(f"config error: {where}.name: missing; valid: {', '.join(TERMS)}")
            terms.append(section(TERMS.get(term["name"], f"{where}.name").config, term, where))
        raw["distill"] = {**distill, "terms": terms}
    return raw


def _mapping(value: Any, where: str) -> Any:
    if value is None:
        return {}
    if isinstance(value, BaseModel):
        return value.model_dump()
    if not isinstance(value, dict):
        raise UserError(f"config error: {where}: must be a mapping of keys, got {value!r}")
    return value


def section(schema: type[Strict], raw: Any, where: str) -> Strict:
    """`raw` validated by `schema`; a mistake is one line naming `where`'s field."""
    if isinstance(raw, schema):
        return raw
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise UserError(_error_line(err, schema, where)) from None


def _error_line(err: ValidationError, root: type[BaseModel] | None = None, prefix: str = "") -> str:
    first = err.errors()[0]
    where = ".".join([prefix] * bool(prefix) + [str(p) for p in first["loc"]])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        valid = _valid_keys(first["loc"][:-1], root or Config)
        msg = f"unknown key; valid keys: {', '.join(valid)}" if valid else "unknown key"
    elif first["type"] != "value_error" and "input" in first:
        msg = f"{msg} (got {first['input']!r})"
    return f"config error: {where + ': ' if where else ''}{msg}"


def _valid_keys(loc: tuple, root: type[BaseModel]) -> list[str]:
    """The field names of the section at `loc` (e.g. ('train', 'loss')) of `root`, for error
    messages. List indices and union tags in `loc` are walked through."""
    candidates: list = [root]
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
    except UserError as err:  # from a registry-picked section
        message = str(err)
        raise UserError(message if message.startswith("config error") else f"config error: {message}") from None


def to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)

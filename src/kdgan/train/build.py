"""Build a Trainer from a validated Config: data, task, networks, objectives, optimizers."""

from __future__ import annotations

import torch

from kdgan import __version__
from kdgan.config import Config
from kdgan.errors import UserError
from kdgan.families import build_discriminator, build_generator, saved_spec
from kdgan.registry import DISCRIMINATORS
from kdgan.losses.terms import (AdversarialD, AdversarialG, FeatureMatching, GradientPenalty, Objective, R1,
                                Reconstruction)
from kdgan.tasks import Task, build_task
from kdgan.train import distributed
from kdgan.train.loop import LoopSettings, Trainer


def apply_determinism(enabled: bool) -> None:
    """GPU determinism settings (see Config.deterministic). CUBLAS_WORKSPACE_CONFIG must be
    set before cuBLAS initialises, i.e. before the first CUDA matmul: here, at build time."""
    if not enabled:
        return
    import os

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"config error: device: unknown device {name!r}; valid: cpu, cuda, cuda:N, auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"config error: device: {name!r} requested but no CUDA device is available; use cpu or auto")
    return device


def adversarial_objectives(cfg: Config) -> tuple[Objective, Objective]:
    loss = cfg.train.loss
    d_terms = [AdversarialD(loss.name)]
    if loss.r1_gamma > 0:
        d_terms.append(R1(weight=loss.r1_gamma / 2))
    if loss.name == "wgan-gp" and loss.gp_lambda > 0:
        d_terms.append(GradientPenalty(weight=loss.gp_lambda))
    g_terms = [AdversarialG(loss.name, weight=loss.g_weight)]
    if loss.feature_matching > 0:
        g_terms.append(FeatureMatching(weight=loss.feature_matching))
    if loss.reconstruction.weight > 0:
        g_terms.append(Reconstruction(loss.reconstruction.loss, weight=loss.reconstruction.weight))
    return Objective("L_G", g_terms), Objective("L_D", d_terms)


def build_trainer(cfg: Config) -> Trainer:
    """Plain GAN training (e.g. a teacher). Everything that can fail on user input (data,
    shapes, device) fails here, before a run folder exists."""
    apply_determinism(cfg.deterministic)
    device = resolve_device(cfg.device)
    task = build_task(cfg)
    g_extra = []
    if cfg.train.cycle is not None:
        from kdgan.train.cycle import cycle_training  # registers the cycle families: not at import time

        task, g_spec, d_spec, g_extra = cycle_training(cfg, task)
    else:
        g_spec, d_spec = task.network_specs(cfg)
    torch.manual_seed(cfg.seed)  # network initialisation
    generator, discriminator = build_generator(g_spec), build_discriminator(d_spec)
    meta = {"generator_spec": saved_spec(g_spec), "discriminator_spec": saved_spec(d_spec, DISCRIMINATORS)}
    return assemble_trainer(cfg, task, device, generator, discriminator, g_extra=g_extra, meta=meta)


def assemble_trainer(cfg: Config, task: Task, device: torch.device, generator: torch.nn.Module,
                     discriminator: torch.nn.Module, g_extra=(), d_extra=(), providers=(), meta=None,
                     reference=None) -> Trainer:
    """The adversarial objectives plus any extra (distillation) terms, optimizers and loop
    settings around a generator and discriminator. Learned parts of loss terms (feature
    adapters) train with the generator."""
    info, device = distributed.init(device)
    if cfg.train.batch_size % info.world:
        raise UserError(f"train.batch_size: {cfg.train.batch_size} is the global batch; it must divide evenly "
                        f"over {info.world} processes")
    if cfg.train.channels_last:
        generator = generator.to(memory_format=torch.channels_last)
        discriminator = discriminator.to(memory_format=torch.channels_last)
    if info.enabled:  # before the optimizers: the synchronised layers are new modules
        generator = distributed.sync_batchnorm(generator.to(device), device)
        discriminator = distributed.sync_batchnorm(discriminator.to(device), device)
    g_objective, d_objective = adversarial_objectives(cfg)
    g_task, d_task = task.objective_terms(cfg)
    g_objective = Objective("L_G", [*g_objective.terms, *g_task, *g_extra])
    d_objective = Objective("L_D", [*d_objective.terms, *d_task, *d_extra])
    if cfg.train.adversarial_start and all(t.adversarial for t in g_objective.terms):
        raise UserError(f"train.adversarial_start: {cfg.train.adversarial_start} steps without the discriminator "
                        "need a generator term that runs no discriminator (a reconstruction or task loss, or "
                        "distillation's output and feature terms); this objective has only " + ", ".join(t.name for t in g_objective.terms))
    generator, discriminator = generator.to(device), discriminator.to(device)
    g_objective, d_objective = g_objective.to(device), d_objective.to(device)
    t = cfg.train
    g_params = [*generator.parameters(), *g_objective.parameters()]
    fused = device.type == "cuda"  # one kernel per update instead of one per parameter tensor
    opt_g = torch.optim.Adam(g_params, lr=t.g_optim.lr, betas=t.g_optim.betas, fused=fused or None)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=t.d_optim.lr, betas=t.d_optim.betas, fused=fused or None)
    log = cfg.log
    settings = LoopSettings(
        steps=t.steps, batch_size=t.batch_size, d_steps=t.d_steps, seed=cfg.seed,
        log_every=log.log_every, sample_every=log.sample_every, checkpoint_every=log.checkpoint_every,
        keep_checkpoints=log.keep_checkpoints, num_samples=log.num_samples, progress=log.progress,
        tensorboard=log.tensorboard, nonfinite=cfg.guard.nonfinite,
        rollback_lr_factor=cfg.guard.rollback_lr_factor, max_rollbacks=cfg.guard.max_rollbacks,
        collapse_threshold=cfg.guard.collapse_threshold, lr_decay_start=t.lr_decay_start,
        adversarial_start=t.adversarial_start, fake_pool=t.fake_pool,
        warmup_steps=t.warmup_steps,
    )
    meta = {
        "kdgan_version": __version__,
        **(meta or {}),
        "class_names": task.class_names,
        "config": cfg.model_dump(mode="json"),
        "objectives": [g_objective.formula(), d_objective.formula()],
    }
    with torch.random.fork_rng(devices=[]):  # building its feature network must not move training's draws
        evaluate = task.checkpoint_evaluator(cfg)
    return Trainer(task, generator, discriminator, g_objective, d_objective, opt_g, opt_d,
                   settings, device, ema_decay=t.ema_decay, meta=meta, providers=list(providers),
                   reference=reference, dist=info, precision=t.precision, channels_last=t.channels_last,
                   compile=t.compile, evaluate=evaluate)

"""The one training loop: teacher training and distillation both run through `Trainer`.

A step, for a generator G and discriminator D:

    batch  = task.batch(...)                 real (B, ...) and G's inputs
    fake   = G(*batch.g_inputs)              once per step, with a graph
    D step: d_objective(D(real), D(fake.detach()))   -> update D
    G step: g_objective(D(fake))                     -> update G (D frozen)
    EMA of G's weights

(train.fake_pool swaps some of the D step's fakes for past ones, kdgan.train.pool.)

The loop knows no modality: the task (kdgan.tasks.base.Task) makes the batches, says what D
sees of G's output (a relaxation, for discrete outputs) and renders the sample grids. D may
return several heads (kdgan.losses.DiscriminatorOutput); every term takes them.
Distillation does not change this: it adds terms to the objectives (and the tensors they
need to the step context), see kdgan.losses.terms.
"""

from __future__ import annotations

import copy
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from kdgan.data.sampling import EpochSampler
from kdgan.losses.adversarial import mean_logit
from kdgan.losses.terms import Objective, StepContext, generator_output
from kdgan.tasks.base import Task
from kdgan.train import distributed
from kdgan.train.distributed import DistInfo
from kdgan.train.checkpoint import (
    flatten_optimizer,
    prefixed,
    save_checkpoint,
    unflatten_optimizer,
    unprefixed,
)
from kdgan.errors import TrainingStopped
from kdgan.train.guards import FidelityWatch, FiniteWatch, StopSignals
from kdgan.train.pool import FakePool
from kdgan.train.precision import Precision
from kdgan.train.runlog import RunLog


class EMA:
    """Exponential moving average of a network's weights; buffers (BatchNorm statistics) are
    copied, not averaged, as in StyleGAN. torch.optim.swa_utils.AveragedModel would average
    the integer `num_batches_tracked` buffers too, and wraps names in `module.`.

    The decay ramps up as min(decay, (1 + step) / (10 + step)) so that early samples are not
    dominated by the random initial weights (a 0.999 average has a half-life of 700 steps).
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        # deepcopy copies forward hooks too: the student's feature taps would fire on every
        # forward of the average and overwrite what they recorded of the student
        for module in self.model.modules():
            module._forward_hooks.clear()

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p, 1.0 - decay)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)


@dataclass
class LoopSettings:
    steps: int
    batch_size: int
    d_steps: int
    seed: int
    log_every: int
    sample_every: int
    checkpoint_every: int
    keep_checkpoints: int
    num_samples: int
    progress: bool = True
    tensorboard: bool = True
    nonfinite: str = "stop"  # or "rollback"
    rollback_lr_factor: float = 0.5
    max_rollbacks: int = 3
    collapse_threshold: float = 0.0
    lr_decay_start: float = 1.0  # fraction of `steps`; 1: constant learning rates
    adversarial_start: int = 0  # steps before it train G on its non-adversarial terms alone
    fake_pool: int = 0  # > 0: D also judges past samples from a pool this size (kdgan.train.pool)
    warmup_steps: int = 0  # the rates rise linearly from 1/warmup_steps of their base over these steps

    def lr_factor(self, step: int) -> float:
        """Multiplier of the base learning rates for the step with 0-based index `step`: a
        linear rise over warmup_steps, 1, then linear towards 0 from lr_decay_start * steps (the
        last step keeps a small rate)."""
        start = int(self.lr_decay_start * self.steps)
        decay = 1.0 if step < start else (self.steps - step) / (self.steps - start)
        return decay * min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else decay


@dataclass
class Trainer:
    task: Task
    generator: nn.Module
    discriminator: nn.Module
    g_objective: Objective
    d_objective: Objective
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    settings: LoopSettings
    device: torch.device
    ema_decay: float = 0.999
    meta: dict = field(default_factory=dict)  # saved in every checkpoint (specs, config, ...)
    # Called with each StepContext before its objective: distillation puts the teacher's
    # outputs into ctx.extra here. Each is `provide(ctx) -> None`.
    providers: list = field(default_factory=list)
    # Drawn left of the samples on the same inputs (the teacher, when distilling).
    reference: Callable[..., torch.Tensor] | None = None
    dist: DistInfo = DistInfo()
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    # log.eval_checkpoints: evaluate(generator, step, reference) -> dict, at each checkpoint (rank 0)
    evaluate: Callable[..., dict] | None = None
    # samples -> (B, D) features, for their distance to the reference in a feature space
    fidelity_features: Callable[[torch.Tensor], torch.Tensor] | None = None
    step: int = 0
    # (loss sums, steps each was summed over) since the last log line, from the checkpoint a run resumed from
    log_state: tuple = ({}, {})

    def __post_init__(self) -> None:
        s = self.settings
        self.sampler = EpochSampler(len(self.task), s.batch_size, s.seed)
        # All step randomness (z, labels, penalty mixing) comes from one CPU generator whose
        # state is checkpointed, so a resumed run draws exactly what an uninterrupted one would.
        self.noise = torch.Generator().manual_seed(s.seed + 1)
        self.ema = EMA(self.generator, self.ema_decay) if self.ema_decay > 0 else None
        self.fixed = self.task.fixed_batch(s.num_samples, s.seed + 2)
        # The modules the step calls for gradients: DDP wrappers when several processes run.
        # Frozen uses (D in the G step, penalties) call the plain modules, outside DDP's reducer.
        self.g_forward, self.d_forward = self.generator, self.discriminator
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            # Buffers stay equal on every rank (BatchNorm statistics are synchronised), so
            # there is nothing to broadcast at each forward.
            self.g_forward = DDP(self.generator, device_ids=ids, forward_sync_buffers=False)
            self.d_forward = DDP(self.discriminator, device_ids=ids, forward_sync_buffers=False)
        if self.compile:
            self.g_forward, self.d_forward = torch.compile(self.g_forward), torch.compile(self.d_forward)
        self.amp = Precision(self.precision, self.device)
        self.watch = FiniteWatch()
        self.fidelity = FidelityWatch()
        self.pool = FakePool(s.fake_pool) if s.fake_pool else None
        self.base_lrs = self.optimizer_rates()

    @property
    def sampling_generator(self) -> nn.Module:
        return self.ema.model if self.ema is not None else self.generator

    def optimizer_rates(self) -> list[list[float]]:
        return [[g["lr"] for g in opt.param_groups] for opt in (self.opt_g, self.opt_d)]

    def set_learning_rates(self) -> None:
        """Base rate x the schedule's factor. Constant schedules leave the optimizers' rates
        alone, so that a rate set from Python (or by a rollback) stays as set."""
        if self.settings.lr_decay_start >= 1 and self.step >= self.settings.warmup_steps:
            return
        factor = self.settings.lr_factor(self.step)
        for opt, base in zip((self.opt_g, self.opt_d), self.base_lrs):
            for group, lr in zip(opt.param_groups, base):
                group["lr"] = lr * factor

    def train_step(self) -> dict[str, torch.Tensor]:
        D, d_steps, info = self.discriminator, self.settings.d_steps, self.dist
        self.set_learning_rates()
        if self.step < self.settings.adversarial_start:
            return self.warmup_step()
        for k in range(d_steps):
            idx = self.sampler.indices(self.step * d_steps + k)
            # drawn for the global batch on every rank, then this rank's shard
            batch = self.task.batch(idx, self.noise).shard(info.rank, info.world).to(self.device)
            if self.channels_last and batch.real.ndim == 4:
                batch.real = batch.real.contiguous(memory_format=torch.channels_last)
            last = k == d_steps - 1
            with self.amp.autocast():
                with torch.set_grad_enabled(last):  # earlier D steps need no G graph
                    output = generator_output(self.g_forward(*batch.g_inputs))
                    fake, seen = output.sample, self.task.discriminator_view(output, self.noise)
                # what D judges as fake: this step's samples, or some of them swapped for past ones
                shown = seen.detach() if self.pool is None else self.pool.query(seen, self.noise)
                real_logits = self.d_forward(batch.real, *batch.d_inputs)
                fake_logits = self.d_forward(shown, *batch.d_inputs)
                ctx = StepContext("d", batch, shown if seen is fake else fake.detach(), fake_logits, D,
                                  self.noise, real_logits, view=None if seen is fake else shown)
                for provide in self.providers:
                    provide(ctx)
                d_total, d_values = self.d_objective(ctx)
            self.amp.backward_and_step(d_total, self.opt_d, "d")

        # The G step reuses `fake` (G's weights have not changed since) and freezes D so
        # that backward computes no gradients for D's weights.
        D.requires_grad_(False)
        with self.amp.autocast():
            judged = D(seen, *batch.d_inputs)
            ctx = StepContext("g", batch, fake, judged, D, self.noise, g_logits=output.logits,
                              view=None if seen is fake else seen, g_extras=output.extras or {})
            for provide in self.providers:
                provide(ctx)
            g_total, g_values = self.g_objective(ctx)
        adapters = list(self.g_objective.parameters())
        self.amp.backward_and_step(g_total, self.opt_g, "g",
                                   before_step=lambda: distributed.all_reduce_grads(adapters, info))
        D.requires_grad_(True)
        if self.ema is not None:
            self.ema.update(self.generator, self.step)
        self.watch.observe({**d_values, **g_values}, self.step + 1)  # no synchronisation: read in fit
        self.step += 1
        return {**d_values, **g_values, "d_real_logit": mean_logit(real_logits),
                "d_fake_logit": mean_logit(fake_logits)}

    def warmup_step(self) -> dict[str, torch.Tensor]:
        """A step of train.adversarial_start: the generator learns from its terms that run no
        discriminator (a task's reconstruction or mel loss, distillation's output and feature
        terms); no discriminator, the student's or the teacher's, trains or judges, which makes
        the step several times cheaper where discriminators are most of it (Parallel
        WaveGAN's warm-up)."""
        idx = self.sampler.indices(self.step * self.settings.d_steps)  # the step's first batch, as in a GAN step
        batch = self.task.batch(idx, self.noise).shard(self.dist.rank, self.dist.world).to(self.device)
        with self.amp.autocast():
            output = generator_output(self.g_forward(*batch.g_inputs))
            ctx = StepContext("g", batch, output.sample, None, self.discriminator, self.noise, g_logits=output.logits,
                              adversarial=False, g_extras=output.extras or {})
            for provide in self.providers:
                provide(ctx)
            g_total, g_values = self.g_objective(ctx, adversarial=False)
        adapters = list(self.g_objective.parameters())
        self.amp.backward_and_step(g_total, self.opt_g, "g",
                                   before_step=lambda: distributed.all_reduce_grads(adapters, self.dist))
        if self.ema is not None:
            self.ema.update(self.generator, self.step)
        self.watch.observe(g_values, self.step + 1)
        self.step += 1
        return g_values

    def fit(self, run_dir: Path) -> None:
        s, main = self.settings, self.dist.main
        terms = [t.name for objective in (self.d_objective, self.g_objective) for t in objective.terms]
        log = RunLog(run_dir, self.step, s.steps, s.progress and main, s.tensorboard and main, write=main,
                     terms=terms)
        log.restore(*self.log_state)
        rollbacks = 0
        for provider in self.providers:  # duck-typed: distillation's taps hook modules only while fitting
            getattr(provider, "on_fit_start", lambda: None)()
        try:
            with StopSignals() as signals:
                while self.step < s.steps:
                    values = self.train_step()
                    log.accumulate(values)
                    log.advance()
                    done = self.step == s.steps
                    # Steps that log, draw samples or save (the same on every process) are the
                    # only ones that wait for the device: the finiteness check and, with several
                    # processes, agreeing on a stop signal.
                    boundary = done or any(self.step % k == 0
                                           for k in (s.log_every, s.sample_every, s.checkpoint_every))
                    if boundary:
                        bad = self.watch.check({"generator": self.generator, "discriminator": self.discriminator},
                                               self.step, lambda t: distributed.all_reduce_min(t, self.dist))
                        if bad is not None:
                            rollbacks += 1
                            self.recover(bad, run_dir, log, rollbacks)
                            continue
                    if self.step % s.log_every == 0 or done:
                        log.flush(self.step, reduce=self.reduce_mean)
                    if main and (self.step % s.sample_every == 0 or done):
                        self.sample_and_check(run_dir, log)
                    if self.step % s.checkpoint_every == 0 or done:
                        log_state = log.pending(reduce=self.reduce_mean)  # every process: a collective
                        if main:
                            saved = self.save(run_dir / "checkpoints", log_state)
                            if self.evaluate is not None:
                                self.evaluate_checkpoint(saved, run_dir, log)
                    signum = signals.requested(self.dist) if boundary or not self.dist.enabled else None
                    if signum is not None and not done:
                        self.stop_for_signal(signum, run_dir, log)
        except OSError as err:  # a full disk while writing a sample grid, a log line, eval.json
            raise TrainingStopped(f"cannot write {err.filename or run_dir}: {err.strerror or err}; the last "
                                  f"checkpoint in {run_dir / 'checkpoints'} is intact", 2) from None
        finally:
            log.close()
            for provider in self.providers:
                getattr(provider, "on_fit_end", lambda: None)()

    def sample_and_check(self, run_dir: Path, log: RunLog) -> None:
        """The sample grid, with what it tells: diversity (mode collapse) and, beside a
        reference, how far the samples are from it (in output space, and in a feature space
        when the run has one)."""
        s = self.settings
        # sampling and evaluating may draw from torch's global generator (a metric's subsets); the
        # training's draws (dropout) must not depend on how often they run
        with torch.random.fork_rng(devices=[]):
            grid, spread, fidelity = self.save_samples(run_dir / "samples" / f"step_{self.step:07d}")
        if grid.suffix == ".png":
            log.image("samples", grid, self.step)
        collapsed = spread is not None and spread < s.collapse_threshold
        record = {"step": self.step, "sample_diversity": None if spread is None else round(spread, 6),
                  "collapse": collapsed}
        if collapsed:
            print(f"kdgan: possible mode collapse at step {self.step}: sample diversity "
                  f"{spread:.4f} < {s.collapse_threshold}", file=sys.stderr)
        if fidelity:
            record.update({f"teacher_{k}": round(v, 6) for k, v in fidelity.items()})
            log.scalars({f"fidelity/{k}": v for k, v in fidelity.items()}, self.step)
            warning = self.fidelity.observe(self.step, fidelity["l1"])
            if warning:
                record["fidelity_warning"] = warning
                print(f"kdgan: {warning}", file=sys.stderr)
        log.event(record)

    def evaluate_checkpoint(self, checkpoint: Path, run_dir: Path, log: RunLog) -> None:
        """Quality of the sampling generator into eval.json (what `kdgan evaluate` would write
        for this checkpoint). Its inputs are seeded on their own: training randomness is untouched."""
        from kdgan.metrics.evaluate import write_eval

        G = self.sampling_generator
        was_training = G.training
        with torch.random.fork_rng(devices=[]):  # as sample_and_check: training's draws stay its own
            result = self.evaluate(G, self.step, self.reference)
        G.train(was_training)
        write_eval(run_dir / "eval.json", {**result, "checkpoint": str(checkpoint)})
        log.event({"step": self.step, "eval": {k: v for k, v in result.items() if isinstance(v, float)}})

    def reduce_mean(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        return distributed.all_reduce_mean(tensors, self.dist)

    def stop_for_signal(self, signum: int, run_dir: Path, log: RunLog) -> None:
        """Pre-emption or Ctrl-C: a checkpoint at this step boundary, then a clear exit. The
        log's partial interval goes into the checkpoint, not into log.jsonl."""
        log_state = log.pending(reduce=self.reduce_mean)
        if self.dist.main:
            self.save(run_dir / "checkpoints", log_state)
        name = signal.Signals(signum).name
        raise TrainingStopped(f"stopped by {name} after step {self.step}; checkpoint saved in "
                              f"{run_dir / 'checkpoints'}; continue with --resume --out {run_dir}", 128 + signum)

    def recover(self, bad: str, run_dir: Path, log: RunLog, attempt: int) -> None:
        """Stop with the term's name, or roll back to the last checkpoint with lower rates."""
        s = self.settings
        if s.nonfinite == "stop" or attempt > s.max_rollbacks:
            why = "" if s.nonfinite == "stop" else f" (after {s.max_rollbacks} rollbacks)"
            raise TrainingStopped(f"training diverged: {bad}{why}; the last checkpoint in "
                                  f"{run_dir / 'checkpoints'} is intact")
        from kdgan.train.checkpoint import load_checkpoint

        try:
            meta, tensors = load_checkpoint(run_dir / "checkpoints")
        except Exception:
            raise TrainingStopped(f"training diverged: {bad}; no checkpoint to roll back to yet") from None
        self.load_state(meta, tensors)
        log.restore(*self.log_state)
        self.watch.reset()
        lower = s.rollback_lr_factor ** attempt
        self.base_lrs = [[lr * lower for lr in base] for base in self.base_lrs]
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] *= lower
        log.event({"step": self.step, "event": "rollback", "reason": str(bad),
                   "lr_factor": s.rollback_lr_factor ** attempt})
        print(f"kdgan: {bad}; rolled back to step {self.step}, learning rates x{s.rollback_lr_factor ** attempt:g}",
              file=sys.stderr)

    @torch.no_grad()
    def save_samples(self, path: Path) -> tuple[Path, float | None, dict]:
        """The task's rendering of the fixed inputs' samples (written to `path` + its suffix),
        their diversity and their distances to the reference's (empty without a reference)."""
        G = self.sampling_generator
        was_training = G.training
        G.eval()
        inputs = tuple(t.to(self.device) for t in self.fixed.g_inputs)
        samples = [generator_output(G(*inputs)).sample]
        G.train(was_training)
        names = [f"step {self.step}"]
        if self.reference is not None:
            samples.insert(0, self.reference(*inputs))
            names = ["teacher", f"student, step {self.step}"]
        fidelity = {}
        if self.reference is not None:
            fidelity["l1"] = float((samples[-1].float() - samples[0].float()).abs().mean())
            if self.fidelity_features is not None:
                f_s, f_t = self.fidelity_features(samples[-1].float()), self.fidelity_features(samples[0].float())
                fidelity["feature_l2"] = float((f_s - f_t).norm(dim=1).mean())
        written = self.task.save_samples(path, self.fixed, samples, names)
        return written, self.task.diversity(samples[-1]), fidelity

    # -- state -----------------------------------------------------------------------------

    def state_tensors(self, log_state=({}, {})) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {
            # loss sums since the last log line: a resumed run writes the same next line
            **prefixed("runlog", log_state[0]),
            **prefixed("generator", self.generator.state_dict()),
            **prefixed("discriminator", self.discriminator.state_dict()),
            # learned parts of loss terms (feature adapters); empty for plain GAN training
            **prefixed("g_objective", self.g_objective.state_dict()),
            **prefixed("d_objective", self.d_objective.state_dict()),
            "rng.noise": self.noise.get_state(),
            # torch's own generators: what dropout draws from (a text generator's), so that a
            # resumed run drops the units an uninterrupted one would
            "rng.torch": torch.get_rng_state(),
            **({"rng.cuda": torch.cuda.get_rng_state(self.device)} if self.device.type == "cuda" else {}),
            **(self.pool.state() if self.pool is not None else {}),
        }
        if self.ema is not None:
            tensors.update(prefixed("generator_ema", self.ema.model.state_dict()))
        opt_meta = {}
        for name, opt in (("optim_g", self.opt_g), ("optim_d", self.opt_d)):
            flat, groups = flatten_optimizer(name, opt)
            tensors.update(flat)
            opt_meta[name] = groups
        return tensors, opt_meta

    def save(self, folder: Path, log_state=({}, {})) -> Path:
        tensors, opt_meta = self.state_tensors(log_state)
        meta = {**self.meta, "optimizers": opt_meta, "ema_decay": self.ema_decay, "grad_scalers": self.amp.state(),
                "base_lrs": self.base_lrs, "runlog_count": log_state[1]}
        try:
            return save_checkpoint(folder, self.step, tensors, meta, self.settings.keep_checkpoints)
        except OSError as err:  # a full disk, a lost mount: the earlier checkpoints are untouched
            raise TrainingStopped(f"cannot write the checkpoint of step {self.step} to {folder}: "
                                  f"{err.strerror or err}; the earlier checkpoints are intact", 2) from None

    def load_state(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        self.generator.load_state_dict(unprefixed("generator", tensors))
        self.discriminator.load_state_dict(unprefixed("discriminator", tensors))
        self.g_objective.load_state_dict(unprefixed("g_objective", tensors))
        self.d_objective.load_state_dict(unprefixed("d_objective", tensors))
        if self.ema is not None:
            self.ema.model.load_state_dict(unprefixed("generator_ema", tensors))
        for name, opt in (("optim_g", self.opt_g), ("optim_d", self.opt_d)):
            opt.load_state_dict(unflatten_optimizer(name, tensors, meta["optimizers"][name]))
        self.noise.set_state(tensors["rng.noise"])
        if "rng.torch" in tensors:  # earlier checkpoints did not keep it
            torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        if self.pool is not None:
            self.pool.load(tensors, self.device)
        self.amp.load_state(meta.get("grad_scalers", {}))
        self.step = int(meta["step"])
        counts = meta.get("runlog_count", 0)  # per value; one int in earlier checkpoints
        self.log_state = (unprefixed("runlog", tensors), counts if isinstance(counts, dict) else int(counts))
        # The rates before the schedule's factor, rollbacks' reductions included; checkpoints
        # from before the schedule existed hold them as the optimizers' rates.
        self.base_lrs = meta.get("base_lrs") or self.optimizer_rates()

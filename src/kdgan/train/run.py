"""A run folder: create it (or resume it) around a Trainer.

    RUN/config.yaml              the fully resolved config
    RUN/log.jsonl                loss terms, one JSON line per logging interval
    RUN/events.jsonl             sample diversity (mode-collapse flag), rollbacks
    RUN/tb/                      TensorBoard events
    RUN/samples/step_N.png       sample grids from fixed inputs
    RUN/checkpoints/step_N.*     safetensors + JSON (see checkpoint.py)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kdgan.config import Config, load_config, read_yaml, merge, parse_overrides, to_yaml, validate
from kdgan.errors import UserError
from kdgan.train.build import build_trainer
from kdgan.train.checkpoint import atomic_write_bytes, complete_checkpoints, load_checkpoint
from kdgan.train.loop import Trainer
from kdgan.train.runlog import truncate_log


def resolve_config(config: Path | None, overrides: list[str], run_dir: Path, resume: bool) -> Config:
    """A new run takes --config (+ --set). A resumed run takes its own config.yaml (+ --set,
    e.g. more train.steps); --config, if also given, must be that run's."""
    if not resume:
        if config is None:
            raise UserError("--config: a config file is required (see configs/)")
        return load_config(config, overrides)
    saved = run_dir / "config.yaml"
    if saved.is_file():
        base = read_yaml(saved)
    elif complete_checkpoints(run_dir / "checkpoints"):
        base = load_checkpoint(run_dir)[0]["config"]  # every checkpoint carries its config
    else:
        raise UserError(f"--resume: {run_dir} is not a kdgan run (no config.yaml, no checkpoint)")
    return validate(merge(base, parse_overrides(list(overrides))))


def start_run(cfg: Config, run_dir: Path, resume: bool, overwrite: bool) -> Trainer:
    """Validate, build (teacher training, or distillation when the config has a distill
    section), then create or resume the run folder."""
    if resume and overwrite:
        raise UserError("--resume and --overwrite: choose one")
    if run_dir.exists() and any(run_dir.iterdir()) and not (resume or overwrite):
        raise UserError(f"--out: {run_dir} already exists; pass --resume to continue it or --overwrite to replace it")
    if resume and not complete_checkpoints(run_dir / "checkpoints"):
        raise UserError(f"--resume: {run_dir} has no complete checkpoint to resume from")

    if cfg.distill is not None:
        from kdgan.distill.build import build_distill_trainer

        trainer = build_distill_trainer(cfg)  # fails on bad input before anything is written
    else:
        trainer = build_trainer(cfg)
    if resume:
        meta, tensors = load_checkpoint(run_dir)
        trainer.load_state(meta, tensors)  # every process, whatever the process count that saved it
    if trainer.dist.main:
        if resume:
            truncate_log(run_dir / "log.jsonl", trainer.step)
            truncate_log(run_dir / "events.jsonl", trainer.step)
        elif overwrite and run_dir.exists():
            # rename first: a kill during the deletion leaves no half-deleted run behind
            trash = run_dir.with_name(f".{run_dir.name}.deleting-{os.getpid()}")
            os.replace(run_dir, trash)
            shutil.rmtree(trash)
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(run_dir / "config.yaml", to_yaml(cfg).encode())
    if trainer.dist.enabled:
        import torch.distributed as dist

        dist.barrier()  # nobody starts before rank 0 has prepared (or cleared) the folder
    return trainer

"""`kdgan` command line: one command per stage. User mistakes exit with status 2 and one line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kdgan.errors import UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kdgan")
def cli() -> None:
    """Compress GANs by knowledge distillation."""


@cli.command()
@click.option("--config", "config", type=click.Path(path_type=Path), help="YAML recipe (see configs/).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field, e.g. train.steps=100.")
@click.option("--out", type=click.Path(path_type=Path), help="Run folder [default: runs/<config name>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder.")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and exit.")
def train(config, overrides, out, resume, overwrite, dry_run) -> None:
    """Train a GAN (e.g. a teacher) from a config."""
    _run(config, list(overrides), out, resume, overwrite, dry_run, distill=False)


def _run(config, overrides, out, resume, overwrite, dry_run, distill: bool) -> None:
    from kdgan.config import to_yaml
    from kdgan.train.run import resolve_config, start_run

    if out is None:
        if config is None:
            raise UserError("--out: give the run folder (or --config to name it after the config)")
        out = Path("runs") / config.stem
    cfg = resolve_config(config, overrides, out, resume)
    if distill and cfg.distill is None:
        raise UserError("--config: kdgan distill needs a config with a distill section (see configs/distill_*.yaml)")
    if not distill and cfg.distill is not None:
        raise UserError("--config: this config has a distill section; run it with kdgan distill")
    if dry_run:
        click.echo(to_yaml(cfg), nl=False)
        return
    trainer = start_run(cfg, out, resume, overwrite)
    click.echo(f"run: {out}  ({trainer.g_objective.formula()};  {trainer.d_objective.formula()})", err=True)
    trainer.fit(out)
    click.echo(f"done: {trainer.step} steps; samples in {out / 'samples'}, checkpoints in {out / 'checkpoints'}")


@cli.command()
@click.option("--teacher", help="Shipped teacher name (glyph_teacher), pretrained folder, run folder or checkpoint.")
@click.option("--config", "config", type=click.Path(path_type=Path), help="YAML recipe (see configs/distill_*.yaml).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field.")
@click.option("--out", type=click.Path(path_type=Path), help="Run folder [default: runs/<config name>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder.")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and exit.")
def distill(teacher, config, overrides, out, resume, overwrite, dry_run) -> None:
    """Distil a teacher GAN into a smaller student (the config's distill section)."""
    overrides = list(overrides) + ([f"distill.teacher={teacher}"] if teacher else [])
    _run(config, overrides, out, resume, overwrite, dry_run, distill=True)


@cli.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["safetensors"]), default="safetensors", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
def export(checkpoint, fmt, out) -> None:
    """Export a run's generator (a run folder or a checkpoint) as a pretrained folder:
    config.json + generator.safetensors + discriminator.safetensors."""
    from kdgan.export import export_pretrained

    if not checkpoint.exists():
        raise UserError(f"CHECKPOINT: {checkpoint} does not exist")
    click.echo(f"wrote {export_pretrained(checkpoint, out)}")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except UserError as err:
        click.echo(f"kdgan: {err}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("kdgan: aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)

"""`kdgan` command line: one command per stage. User mistakes exit with status 2 and one line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kdgan.errors import TrainingStopped, UserError
from kdgan.outputs import check_writable_file, check_writable_folder


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kdgan")
def cli() -> None:
    """Compress GANs by knowledge distillation."""


def _check_source(source) -> None:
    """A SOURCE argument is a path that exists or the name of a shipped generator."""
    from kdgan.pretrained import SHIPPED

    if str(source) not in SHIPPED and not Path(source).exists():
        raise UserError(f"SOURCE: {source} does not exist (nor is it a shipped name: {', '.join(SHIPPED)})")


def run_options(command):
    """The options every training command shares (train, distill)."""
    options = [
        click.option("--config", "config", type=click.Path(path_type=Path), help="YAML recipe (see configs/)."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a config field, e.g. train.steps=100."),
        click.option("--out", type=click.Path(path_type=Path), help="Run folder [default: runs/<config name>]."),
        click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint."),
        click.option("--overwrite", is_flag=True, help="Replace an existing run folder."),
        click.option("--dry-run", is_flag=True, help="Print the resolved config and exit."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command(short_help="Train a GAN (e.g. a teacher) from a config.")
@run_options
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
    from kdgan.train import distributed

    check_writable_folder(out)

    trainer = start_run(cfg, out, resume, overwrite)
    main_process = trainer.dist.main
    if main_process:
        world = f", {trainer.dist.world} processes" if trainer.dist.enabled else ""
        click.echo(f"run: {out}  ({trainer.g_objective.formula()};  {trainer.d_objective.formula()}{world})", err=True)
    trainer.fit(out)
    steps = trainer.step
    # gloo can abort at exit unless the DDP wrappers and optimizers are gone before the
    # process group is destroyed
    del trainer
    distributed.shutdown()
    if main_process:
        click.echo(f"done: {steps} steps; samples in {out / 'samples'}, checkpoints in {out / 'checkpoints'}")


@cli.command(short_help="Distil a teacher into a smaller student.")
@click.option("--teacher", help="Shipped name (glyph_teacher), pretrained folder, run folder, checkpoint or .pt file.")
@run_options
@click.option("--trust-pickle", is_flag=True,
              help="Allow a .pt teacher that is a whole pickled module (can run code: trusted files only).")
def distill(teacher, config, overrides, out, resume, overwrite, dry_run, trust_pickle) -> None:
    """Distil a teacher GAN into a smaller student (the config's distill section)."""
    overrides = list(overrides) + ([f"distill.teacher={teacher}"] if teacher else [])
    overrides += ["distill.trust_pickle=true"] if trust_pickle else []
    _run(config, overrides, out, resume, overwrite, dry_run, distill=True)


@cli.command(short_help="Write a generator as safetensors, ONNX or TorchScript.")
@click.argument("source")
@click.option("--format", "fmt", type=click.Choice(["safetensors", "onnx", "torchscript"]), default="safetensors",
              show_default=True, help="onnx and torchscript are the registered exporters (kdgan.registry.EXPORTERS).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="safetensors: a folder. onnx / torchscript: a file ending in .onnx / .pt, or a folder that "
                   "gets generator.onnx / generator.pt.")
def export(source, fmt, out) -> None:
    """Export a generator (run folder, checkpoint, pretrained folder or shipped name).

    safetensors: a config.json + generator.safetensors + discriminator.safetensors folder
    that loads without kdgan's training code. onnx / torchscript: one file with a dynamic
    batch axis, verified against PyTorch on fresh inputs before the command succeeds; it
    carries the generator spec and training config, so `kdgan sample` and `kdgan evaluate`
    take the file (or its folder) as SOURCE."""
    from kdgan.deploy import export_target
    from kdgan.loading import load_gan
    from kdgan.registry import EXPORTERS
    from kdgan.pretrained import SHIPPED, export_pretrained
    from kdgan.metrics.evaluate import resolve_source

    _check_source(source)
    if fmt == "safetensors":
        if str(source) in SHIPPED:
            raise UserError(f"SOURCE: {source} is already a safetensors folder (kdgan.pretrained.load_pretrained)")
        check_writable_folder(out)
        click.echo(f"wrote {export_pretrained(Path(source), out)}")
        return
    target = export_target(out, fmt)
    check_writable_file(target)
    gan = load_gan(source, field="SOURCE")
    if gan.generator_spec is None:
        raise UserError(f"SOURCE: {source} is a pickled module without a kdgan generator spec; export it with "
                        "torch.onnx / torch.jit directly")
    try:  # the training config lets `kdgan evaluate` score the exported file; a .pt teacher has none
        _, train_config, step, _ = resolve_source(source)
        info = {"train_config": train_config, "step": step}
    except UserError:
        train_config, info = None, {}
    task = task_class(train_config)
    error = task.export(fmt, gan.generator, gan.generator_spec, target, info)
    if error is None:  # one traced graph is the generator
        signature = task.export_signature(gan.generator_spec, gan.generator)
        error = EXPORTERS.get(fmt, "--format")(gan.generator, gan.generator_spec, target, info, signature)
    click.echo(f"wrote {target}: verified against PyTorch at batch 1 and 7, max abs error {error:.2e}")


@cli.command(short_help="Generate samples (or translate --input files).")
@click.argument("source")
@click.option("-n", "--num", default=64, show_default=True, help="Number of samples.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path),
              help="Images: a .png path for one grid, or a folder for one PNG per image (with --input: a .png path for "
                   "one input image, else a folder). Audio (vocoders, "
                   "enhancement, conversion, cloning): a .wav for one input, or a folder. Text: a .txt file "
                   "(optional with --text, which also prints). Required otherwise.")
@click.option("--scale", default=1, show_default=True, help="Enlarge the grid by this factor (nearest neighbour).")
@click.option("--input", "inputs", type=click.Path(path_type=Path),
              help="Image-to-image generators: an image or a folder of images to translate (whole images, "
                   "tiled); grey for 1-channel inputs, RGB for 3, RGBA for inpainting (alpha 0 marks the hole). "
                   "Vocoders: a recording (.wav/.flac/.ogg), a saved mel (.npy, (80, frames)) or a folder of them, "
                   "resynthesised to .wav. Enhancement: a noisy recording or a folder of them, cleaned to .wav. "
                   "Conversion and cloning: a recording or a folder of them, said in the target voice. "
                   "Text (seq2seq): a UTF-8 file, one sentence per line, translated line by line.")
@click.option("--text", "text", help="Text (seq2seq): one sentence to translate or restyle; printed.")
@click.option("--reference", "reference",
              help="Cloning: clips of the target voice (at least 1 s each): a file, a folder, or a quoted pattern "
                   "such as 'voice_*.wav'.")
def sample(source, num, seed, out, scale, inputs, reference, text) -> None:
    """Generate samples from a run, checkpoint, pretrained folder, shipped name or exported
    file (.onnx, TorchScript .pt, or the folder `kdgan export` wrote it into);
    image-to-image generators translate the images given with --input, vocoders resynthesise
    the recordings or mels given with it, enhancers clean the noisy recordings given with it."""
    import torch

    from kdgan.deploy import size_multiple
    from kdgan.loading import load_gan
    from kdgan.exported import exported_file, load_exported
    from kdgan.losses.terms import generator_output
    from kdgan.metrics.evaluate import resolve_source

    _check_source(source)
    if num < 1:
        raise UserError("--num: must be at least 1")
    exported = exported_file(source)
    if exported is not None:
        exported = load_exported(exported)
        train_config = exported.train_config
    else:
        try:
            train_config = resolve_source(source)[1]
        except UserError:  # a .pt teacher: no training config
            train_config = None
    task = task_class(train_config)
    if text is not None and inputs is not None:
        raise UserError("--text, --input: give one of them")
    if text is not None and not task.takes_text:
        raise UserError("--text: this generator does not take text; only seq2seq generators translate sentences")
    if out is None and text is None:
        raise UserError("--out: required: where to write the samples")
    if out is not None:
        (check_writable_file if out.suffix.lower() == task.sample_suffix() else check_writable_folder)(out)
    if exported is not None:
        spec, generator, multiple = exported.spec, exported.generator, exported.size_multiple
        if getattr(spec, "in_channels", 0) and multiple is None:
            raise UserError(f"SOURCE: {source} was exported with a fixed input size; export it again with this "
                            "kdgan (H and W are dynamic now), or sample from the run or checkpoint")
    else:
        gan = load_gan(source, field="SOURCE")
        spec, generator = gan.generator_spec, gan.generator
        multiple = size_multiple(generator)
    if spec is not None and getattr(spec, "in_channels", 0):
        from kdgan.translate import translate_files

        if inputs is None:
            raise UserError("--input: this is an image-to-image generator; give an image or a folder of images")
        written = translate_files(generator, spec, inputs, out, multiple)
        click.echo(f"wrote {written[0]}" if written == [out] else f"wrote {len(written)} images to {out}/")
        return
    if text is not None:
        if not text.strip():
            raise UserError("--text: empty; give a sentence")
        translated = task.translate_text(generator, spec, [text])[0]
        click.echo(translated)
        if out is not None:
            partial = out.with_name(out.name + ".partial")
            out.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(translated + "\n", encoding="utf-8")
            partial.replace(out)
        return
    if reference is not None and not task.takes_reference:
        raise UserError("--reference: only a cloning generator takes reference clips")
    if inputs is not None:  # a task whose generator takes files (a vocoder: recordings or mels)
        references = {"references": reference} if task.takes_reference else {}  # the task reads them
        written = task.translate(generator, spec, inputs, out, **references)
        if written is None:
            raise UserError("--input: this generator takes no input files; it generates from latent codes")
        click.echo(f"wrote {len(written)} file{'s' if len(written) != 1 else ''} to {out}")
        return
    if task.takes_text:
        raise UserError("--text / --input: a seq2seq generator translates text; give --text \"a sentence\" or "
                        "--input FILE with one sentence per line")
    written = task.sample_files(generator, spec, num, seed, out)
    if written is not None:
        click.echo(f"wrote {num} samples to {written[0]}")
        return
    with torch.no_grad():
        samples = generator_output(generator(*task.export_signature(spec, generator).example(num, seed))).sample
    task.write_samples(samples, out, scale=scale)
    click.echo(f"wrote {num} samples to {out}")


@cli.command(short_help="Quality and efficiency of a generator -> eval.json.")
@click.argument("source")
@click.option("--samples", default=10000, show_default=True,
              help="Generated samples (reals: the whole dataset); audio tasks: at most this many held-out clips; "
                   "text: at most this many held-out sentences.")
@click.option("--metrics", default="auto", show_default=True,
              help="Comma-separated, the run's task's: fid, kid, is, pr, c2st, psnr, ssim, lpips for images; "
                   "vocoders: mel_l1, mrstft, pesq, stoi, mcd, f0_rmse, vuv_error, dnsmos; enhancement: pesq, stoi, "
                   "si_sdr, dnsmos, mel_l1, mrstft, mcd; conversion and cloning: mcd, similarity, f0_rmse, f0_corr, "
                   "dnsmos; text (seq2seq): bleu, chrf, nll, length_ratio, distinct_2, self_bleu. auto: fid,kid,is,pr,c2st for generation, psnr,ssim,fid,kid for image-to-image tasks, "
                   "mel_l1,pesq,stoi,mrstft,mcd for vocoders, pesq,stoi,si_sdr for enhancement, mcd,similarity "
                   "for conversion and cloning, bleu,chrf for text (lpips needs the lpips package and its AlexNet weights on "
                   "this machine).")
@click.option("--features", help="Feature extractor: glyphs, digits, photos, inception (torch-fidelity's "
              "Inception-v3) or a `kdgan features train` folder [default: the one shipped for the run's dataset].")
@click.option("--inception-weights", type=click.Path(path_type=Path),
              help="The FID Inception-v3 weights file for --features inception (or $KDGAN_INCEPTION_WEIGHTS).")
@click.option("--seed", default=0, show_default=True, help="Seed of the generated samples.")
@click.option("--no-profile", is_flag=True, help="Skip params/MACs/latency.")
@click.option("--out", type=click.Path(path_type=Path), help="Folder for eval.json [default: the run folder].")
def evaluate(source, samples, metrics, features, inception_weights, seed, no_profile, out) -> None:
    """Quality (and efficiency) of a generator: a run folder, a checkpoint, a pretrained
    folder, a shipped name (glyph_teacher, with --out) or an exported file (scored as its
    runtime runs it; eval.json beside it). Writes eval.json, with a real-vs-real reference
    (two halves of the data) for every metric."""
    from kdgan.metrics.evaluate import evaluate_source, known_metrics

    valid = known_metrics()
    chosen = None if metrics == "auto" else [m.strip() for m in metrics.split(",") if m.strip()]
    bad = [m for m in chosen or [] if m not in valid]
    if bad or chosen == []:
        raise UserError(f"--metrics: unknown {', '.join(bad) or '(none)'}; valid: {', '.join(valid)} or auto")
    _check_source(source)
    if samples < 2:
        raise UserError("--samples: need at least 2")
    if inception_weights is not None and not inception_weights.is_file():
        raise UserError(f"--inception-weights: {inception_weights} does not exist")
    result = evaluate_source(source, samples, chosen, features, seed, inception_weights, profile=not no_profile,
                             out=out)

    def shown(values: dict) -> str:
        # the image metrics in a fixed order, then the others as the task wrote them
        keys = dict.fromkeys(("psnr", "ssim", "lpips", "fid", "kid", "is", "precision", "recall", "c2st",
                              *(k for k in values if k in valid or k in ("source_similarity", "char_accuracy"))))
        return ", ".join(f"{k} {values[k]:.4g}" for k in keys if isinstance(values.get(k), float))

    if "fake_samples" in result:
        scored = f"{result['fake_samples']} samples vs {result['real_samples']} real"
    elif "photos" in result:
        scored = f"{len(result['photos'])} held-out photos"
    elif "held_out_sentences" in result:  # unconditional text
        scored = f"{result['samples']} samples, {result['held_out_sentences']} held-out sentences"
    elif "test_a" in result:  # unpaired glyph styles
        a, b = result["domains"]
        scored = f"{result['test_a']} held-out {a} glyphs translated, against {result['test_b']} held-out {b} glyphs"
    elif "sentences" in result:
        scored = f"{result['sentences']} held-out sentences, {result.get('decoding', 'greedy')}"
    else:
        scored = f"{result.get('clips', '?')} held-out clips"
    click.echo(f"step {result['step']}: {shown(result)} ({scored})")
    for name, values in result.get("baselines", {}).items():  # e.g. a vocoder's Griffin-Lim
        click.echo(f"{name} (baseline): {shown(values)}")
    if result.get("held_out_voice"):
        click.echo(f"held-out voice ({result['held_out_voice']['clips']} clips): {shown(result['held_out_voice'])}")
    if result.get("seen_voice"):  # cloning: the same into a training voice
        seen = result["seen_voice"]
        click.echo(f"seen voice {seen['voice']} ({seen['clips']} clips): {shown(seen)}")
    reference = result.get("real_vs_real")
    if reference:
        click.echo(f"real vs real (two halves of {reference['half_samples']}): {shown(reference)}")
    if result.get("features_warning"):
        click.echo(f"kdgan: warning: {result['features_warning']}", err=True)
    fidelity = result.get("fidelity")
    if fidelity:
        parts = [("output L1", "l1"), ("feature L2", "feature_l2"), ("FID to the teacher's samples", "fid")]
        named = ", ".join(f"{label} {fidelity[k]:.4g}" for label, k in parts if k in fidelity)
        # otherwise the task's own metrics with the teacher's output as the reference (a vocoder's)
        click.echo(f"fidelity to the teacher on the same inputs: {named or shown(fidelity)}")


@cli.command(short_help="Report comparing evaluated runs (Markdown + HTML).")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Report folder.")
@click.option("--samples", default=32, show_default=True, help="Images per run in the sample panel.")
@click.option("--seed", default=0, show_default=True, help="Seed of the shared inputs.")
def compare(runs, out, samples, seed) -> None:
    """Compare evaluated runs (the first is the reference, e.g. the teacher): writes
    report.md, report.html, quality.png and samples.png."""
    from kdgan.report import write_report

    for run in runs:
        if not run.is_dir():
            raise UserError(f"RUNS: {run} is not a run folder")
    check_writable_folder(out)
    click.echo(f"wrote {write_report(list(runs), out, samples, seed) / 'report.html'}")


@cli.group()
def features() -> None:
    """Feature extractors for the quality metrics."""


@features.command("train")
@click.argument("dataset")
@click.option("--path", type=click.Path(path_type=Path), help="For folder/npz datasets.")
@click.option("--resolution", default=32, show_default=True)
@click.option("--channels", default=1, show_default=True)
@click.option("--self-supervised", is_flag=True,
              help="No labels needed: a contrastive (SimCLR) encoder trained on the images themselves.")
@click.option("--epochs", type=int, help="[default: 10 for a classifier, 60 self-supervised]")
@click.option("--batch-size", default=128, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
def features_train(dataset, path, resolution, channels, self_supervised, epochs, batch_size, seed, out) -> None:
    """Train the feature extractor that scores generated samples of DATASET: a classifier of
    its labels (refused unless it clearly beats the majority-class rate), or with
    --self-supervised a contrastive encoder that needs no labels. Either is checked on the
    data before it is written. DATASET speech: the speaker encoder of voice conversion, a
    classifier of the embedded corpus's voices (--epochs: hundreds of steps)."""
    if dataset == "speech":  # the speaker encoder: voice conversion's similarity space
        check_writable_folder(out)
        return train_speaker_features(epochs, batch_size, seed, out)
    from kdgan.tasks.image.settings import DataConfig
    from kdgan.data import load_dataset
    from kdgan.metrics.classifier import check_classifier, save_classifier, train_classifier
    from kdgan.metrics.selfsup import check_self_supervised, train_self_supervised
    from pydantic import ValidationError

    try:
        DataConfig(name=dataset, path=path, resolution=resolution, channels=channels)
    except ValidationError as err:
        first = err.errors()[0]
        raise UserError(f"{first['loc'][0]}: {first['msg'].removeprefix('Value error, ')}") from None
    check_writable_folder(out)
    data = load_dataset(dataset, path, resolution, channels)
    say = lambda m: click.echo(m, err=True)  # noqa: E731
    if self_supervised:
        model, report = train_self_supervised(data, epochs or 60, batch_size, seed, log=say)
        check_self_supervised(report)
        save_classifier(model, out, report)
        knn = (f", 10-NN held-out accuracy {report['knn_accuracy']:.3f} (majority class "
               f"{report['majority_rate']:.3f})" if "knn_accuracy" in report else "")
        click.echo(f"wrote {out}: real-vs-real FID {report['real_vs_real_fid']:.3g} vs real-vs-noise "
                   f"{report['real_vs_noise_fid']:.3g}{knn}")
        return
    if data.num_classes < 2:
        raise UserError(f"DATASET: {dataset} has no class labels (a folder's labels are its sub-folders); train "
                        "features without labels with --self-supervised")
    model, report = train_classifier(data, epochs or 10, batch_size, seed, log=say)
    check_classifier(report)
    save_classifier(model, out, report)
    click.echo(f"wrote {out}: held-out accuracy {report['test_accuracy']:.3f} (majority class "
               f"{report['majority_rate']:.3f})")


def train_speaker_features(epochs: int | None, batch_size: int, seed: int, out: Path) -> None:
    """`features train speech`: the speaker encoder on the embedded corpus (kdgan.tasks.audio.speaker);
    --epochs counts hundreds of steps here (default 20: 2,000 steps of 1-second crops)."""
    from kdgan.tasks.audio.corpus import load_embedded_speech
    from kdgan.tasks.audio.speaker import save_speaker_encoder, train_speaker_encoder

    model, report = train_speaker_encoder(load_embedded_speech(), steps=100 * (epochs or 20),
                                          batch_size=min(batch_size, 32), seed=seed,
                                          log=lambda m: click.echo(m, err=True))
    if report["test_accuracy"] < 0.9:
        raise UserError(f"features: the speaker encoder tells the voices apart on only {report['test_accuracy']:.2f} of "
                        "the held-out sentences (needs 0.9); train longer with --epochs")
    save_speaker_encoder(model, out, report)
    click.echo(f"wrote {out}: held-out sentence accuracy {report['test_accuracy']:.3f} over "
               f"{len(model.spec.voices)} voices (majority voice {report['majority_rate']:.3f})")


def task_class(train_config: dict | None):
    """The registered task a run was trained on (from its training config); without one (a
    bare .pt teacher), the image tasks, which read the generator's spec."""
    from kdgan.registry import TASKS

    name = ((train_config or {}).get("task") or {}).get("name", "generation")
    return TASKS.get(name, "task.name")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except UserError as err:
        click.echo(f"kdgan: {err}", err=True)
        sys.exit(2)
    except TrainingStopped as err:
        click.echo(f"kdgan: {err}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("kdgan: aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)

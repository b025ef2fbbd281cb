"""`kdgan evaluate`: quality of a checkpoint's generator against its full real dataset.

Protocol (fixed, so numbers are comparable across runs and machines):
  * fakes: N samples of the EMA generator in eval mode from the task's fixed inputs for
    seed S (z ~ N(0, I); class-conditional: labels cycling through the classes);
  * reals: every image of the run's dataset at the run's resolution, uint8 -> [-1, 1];
  * features: the penultimate layer of the dataset's feature classifier (`kdgan features`);
    IS from its softmax; or, with --features inception, the standard Inception-v3 pool3
    features of torch-fidelity (needs it installed and its weights present);
  * real features are cached under a hash of the dataset's pixels and the extractor's
    weights, so any change to either (data, resolution, channels, count, weights) misses.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file

from kdgan.data.images import to_float
from kdgan.tasks import build_task
from kdgan.registry import METRICS, TASKS
from kdgan.exported import exported_file, load_exported
from kdgan.metrics.c2st import STEPS as C2ST_STEPS, c2st
from kdgan.metrics.classifier import FeatureClassifier
from kdgan.metrics.quality import METRICS as SAMPLE_METRICS, fid, quality_metrics, real_vs_real
from kdgan.train.checkpoint import atomic_save_tensors, atomic_write_bytes

PROTOCOL = 1  # bump when anything above changes: old cache entries then miss
# A feature space is flagged when two halves of the real data are more than this share of the
# samples' FID apart: real-vs-generated is then not far above the noise floor.
FLAT_SPACE = 0.25


def cache_dir() -> Path:
    return Path(os.environ.get("KDGAN_CACHE", Path.home() / ".cache" / "kdgan")) / "stats"


def tensor_digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def stats_key(images: torch.Tensor, classifier: FeatureClassifier) -> str:
    weights = tensor_digest(*[v for _, v in sorted(classifier.state_dict().items())])
    payload = {"protocol": PROTOCOL, "images": tensor_digest(images), "extractor": weights}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


@torch.no_grad()
def features_of(images_float: torch.Tensor, classifier: FeatureClassifier) -> tuple[torch.Tensor, torch.Tensor]:
    return classifier.features_and_logits(images_float)


@torch.no_grad()
def real_features(images: torch.Tensor, classifier: FeatureClassifier, batch_size: int = 500,
                  use_cache: bool = True) -> torch.Tensor:
    """(N, D) features of a uint8 image set, from the cache when the same pixels and weights
    were seen before. Written atomically: a killed run never leaves a torn cache entry."""
    path = cache_dir() / f"{stats_key(images, classifier)}.safetensors"
    if use_cache and path.is_file():
        return load_file(str(path))["features"]
    classifier.eval()
    feats = torch.cat([features_of(to_float(chunk), classifier)[0] for chunk in images.split(batch_size)])
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_save_tensors(path, {"features": feats})
    return feats


def kept(path: Path, compute: Callable[[], dict]) -> dict:
    """compute(), or what an earlier call with the same cache file name computed."""
    if path.is_file():
        return json.loads(path.read_text())
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(result).encode())
    return result


def kept_real_vs_real(real: torch.Tensor, key: str, metrics, seed: int, logits_of=None) -> dict:
    """real_vs_real of the real features, kept in the cache under the real set's and the
    extractor's `key`: every evaluation of a run (each checkpoint's, each student's) reads
    the same halves, and their KID over 100 subsets of 1,000 costs seconds."""
    # the metrics real_vs_real scores (IS only with logits), so that the file names what it holds
    wanted = sorted(m for m in metrics if m in SAMPLE_METRICS and (m != "is" or logits_of is not None))
    return kept(cache_dir() / f"{key}_real_vs_real_{seed}_{'-'.join(wanted)}.json",
                lambda: real_vs_real(real, metrics, seed, logits_of))


def kept_c2st_of_halves(reals: torch.Tensor, seed: int) -> dict:
    """C2ST between two random halves of the real samples (its floor, about 0.5), kept in the
    cache: it trains a classifier for seconds and is the same for every evaluation."""
    def halves() -> dict:
        perm = torch.randperm(len(reals), generator=torch.Generator().manual_seed(seed))
        return c2st(to_float(reals[perm[: len(reals) // 2]]), to_float(reals[perm[len(reals) // 2:]]), seed)

    name = f"{tensor_digest(reals)[:32]}_c2st_halves_{seed}_{C2ST_STEPS}_protocol{PROTOCOL}.json"
    return kept(cache_dir() / name, halves)


@torch.no_grad()
def generator_features(generator, inputs: tuple[torch.Tensor, ...], classifier: FeatureClassifier,
                       batch_size: int, device: torch.device, keep_samples: bool = False, reference=None) -> dict:
    """One pass over generator(*inputs), in batches: `features` and `logits`; with
    `keep_samples` the samples as uint8 (`samples`); with a `reference` generator (the
    teacher) its features on the same inputs and the mean L1 between the two outputs
    (`reference_features`, `reference_l1`)."""
    from kdgan.data.images import to_uint8
    from kdgan.loading import samples_of

    generator.eval()
    classifier.eval()
    out: dict[str, list] = {"features": [], "logits": [], "samples": [], "reference_features": []}
    l1 = 0.0
    for chunk in zip(*(t.split(batch_size) for t in inputs)):
        chunk = tuple(t.to(device) for t in chunk)
        images = generator(*chunk).float().cpu()
        f, l = features_of(images, classifier)
        out["features"].append(f)
        out["logits"].append(l)
        if keep_samples:
            out["samples"].append(to_uint8(images))
        if reference is not None:
            theirs = samples_of(reference(*chunk)).float().cpu()
            l1 += float((images - theirs).abs().flatten(1).mean(1).sum())
            out["reference_features"].append(features_of(theirs, classifier)[0])
    result = {k: torch.cat(v) if v else None for k, v in out.items()}
    result["reference_l1"] = l1 / len(result["features"]) if reference is not None else None
    return result


def evaluate_generator(generator, task, classifier: FeatureClassifier, samples: int, metrics, seed: int = 0,
                       batch_size: int = 250, device: torch.device = torch.device("cpu"), reference=None) -> dict:
    """The metrics of N samples against the task's real data, each with its real-vs-real
    value; with a `reference` (the teacher), the samples' fidelity to it on the same inputs:
    mean output L1, mean feature L2 and the FID between the two sample sets."""
    real = real_features(task.dataset.images, classifier)
    inputs = task.fixed_inputs(samples, seed)
    made = generator_features(generator, inputs, classifier, batch_size, device, keep_samples="c2st" in metrics,
                              reference=reference)
    fake = made["features"]
    result = quality_metrics(real, fake, made["logits"], metrics, seed)
    head = getattr(classifier, "head", None)  # features -> class logits, for the reals' own IS
    result["real_vs_real"] = kept_real_vs_real(real, stats_key(task.dataset.images, classifier), metrics, seed, head)
    floor, value = result["real_vs_real"].get("fid"), result.get("fid")
    if floor is not None and value is not None and floor > FLAT_SPACE * value:
        result["features_warning"] = (f"two halves of the real data are FID {floor:.3g} apart in these features, "
                                      f"the samples {value:.3g}: this feature space barely tells them apart, so its "
                                      "FID/KID/precision/recall say little here (see C2ST)")
    if "c2st" in metrics:  # on the samples themselves: no feature network involved
        reals = task.dataset.images
        test = c2st(to_float(reals), to_float(made["samples"]), seed)
        result["c2st"], result["c2st_ci95"] = test["accuracy"], test["ci95"]
        halves = kept_c2st_of_halves(reals, seed)
        result["real_vs_real"]["c2st"], result["real_vs_real"]["c2st_ci95"] = halves["accuracy"], halves["ci95"]
    if reference is not None:
        theirs = made["reference_features"]
        result["fidelity"] = {"l1": made["reference_l1"], "feature_l2": float((fake - theirs).norm(dim=1).mean()),
                              "fid": fid(theirs, fake), "samples": len(fake)}
    result.update({"seed": seed, "protocol": PROTOCOL})
    return result


def run_folder_of(path: Path) -> Path:
    """The run folder holding a checkpoint (RUN/checkpoints/step_N.json -> RUN)."""
    path = path.resolve()
    if path.is_file():
        path = path.parent
    return path.parent if path.name == "checkpoints" else path


def resolve_source(source: str | Path) -> tuple[str | Path, dict, int, Path | None]:
    """(what load_gan takes, training config, step, run folder or None) for a run folder,
    a checkpoint, a pretrained folder or a shipped name."""
    from kdgan.errors import UserError
    from kdgan.pretrained import SHIPPED, pretrained_folder
    from kdgan.train.checkpoint import load_checkpoint, resolve_checkpoint

    if exported_file(source) is not None:
        raise UserError(f"SOURCE: {source} is an exported file; give the run or checkpoint it came from")
    if str(source) in SHIPPED or (Path(source) / "config.json").is_file():
        config = json.loads((pretrained_folder(source) / "config.json").read_text())
        return source, config["train_config"], config["source"]["step"], None
    ckpt = resolve_checkpoint(Path(source))
    meta, _ = load_checkpoint(ckpt)
    return ckpt, meta["config"], meta["step"], run_folder_of(ckpt)


def exported_config(exported) -> dict:
    """The training config an exported file recorded (kdgan.exported.Exported)."""
    from kdgan.errors import UserError

    if exported.train_config is None:
        raise UserError(f"SOURCE: {exported.path} does not record its training config (exported by an older "
                        "kdgan); export it again, or evaluate the run it came from")
    return exported.train_config


def evaluate_source(source: str | Path, samples: int, metrics, features: str | None, seed: int = 0,
                    inception_weights: Path | None = None,
                    profile: bool = True, out: Path | None = None) -> dict:
    """Evaluate a run folder, checkpoint, pretrained folder, shipped generator or exported file;
    the result is also merged into OUT/eval.json (default: the run folder, or the exported
    file's folder), one entry per step."""
    from kdgan.config import validate
    from kdgan.loading import load_gan
    from kdgan.errors import UserError
    from kdgan.metrics.efficiency import exported_profile, profile_generator
    from kdgan.outputs import check_writable_folder

    exported = exported_file(source)
    if exported is not None:
        exported = load_exported(exported)
        loadable, train_config, step, run_dir = exported.path, exported_config(exported), exported.step, None
        out = out or exported.path.parent
    else:
        loadable, train_config, step, run_dir = resolve_source(source)
        out = out or run_dir
    if out is None:
        raise UserError(f"--out: {source} is not a run folder; give a folder for eval.json")
    check_writable_folder(out)
    if exported is not None:
        generator = exported.generator
    else:
        generator = load_gan(loadable, field="SOURCE").generator
    cfg = validate(train_config)
    task = build_task(cfg)
    # absolute, so that `kdgan compare` finds it from any working folder (a shipped name stays a name)
    where = Path(loadable)
    result = {"step": step, "checkpoint": str(where.resolve() if where.exists() else loadable), "task": cfg.task.name}
    chosen = list(metrics or [])
    metrics = chosen or list(task.default_metrics)
    unsupported = [m for m in metrics if m not in task.metric_names]
    if unsupported:
        verb = "does" if len(unsupported) == 1 else "do"
        raise UserError(f"--metrics: {', '.join(sorted(unsupported))} {verb} not apply to task {cfg.task.name}; "
                        f"valid: {', '.join(task.metric_names)}")
    options = {"samples": samples, "seed": seed, "features": features, "inception_weights": inception_weights,
               "chosen": chosen}
    result.update(task.evaluate(generator, cfg, metrics, options))
    if profile and exported is not None:
        result["profile"] = exported_profile(exported, lambda n: task.fixed_inputs(n, seed))
    elif profile:
        result["profile"] = profile_generator(generator, lambda n: task.fixed_inputs(n, seed),
                                              onnx=task.onnx_profile, onnx_module=task.onnx_module)
        unit = task.cost_unit()
        if unit is not None:
            result["profile"]["cost_unit"] = {"name": unit[0], "per_sample": unit[1]}
    out.mkdir(parents=True, exist_ok=True)
    write_eval(out / "eval.json", result)
    return result


def evaluate_generation(generator, task, cfg, metrics: list[str], chosen: list[str], features: str | None,
                        samples: int, seed: int, inception_weights: Path | None) -> dict:
    """Sample quality in the run's feature space and by C2ST, and for a distilled run its
    fidelity to the teacher. `chosen`: the metrics the user named (empty: defaults)."""
    from kdgan.loading import load_gan
    from kdgan.errors import UserError

    classifier, info, name = generation_extractor(cfg, features, "--features", inception_weights)
    self_supervised = info.get("objective") == "simclr"
    if self_supervised:  # a contrastive encoder has no class posterior
        if "is" in chosen:
            raise UserError(f"--metrics: is needs class probabilities; {name} is a self-supervised extractor")
        metrics = [m for m in metrics if m != "is"]
    teacher = None
    if cfg.distill is not None and cfg.distill.teacher:  # how faithfully the student follows its teacher
        teacher = load_gan(cfg.distill.teacher, cfg.distill.trust_pickle, field="distill.teacher").generator
    return {"features": name, "features_test_accuracy": info.get("test_accuracy"),
            "features_kind": "self-supervised" if self_supervised else "classifier",
            **evaluate_generator(generator, task, classifier, samples, metrics, seed, reference=teacher)}


def evaluate_image_source(generator, task, cfg, metrics, features: str | None, seed: int,
                          inception_weights: Path | None = None) -> dict:
    """PSNR/SSIM (and LPIPS when asked for) on the held-out photos; FID/KID on patches when an
    extractor fits the channels (the shipped `photos` extractor is RGB)."""
    from kdgan.distill.features import load_lpips
    from kdgan.errors import UserError
    from kdgan.metrics.classifier import load_classifier
    from kdgan.tasks.image.metrics import evaluate_image_task

    lpips_net = None
    if "lpips" in metrics:
        if not task.has_ground_truth:
            raise UserError(f"--metrics: lpips compares with ground truth, which task {cfg.task.name} has not")
        lpips_net = load_lpips("--metrics lpips")

    classifier, name = None, features or ("photos" if cfg.data.channels == 3 else None)
    if {"fid", "kid"} & set(metrics) and name is not None:
        classifier, _ = load_classifier(name, inception_weights)
        if classifier.spec is not None and classifier.spec.channels != cfg.data.channels:
            raise UserError(f"--features: {name} takes {classifier.spec.channels}-channel images, the run makes "
                            f"{cfg.data.channels}; train one with `kdgan features train`")
    result = evaluate_image_task(generator, task, classifier, metrics, seed, lpips=lpips_net)
    result["features"] = name if classifier is not None else None
    if classifier is None and {"fid", "kid"} & set(metrics):
        result["features_warning"] = (
            f"no FID/KID: no feature extractor ships for {cfg.data.channels}-channel images; train one with "
            f"`kdgan features train folder --path FOLDER --channels {cfg.data.channels} --resolution "
            f"{cfg.data.resolution} --self-supervised --out FEATURES`, then pass --features FEATURES")
    return result


def checkpoint_evaluator(cfg, task):
    """`evaluate(generator, step, reference) -> dict` for log.eval_checkpoints, or None; with
    a reference (the teacher, when distilling) generation runs also measure their fidelity to
    it. The extractor is loaded here, at build time, so a missing one fails before the run."""
    from kdgan.metrics.classifier import load_classifier
    from kdgan.tasks.image.metrics import evaluate_image_task

    if not cfg.log.eval_checkpoints:
        return None
    if cfg.task.name != "generation":
        name = cfg.log.eval_features or ("photos" if cfg.data.channels == 3 else None)
        classifier = load_classifier(name)[0] if name else None

        def evaluate_images(generator, step: int, reference=None) -> dict:
            return {"step": step, "task": cfg.task.name, "features": name,
                    **evaluate_image_task(generator, task, classifier, ("psnr", "ssim", "fid", "kid"), seed=0)}

        return evaluate_images
    classifier, info, name = generation_extractor(cfg, cfg.log.eval_features, "log.eval_features")

    def evaluate_samples(generator, step: int, reference=None) -> dict:
        # distilling: the reference is the teacher, and the student's fidelity to it is measured too
        result = evaluate_generator(generator, task, classifier, cfg.log.eval_samples, ["fid", "kid"], seed=0,
                                    reference=reference)
        return {"step": step, "task": "generation", "features": name,
                "features_test_accuracy": info.get("test_accuracy"), **result}

    return evaluate_samples


def generation_extractor(cfg, features: str | None, field: str, inception_weights: Path | None = None):
    """(extractor, its config, its name) scoring a generation run: `features`, or the one
    shipped for the run's dataset. A user's folder has none: the line says what to run."""
    from kdgan.errors import UserError
    from kdgan.metrics.classifier import SHIPPED_FEATURES, load_classifier

    name = features or cfg.data.name
    if features is None and name not in SHIPPED_FEATURES:
        data = f" --path {cfg.data.path}" if cfg.data.path else ""
        raise UserError(f"{field}: no feature extractor ships for data.name {name}; train one on the run's images "
                        f"with `kdgan features train {name}{data} --resolution {cfg.data.resolution} --channels "
                        f"{cfg.data.channels} --self-supervised --out FEATURES` (or without --self-supervised when "
                        f"its sub-folders are classes), then pass {field if field.startswith('--') else field + ':'} "
                        "FEATURES")
    classifier, info = load_classifier(name, inception_weights)
    spec = classifier.spec  # None: the extractor takes any size (Inception resizes)
    if spec is not None and (spec.resolution, spec.channels) != (cfg.data.resolution, cfg.data.channels):
        raise UserError(f"{field}: {name} expects {spec.channels}x{spec.resolution}px images, the run makes "
                        f"{cfg.data.channels}x{cfg.data.resolution}px; train one with `kdgan features train`")
    return classifier, info, name


def write_eval(path: Path, result: dict) -> None:
    entries = json.loads(path.read_text())["evaluations"] if path.is_file() else []
    entries = [e for e in entries if e["step"] != result["step"]] + [result]
    entries.sort(key=lambda e: e["step"])
    atomic_write_bytes(path, json.dumps({"evaluations": entries}, indent=2).encode())


def known_metrics() -> list[str]:
    """Every metric name some registered task evaluates (for --metrics), in a stable order."""
    names = [m for task in TASKS.entries().values() for m in task.metric_names]
    return list(dict.fromkeys([*names, *METRICS.names()]))

"""Load a GAN (generator, discriminator and their specs) from any source: a shipped name, a
pretrained folder, a run folder, a checkpoint or a torch.save file. Distillation loads its
teacher this way; sample, evaluate, export and compare load what they are given."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from pydantic import BaseModel
from torch import nn

from kdgan.errors import UserError
from kdgan.pretrained import SHIPPED, load_pretrained
from kdgan.families import build_discriminator, build_generator, read_discriminator_spec, read_generator_spec
from kdgan.train.checkpoint import load_checkpoint, unprefixed


@dataclass
class GAN:
    """A frozen generator (and discriminator, when the source has one) with their specs."""

    generator: nn.Module
    discriminator: nn.Module | None = None
    generator_spec: BaseModel | None = None  # its family's spec (kdgan.families); None for a user's own module
    discriminator_spec: BaseModel | None = None
    class_names: list[str] = field(default_factory=list)
    source: str = "python"

    def generate(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The teacher's samples for the generator inputs (see `samples_of`)."""
        return samples_of(self.generator(*inputs))

    def freeze(self) -> "GAN":
        """Loaded networks (teachers above all) are fixed functions: eval mode (BatchNorm uses its running statistics)
        and no gradients for their weights."""
        for net in (self.generator, self.discriminator):
            if net is not None:
                net.eval().requires_grad_(False)
        return self


def samples_of(output) -> torch.Tensor:
    """A teacher generator's output -> its samples. A forward may return the samples (images
    (B, C, H, W), audio (B, 1, T), ...), or a tuple/list whose first element is the samples
    (`(images, features)` as many codebases return, or kdgan's GeneratorOutput); the other
    elements are ignored here."""
    if isinstance(output, (tuple, list)) and output and torch.is_tensor(output[0]):
        return output[0]
    if torch.is_tensor(output):
        return output
    what = type(output).__name__
    if isinstance(output, (tuple, list)):
        what += f" whose first element is a {type(output[0]).__name__}" if output else " that is empty"
    raise UserError(f"--teacher: the teacher generator returned a {what}; its forward must return the samples "
                    "(images (B, C, H, W), audio (B, 1, T), ...), or a tuple/list whose first element is them")


TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def load_torch_file(path: Path, trust_pickle: bool = False, field: str = "--teacher") -> GAN:
    """A teacher saved with torch.save. By default it is read with weights_only=True, which
    unpickles tensors and plain containers only, so a file crafted to run code on loading is
    refused before anything runs. Accepted without opt-in: a dict with `generator_spec` and
    `generator` (a state dict), optionally `discriminator_spec` and `discriminator`. A whole
    pickled nn.Module needs trust_pickle=True (`--trust-pickle`): only for files you trust."""
    obj = read_torch_file(path, trust_pickle, field)
    if isinstance(obj, nn.Module):
        return GAN(obj, source=str(path)).freeze()
    if isinstance(obj, dict) and "generator_spec" in obj and "generator" in obj:
        g_spec = read_generator_spec(obj["generator_spec"])
        generator = build_generator(g_spec)
        _load_named(generator, obj["generator"], path, "generator", field)
        discriminator, d_spec = None, None
        if "discriminator_spec" in obj and "discriminator" in obj:
            d_spec = read_discriminator_spec(obj["discriminator_spec"])
            discriminator = build_discriminator(d_spec)
            _load_named(discriminator, obj["discriminator"], path, "discriminator", field)
        generator, discriminator, g_spec, d_spec = a_to_b(generator, discriminator, g_spec, d_spec)
        return GAN(generator, discriminator, g_spec, d_spec, source=str(path)).freeze()
    raise UserError(f"{field}: {path} is neither a module nor a dict with generator_spec + generator "
                    "(a bare state dict does not say which network it belongs to)")


def read_torch_file(path: Path, trust_pickle: bool, field: str = "--teacher") -> object:
    """torch.load with weights_only=True unless the user trusts the file, each failure as one
    line that says what the file is and what would work."""
    import pickle
    import zipfile

    from kdgan.exported import is_torchscript

    with open(path, "rb") as f:
        head = f.read(2)
    if head == b"PK" and not zipfile.is_zipfile(path):
        raise UserError(f"{field}: {path} is a damaged zip archive (truncated or cut short?); copy it again")
    if not zipfile.is_zipfile(path) and head[:1] != b"\x80":  # torch.save: a zip, or (legacy) a pickle
        raise UserError(f"{field}: {path} is not a file written by torch.save (neither a zip archive nor a "
                        "pickle); give a torch.save file, a run folder, a checkpoint or a pretrained folder")
    if is_torchscript(path):
        raise UserError(f"{field}: {path} is a TorchScript file; load it with torch.jit.load and pass the "
                        "module from Python (kdgan.distill.Teacher(module))")
    try:
        if trust_pickle:  # the user's explicit opt-in (--trust-pickle): a full unpickle can run code
            return torch.load(path, map_location="cpu", weights_only=False)
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if trust_pickle:
            raise UserError(f"{field}: cannot unpickle {path}: {err}") from None
        refused = re.search(r"GLOBAL ([\w.]+)", str(err))
        if refused is None:
            why = re.search(r"WeightsUnpickler error: \s*(.+)", str(err))
            raise UserError(f"{field}: {path} is damaged or not a torch.save file (the weights-only unpickler "
                            f"stopped at: {why.group(1).strip() if why else 'an unknown opcode'})") from None
        opt_in = (", or pass --trust-pickle if you trust where the file came from" if field == "--teacher"
                  else " (kdgan distill --trust-pickle loads it as a teacher, if you trust where it came from)")
        raise UserError(
            f"{field}: {path} holds a pickled object ({refused.group(1)}), not only tensors; loading it could "
            f"run code. Save a dict with generator_spec + generator state dict instead{opt_in}") from None
    except Exception as err:  # unpickling damaged bytes can raise nearly anything (EOFError, ValueError, ...)
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise UserError(f"{field}: cannot read {path}: {first}") from None


def _load_named(net: nn.Module, state: dict, path: Path, what: str, field: str = "--teacher") -> None:
    """load_state_dict with one clear line naming the first mismatched parameter."""
    own = net.state_dict()
    for key, value in state.items():
        if key not in own:
            raise UserError(f"{field}: {path}: {what} has no parameter {key!r} (wrong architecture?)")
        if tuple(own[key].shape) != tuple(value.shape):
            raise UserError(f"{field}: {path}: {what}.{key} has shape {tuple(value.shape)}, the spec's network "
                            f"expects {tuple(own[key].shape)}")
    missing = [k for k in own if k not in state]
    if missing:
        raise UserError(f"{field}: {path}: {what} is missing parameter {missing[0]!r}")
    net.load_state_dict(state)


def a_to_b(generator: nn.Module, discriminator: nn.Module | None, g_spec, d_spec) -> tuple:
    """(generator, discriminator, their specs) of the A -> B half when they are a CycleGAN's
    (kdgan.nets.cycle: a teacher is used in that direction), else unchanged."""
    if getattr(g_spec, "arch", None) != "cycle":
        return generator, discriminator, g_spec, d_spec
    g_spec = read_generator_spec(g_spec.a_to_b, "generator_spec.a_to_b")
    if discriminator is not None and getattr(d_spec, "arch", None) == "cycle":
        discriminator = discriminator.judge_b
        d_spec = read_discriminator_spec(d_spec.judge_b, "discriminator_spec.judge_b")
    return generator.a_to_b, discriminator, g_spec, d_spec


def load_gan(source: str | Path, trust_pickle: bool = False, field: str = "--teacher") -> GAN:
    """Any generator source as a frozen GAN; `field` names the argument in error lines."""
    path = Path(source)
    if path.suffix in TORCH_SUFFIXES and path.is_file():
        return load_torch_file(path, trust_pickle, field)
    if str(source) in SHIPPED or (path / "config.json").is_file():
        g, d, config = load_pretrained(source)
        d_spec = read_discriminator_spec(config["discriminator"]) if config.get("discriminator") else None
        return GAN(g, d, read_generator_spec(config["generator"]), d_spec, config.get("class_names", []),
                   str(source)).freeze()
    if not path.exists():
        raise UserError(
            f"{field}: {source} does not exist; give a run folder, a checkpoint, a pretrained "
            f"folder or a shipped teacher ({', '.join(SHIPPED)})"
        )
    meta, tensors = load_checkpoint(path)
    g_spec = read_generator_spec(meta["generator_spec"])
    d_spec = read_discriminator_spec(meta["discriminator_spec"])
    g_key = "generator_ema" if any(k.startswith("generator_ema.") for k in tensors) else "generator"
    generator, discriminator = build_generator(g_spec), build_discriminator(d_spec)
    _load_named(generator, unprefixed(g_key, tensors), path, "generator", field)
    _load_named(discriminator, unprefixed("discriminator", tensors), path, "discriminator", field)
    generator, discriminator, g_spec, d_spec = a_to_b(generator, discriminator, g_spec, d_spec)
    if ((meta.get("config") or {}).get("train") or {}).get("adversarial_start", 0) >= meta["step"]:
        discriminator, d_spec = None, None  # it never trained (maximum likelihood only): no judge to learn from
    return GAN(generator, discriminator, g_spec, d_spec, meta.get("class_names", []), str(source)).freeze()


class Teacher(GAN):
    """A GAN in the teacher's role, e.g. a user's own modules for distillation:
    `Teacher(my_generator, my_discriminator)`."""

"""Pretrained folders (the shipped ones live here: kdgan/pretrained/NAME): `config.json` +
`generator.safetensors` (+ `discriminator.safetensors`).

A folder is rebuilt from its config alone (diffusers' save_pretrained / from_pretrained), so
a user needs neither the training code nor the run folder, and loading runs no code.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from kdgan.errors import UserError
from kdgan.families import build_discriminator, build_generator, read_discriminator_spec, read_generator_spec
from kdgan.train.checkpoint import atomic_save_tensors, atomic_write_bytes, load_checkpoint, unprefixed

SHIPPED = ("glyph_teacher", "sr_teacher", "inpainting_teacher", "edges_teacher", "vocoder_teacher", "enhance_teacher",
           "convert_teacher", "clone_teacher", "enhance_mask_teacher", "convert_cycle_teacher", "translate_teacher",
           "cyclegan_teacher", "style_teacher")


def export_pretrained(checkpoint: Path, out: Path) -> Path:
    """Write a run's checkpoint (the EMA generator when there is one) as a pretrained folder."""
    meta, tensors = load_checkpoint(checkpoint)
    g_key = "generator_ema" if any(k.startswith("generator_ema.") for k in tensors) else "generator"
    d_key, g_spec, d_spec = "discriminator", meta["generator_spec"], meta["discriminator_spec"]
    if g_spec.get("arch") == "cycle":  # a CycleGAN is shipped as its A -> B half (B -> A stays in the run)
        g_key, d_key = f"{g_key}.a_to_b", "discriminator.judge_b"
        g_spec, d_spec = g_spec["a_to_b"], d_spec["judge_b"]
    # A discriminator that never trained (train.adversarial_start at or past the checkpoint's
    # step: maximum likelihood only) is its random initialisation: shipping it would offer
    # teacher-discriminator terms a judge that knows nothing.
    trained_d = ((meta.get("config") or {}).get("train") or {}).get("adversarial_start", 0) < meta["step"]
    out.mkdir(parents=True, exist_ok=True)
    atomic_save_tensors(out / "generator.safetensors", unprefixed(g_key, tensors))
    if trained_d:
        atomic_save_tensors(out / "discriminator.safetensors", unprefixed(d_key, tensors))
    else:
        (out / "discriminator.safetensors").unlink(missing_ok=True)
    config = {
        "kdgan_version": meta.get("kdgan_version"),
        "generator": g_spec,
        "discriminator": d_spec if trained_d else None,
        "class_names": meta.get("class_names", []),
        "source": {"checkpoint": str(checkpoint), "step": meta["step"], "generator_weights": g_key},
        "train_config": meta.get("config"),
    }
    atomic_write_bytes(out / "config.json", json.dumps(config, indent=2).encode())
    return out


def pretrained_folder(name_or_path: str | Path) -> Path:
    if str(name_or_path) in SHIPPED:
        return Path(str(resources.files("kdgan.pretrained").joinpath(str(name_or_path))))
    path = Path(name_or_path)
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: not a pretrained folder (no config.json); shipped: {', '.join(SHIPPED)}")
    return path


def load_pretrained(name_or_path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, nn.Module | None, dict]:
    """(generator, discriminator or None, config) in eval mode. `name_or_path` is a shipped
    name (`glyph_teacher`) or a folder written by `export_pretrained`."""
    folder = pretrained_folder(name_or_path)
    config = json.loads((folder / "config.json").read_text())
    generator = build_generator(read_generator_spec(config["generator"]))
    generator.load_state_dict(load_file(str(folder / "generator.safetensors")))
    discriminator = None
    if (folder / "discriminator.safetensors").is_file():
        discriminator = build_discriminator(read_discriminator_spec(config["discriminator"]))
        discriminator.load_state_dict(load_file(str(folder / "discriminator.safetensors")))
        discriminator = discriminator.to(device).eval()
    return generator.to(device).eval(), discriminator, config

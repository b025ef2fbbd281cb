"""Each network family has its own typed spec; the version-1 flat specs of the shipped folders
and early checkpoints are converted on reading."""

from __future__ import annotations

import json

import pytest
import torch

from kdgan.errors import UserError
from kdgan.pretrained import SHIPPED, pretrained_folder
from kdgan.families import read_discriminator_spec, read_generator_spec, saved_spec
from kdgan.nets.specs import (LatentDiscriminatorSpec, LatentSpec, PatchSpec, ResnetI2ISpec, SRSpec, SubpixelSpec,
                             UNetSpec)
from kdgan.registry import DISCRIMINATORS
from kdgan.tasks.audio.nets import VocoderDiscriminatorSpec
from kdgan.tasks.audio.convert_nets import MelConverterSpec, MelDiscriminatorSpec
from kdgan.tasks.audio.vocos import VocosSpec
from kdgan.tasks.audio.mask_net import SpectralMaskSpec
from kdgan.tasks.audio.waveunet import WaveUNetSpec
from kdgan.tasks.text.transformer import TransformerSpec

# What each shipped folder's flat spec means, written out by hand from its config.json.
EXPECTED = {
    "glyph_teacher": (LatentSpec(arch="dcgan", width=64, latent_dim=128, resolution=32, channels=1),
                      LatentDiscriminatorSpec(arch="dcgan", width=64, resolution=32, channels=1)),
    "sr_teacher": (SRSpec(arch="sr", width=64, resolution=64, channels=3, in_channels=3, blocks=8, scale=4),
                   PatchSpec(width=32, channels=3, in_channels=3, layers=3)),
    "inpainting_teacher": (UNetSpec(arch="unet", width=32, resolution=64, channels=3, in_channels=4, levels=4),
                           PatchSpec(width=32, channels=3, in_channels=4, layers=3)),
    "edges_teacher": (UNetSpec(arch="unet", width=32, resolution=64, channels=3, in_channels=1, levels=4),
                      PatchSpec(width=32, channels=3, in_channels=1, layers=3)),
    "vocoder_teacher": (VocosSpec(width=256, layers=8, expansion=3, n_mels=80, n_fft=1024, hop=256,
                                  magnitude_prior="pinv"), VocoderDiscriminatorSpec(width=8)),
    "enhance_teacher": (WaveUNetSpec(width=32, depth=4, context=4), VocoderDiscriminatorSpec(width=4)),
    "enhance_mask_teacher": (SpectralMaskSpec(width=256, layers=6), VocoderDiscriminatorSpec(width=4)),
    "convert_teacher": (MelConverterSpec(width=256, layers=6), MelDiscriminatorSpec(width=64)),
    "clone_teacher": (MelConverterSpec(width=256, layers=6, speaker=64), MelDiscriminatorSpec(width=64)),
    "convert_cycle_teacher": (MelConverterSpec(width=256, layers=6), MelDiscriminatorSpec(width=64)),
    # its tokenizer is the one its recipe trains on the corpus (retrained here: the same JSON); a
    # maximum-likelihood teacher ships no discriminator
    "translate_teacher": (lambda: TransformerSpec(width=256, heads=4, encoder_layers=3, decoder_layers=3, expansion=4,
                                                  vocab=8000, max_len=128, dropout=0.1,
                                                  tokenizer=_corpus_tokenizer("translate_teacher")), None),
    "style_teacher": (lambda: TransformerSpec(width=256, heads=4, encoder_layers=3, decoder_layers=3, expansion=4,
                                              vocab=8000, max_len=128, dropout=0.1,
                                              tokenizer=_corpus_tokenizer("style_teacher")), None),
    # the first shipped folder written with typed specs: version 2 is in its config.json
    "cyclegan_teacher": (ResnetI2ISpec(arch="resnet-i2i", width=32, resolution=32, channels=1, in_channels=1, blocks=6),
                         PatchSpec(width=32, channels=1, layers=2)),
}
WRITTEN_WITH_VERSIONS = {"cyclegan_teacher"}


def _corpus_tokenizer(recipe: str) -> str:
    from kdgan.config import load_config
    from kdgan.tasks import build_task

    return build_task(load_config(f"configs/{recipe}.yaml")).tokenizer.to_str()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_folders_are_read_as_their_families_specs_and_load(name):
    from kdgan.loading import load_gan

    config = json.loads((pretrained_folder(name) / "config.json").read_text())
    if name not in WRITTEN_WITH_VERSIONS:  # written before the typed specs, or a family's first version
        assert "spec_version" not in config["generator"]
    g, d = EXPECTED[name]
    g = g() if callable(g) else g
    assert read_generator_spec(config["generator"]) == g
    assert (config["discriminator"] is None) if d is None else read_discriminator_spec(config["discriminator"]) == d
    teacher = load_gan(name)  # every weight of the folder fits the network the new spec builds
    assert teacher.generator_spec == g and teacher.discriminator_spec == d


def test_the_subpixel_heads_flat_fields_get_their_own_names():
    flat = {"arch": "dcgan-subpixel", "width": 8, "latent_dim": 16, "resolution": 32, "channels": 1,
            "num_classes": 0, "spectral_norm": False, "in_channels": 0, "blocks": 2, "scale": 1, "head_residual": 0}
    assert read_generator_spec(flat) == SubpixelSpec(arch="dcgan-subpixel", width=8, latent_dim=16, resolution=32,
                                                     channels=1, upscale=4, head_layers=2)
    assert read_generator_spec({**flat, "scale": 2}).upscale == 2  # scale 1 meant the default x4


def test_saved_specs_carry_their_version_and_read_back_unchanged():
    spec = UNetSpec(arch="unet", width=8, resolution=32, channels=3, in_channels=1, levels=3)
    saved = saved_spec(spec)
    assert saved["spec_version"] == 2 and saved["levels"] == 3
    assert read_generator_spec(json.loads(json.dumps(saved))) == spec
    d = PatchSpec(width=8, channels=3)
    assert read_discriminator_spec(saved_spec(d, DISCRIMINATORS)) == d


def test_a_newer_spec_version_is_refused_in_one_line():
    with pytest.raises(UserError, match="spec version 9 of 'unet' is newer than this kdgan reads"):
        read_generator_spec({"arch": "unet", "width": 8, "resolution": 32, "channels": 3, "in_channels": 1,
                             "spec_version": 9})


def test_a_checkpoint_with_a_flat_spec_still_loads(tmp_path, run_cli):
    """A run saved by the flat-spec kdgan: its checkpoint JSON rewritten to the version-1
    fields; loading, sampling and distilling from it work as before."""
    from conftest import ROOT, set_args, tiny_overrides
    from kdgan.loading import load_gan

    run = tmp_path / "run"
    assert run_cli("train", "--config", ROOT / "configs/digits_teacher.yaml", "--out", run,
                   *set_args(tiny_overrides(**{"train.steps": 10})))[0] == 0
    meta_path = next((run / "checkpoints").glob("*.json"))
    meta = json.loads(meta_path.read_text())
    new = load_gan(run)
    meta["generator_spec"] = {**{k: v for k, v in meta["generator_spec"].items() if k != "spec_version"},
                              "in_channels": 0, "blocks": 0, "scale": 1, "head_residual": 0}
    meta["discriminator_spec"] = {**{k: v for k, v in meta["discriminator_spec"].items() if k != "spec_version"},
                                  "in_channels": 0, "layers": 3}
    meta_path.write_text(json.dumps(meta))
    old = load_gan(run)
    assert old.generator_spec == new.generator_spec
    z = torch.randn(4, 16)
    assert torch.equal(old.generator(z), new.generator(z))

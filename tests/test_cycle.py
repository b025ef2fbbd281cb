"""CycleGAN training through the one loop (train.cycle, #18's unparallel conversion and #20):
the cycle and identity terms on hand values, the fake pool's replacement rule, the composite
networks, bit-identical resume of all four networks, loading the A -> B half, and the
config's one-line refusals."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import set_args

from kdgan.data.sampling import StepBatch
from kdgan.losses.adversarial import discriminator_loss
from kdgan.losses.cycle import CycleConsistency, IdentityMapping
from kdgan.losses.terms import StepContext
from kdgan.nets.cycle import CycleDiscriminator, CycleDiscriminatorSpec, CycleGenerator, CycleGeneratorSpec
from kdgan.train.pool import FakePool

CONFIG = "configs/convert_cycle_teacher.yaml"
TINY = {"model.generator.width": 16, "model.generator.layers": 2, "model.discriminator.width": 8,
        "data.frames": 16, "train.batch_size": 4, "train.steps": 4, "train.fake_pool": 6,
        "log.log_every": 2, "log.sample_every": 4, "log.checkpoint_every": 2, "log.num_samples": 2,
        "log.progress": "false", "log.tensorboard": "false", "log.eval_checkpoints": "false",
        "task.sample_frames": 32}


def tiny(**changes) -> list[str]:
    return set_args([f"{k}={v}" for k, v in {**TINY, **changes}.items()])


def context(a, b, extras) -> StepContext:
    return StepContext("g", StepBatch(torch.zeros(1), (a, b), ()), torch.zeros(1), None, None, None,
                       g_extras=extras)


def test_cycle_and_identity_terms_on_hand_values():
    a, b = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 1.0]])
    extras = {"cycle_a": torch.tensor([[1.0, 2.0]]),  # |1-0| + |2-2| -> mean 0.5
              "cycle_b": torch.tensor([[1.0, 4.0]]),  # |0| + |3|     -> mean 1.5
              "identity_b": torch.tensor([[0.0, 1.0]]),  # |-1| + 0    -> mean 0.5
              "identity_a": torch.tensor([[0.0, 0.0]])}  # 0 + |-2|   -> mean 1.0
    ctx = context(a, b, extras)
    assert CycleConsistency(10.0)(ctx).item() == pytest.approx(2.0)
    assert IdentityMapping(5.0)(ctx).item() == pytest.approx(1.5)


def test_the_pool_passes_samples_until_full_then_swaps_half_for_stored_ones():
    pool = FakePool(2)
    first = torch.tensor([[1.0], [2.0]])
    assert torch.equal(pool.query(first, torch.Generator().manual_seed(0)), first)  # filling: shown as is
    noise = torch.Generator().manual_seed(3)
    shown = pool.query(torch.tensor([[3.0], [4.0], [5.0], [6.0]]), noise)
    # the rule replayed from the same seed: a coin per sample, then a slot when it swaps
    replay, stored, expected = torch.Generator().manual_seed(3), [1.0, 2.0], []
    for new in (3.0, 4.0, 5.0, 6.0):
        if float(torch.rand((), generator=replay)) < 0.5:
            slot = int(torch.randint(2, (), generator=replay))
            expected.append(stored[slot])
            stored[slot] = new
        else:
            expected.append(new)
    assert shown.flatten().tolist() == expected and expected != [3.0, 4.0, 5.0, 6.0]
    assert [float(s) for s in pool.stored] == stored


def test_the_composite_generator_and_discriminator():
    from kdgan.families import saved_spec
    from kdgan.registry import DISCRIMINATORS
    from kdgan.tasks.audio.convert_nets import MelConverterSpec, MelDiscriminatorSpec

    torch.manual_seed(0)
    inner = saved_spec(MelConverterSpec(width=8, layers=1))
    G = CycleGenerator(CycleGeneratorSpec(a_to_b=inner, b_to_a=inner))
    a, b = torch.randn(2, 80, 12) - 4, torch.randn(2, 80, 12) - 4
    assert torch.equal(G(a), G.a_to_b(a))  # one input: the A -> B translator, as sampling and export call it
    out = G(a, b)
    assert torch.equal(out.sample[:, 0], G.a_to_b(a)) and torch.equal(out.sample[:, 1], G.b_to_a(b))
    assert torch.equal(out.extras["cycle_a"], G.b_to_a(G.a_to_b(a)))
    assert torch.equal(out.extras["identity_b"], G.a_to_b(b))
    judge = saved_spec(MelDiscriminatorSpec(width=8), DISCRIMINATORS)
    D = CycleDiscriminator(CycleDiscriminatorSpec(judge_b=judge, judge_a=judge))
    real, fake = torch.stack([b, a], 1), out.sample.detach()
    both = discriminator_loss("lsgan", D(real), D(fake))
    on_b = discriminator_loss("lsgan", D.judge_b(b), D.judge_b(fake[:, 0]))
    on_a = discriminator_loss("lsgan", D.judge_a(a), D.judge_a(fake[:, 1]))
    assert torch.allclose(both[0], on_b[0] + on_a[0]) and torch.allclose(both[1], on_b[1] + on_a[1])


@pytest.fixture(scope="module")
def cycle_run(tmp_path_factory):
    from conftest import cli_in_process

    root = tmp_path_factory.mktemp("cycle")
    assert cli_in_process("train", "--config", CONFIG, "--out", root / "straight", *tiny()) == 0
    return root


def test_all_four_networks_and_the_pool_resume_bit_identically(cycle_run, run_cli):
    half = cycle_run / "half"
    assert run_cli("train", "--config", CONFIG, "--out", half, *tiny(**{"train.steps": 2}))[0] == 0
    code, _, err = run_cli("train", "--resume", "--out", half, "--set", "train.steps=4")
    assert code == 0, err
    straight = load_file(cycle_run / "straight" / "checkpoints" / "step_0000004.safetensors")
    resumed = load_file(half / "checkpoints" / "step_0000004.safetensors")
    assert straight.keys() == resumed.keys()
    for prefix in ("generator.a_to_b.", "generator.b_to_a.", "discriminator.judge_b.", "discriminator.judge_a.",
                   "pool."):
        assert any(k.startswith(prefix) for k in straight), prefix
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    logged = json.loads((cycle_run / "straight" / "log.jsonl").read_text().splitlines()[-1])
    assert {"d_adv", "g_adv", "cycle", "identity"} <= set(logged)


def test_a_cycle_run_loads_as_its_a_to_b_half_and_distils(cycle_run, run_cli, tmp_path):
    from kdgan.loading import load_gan
    from kdgan.train.checkpoint import load_checkpoint, unprefixed

    gan = load_gan(cycle_run / "straight")
    assert gan.generator_spec.arch == "mel-convnext" and gan.discriminator_spec.arch == "mel-patch"
    _, tensors = load_checkpoint(cycle_run / "straight")
    ema = unprefixed("generator_ema.a_to_b", tensors)
    assert all(torch.equal(v, ema[k]) for k, v in gan.generator.state_dict().items())
    code, out, err = run_cli("export", cycle_run / "straight", "--format", "onnx", "--out", tmp_path / "g.onnx")
    assert code == 0 and "verified against PyTorch" in out, err
    code, _, err = run_cli("export", cycle_run / "straight", "--format", "safetensors", "--out", tmp_path / "pre")
    assert code == 0, err
    shipped = load_gan(tmp_path / "pre")  # a pretrained folder holds the A -> B half alone
    assert shipped.generator_spec == gan.generator_spec and shipped.discriminator_spec == gan.discriminator_spec
    assert all(torch.equal(v, ema[k]) for k, v in shipped.generator.state_dict().items())
    code, _, err = run_cli("distill", "--config", "configs/convert_cycle_distill.yaml", "--teacher",
                           cycle_run / "straight", "--out", tmp_path / "student",
                           *tiny(**{"model.generator.width": 8, "train.adversarial_start": 2}))
    assert code == 0, err
    logged = json.loads((tmp_path / "student" / "log.jsonl").read_text().splitlines()[-1])
    assert {"l1", "feature_mse", "d_kl", "g_adv"} <= set(logged), logged


@pytest.mark.parametrize("changes, message", [
    ({"train.cycle": "null"}, "data.parallel: false (unparallel recordings) trains CycleGAN-VC-style; set train.cycle"),
    ({"data.parallel": "true"}, "train.cycle: conversion cycles between unparallel recordings; set data.parallel: false"),
    ({"task.mel_weight": 45}, "task.mel_weight: unparallel recordings have no aligned target frames; set 0"),
    ({"model.generator.arch": "cycle"}, "model.generator.arch: task conversion takes mel-convnext, not 'cycle'"),
])
def test_cycle_config_mistakes_are_one_line(run_cli, tmp_path, changes, message):
    code, _, err = run_cli("train", "--config", CONFIG, "--out", tmp_path / "r", *tiny(**changes))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_cycle_needs_a_task_with_two_domains_shaped_alike(run_cli, tmp_path):
    code, _, err = run_cli("train", "--config", "configs/glyph_teacher.yaml", "--out", tmp_path / "g",
                           "--set", "train.cycle={}")
    assert code == 2 and "train.cycle: task generation has no two domains to translate between" in err, err
    code, _, err = run_cli("train", "--config", "configs/glyph_teacher.yaml", "--out", tmp_path / "g",
                           "--set", "model.generator.arch=cycle")
    assert code == 2 and "'cycle' is not configured here: set train.cycle" in err, err
    code, _, err = run_cli("train", "--config", "configs/unpaired_distill.yaml", "--out", tmp_path / "u", "--set", "distill=null",
                           "--set", "train.cycle={}")
    assert code == 2 and "cycle training needs both domains shaped alike" in err, err
    assert not (tmp_path / "g").exists() and not (tmp_path / "u").exists()


def test_a_distillation_config_cannot_cycle(run_cli, tmp_path):
    code, _, err = run_cli("distill", "--config", "configs/convert_cycle_distill.yaml", "--out", tmp_path / "d",
                           "--set", "train.cycle={}")
    assert code == 2 and "train.cycle: distillation trains the A -> B student alone" in err, err


def test_unparallel_conversion_on_a_users_folders(run_cli, tmp_path):
    import soundfile as sf

    from kdgan.tasks.audio.corpus import load_embedded_speech

    sentences = {"alice": range(0, 5), "bob": range(3, 8)}  # s3, s4 said by both: held out
    for clip in load_embedded_speech().clips:
        for name, voice in (("alice", "rms"), ("bob", "en-us")):
            if clip.voice == voice and clip.sentence in sentences[name]:
                (tmp_path / name).mkdir(exist_ok=True)
                sf.write(tmp_path / name / f"s{clip.sentence}.wav", clip.audio.numpy(), 16000)
    args = ["--set", "data.name=folders", "--set", f"data.source_path={tmp_path / 'alice'}",
            "--set", f"data.target_path={tmp_path / 'bob'}", *tiny(**{"train.steps": 2, "train.batch_size": 2,
                                                                      "log.sample_every": 2})]
    code, _, err = run_cli("train", "--config", CONFIG, "--out", tmp_path / "run", *args)
    assert code == 0, err
    code, out, err = run_cli("evaluate", tmp_path / "run", "--no-profile", "--samples", 2)
    assert code == 0 and "(2 held-out clips)" in out, err
    for name in ("s3.wav", "s4.wav"):
        (tmp_path / "bob" / name).rename(tmp_path / "bob" / f"x{name}")
    code, _, err = run_cli("train", "--config", CONFIG, "--out", tmp_path / "bad", *args)
    assert code == 2 and "data.target_path: no recording in" in err and "same names" in err, err
    assert not (tmp_path / "bad").exists()


def test_the_same_core_trains_a_cyclegan_on_two_image_folders(run_cli, tmp_path):
    import numpy as np
    from PIL import Image

    from kdgan.loading import load_gan

    rng = np.random.default_rng(0)
    for side, tint in (("A", (1.0, 1.0, 1.0)), ("B", (1.0, 0.6, 0.3))):
        (tmp_path / "data" / side).mkdir(parents=True)
        for i in range(4):
            pixels = (rng.random((48, 48, 3)) * 255 * np.array(tint)).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / side / f"{i}.png")
    args = ["--set", "distill=null", "--set", "train.cycle={cycle: 10, identity: 5}", "--set", "train.fake_pool=4",
            "--set", "data.name=folder", "--set", f"data.path={tmp_path / 'data'}", "--set", "data.resolution=32",
            "--set", "task.input_channels=3", "--set", "task.crops=8",
            *set_args(["model.generator.width=8", "model.discriminator.width=8", "train.steps=2", "train.batch_size=2",
                       "log.sample_every=2", "log.checkpoint_every=2", "log.num_samples=2", "log.progress=false",
                       "log.tensorboard=false"])]
    code, _, err = run_cli("train", "--config", "configs/unpaired_distill.yaml", "--out", tmp_path / "run", *args)
    assert code == 0, err
    logged = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert {"d_adv", "g_adv", "cycle", "identity"} <= set(logged)
    gan = load_gan(tmp_path / "run")
    assert gan.generator_spec.arch == "unet" and gan.generator(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)

"""Voice cloning (#18): the vocal-tract warp on a known spectrum, the speaker-conditioned
converter and its pruning, and train / distill / evaluate / sample --reference / export through
the CLI with tiny networks, with the reference clip mistakes a user makes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import teacher_and_student

from kdgan.tasks.audio.convert_nets import MelConverter, MelConverterSpec, prune_converter

TINY = {"model.generator.width": 16, "model.generator.layers": 2, "model.discriminator.width": 8,
        "data.frames": 16, "train.batch_size": 4, "train.steps": 4, "train.adversarial_start": 2,
        "log.log_every": 2, "log.sample_every": 4, "log.checkpoint_every": 4, "log.num_samples": 2,
        "log.progress": "false", "log.tensorboard": "false", "task.sample_frames": 32}


def test_warp_moves_a_formant_by_the_factor():
    import librosa

    from kdgan.tasks.audio.mel import warp_matrix

    centres = librosa.mel_frequencies(82, fmin=0, fmax=8000)[1:-1]
    bump = torch.from_numpy(np.exp(-((centres - 1000) / 150) ** 2)).float()[:, None]  # a formant at 1 kHz
    assert torch.allclose(warp_matrix(1.0) @ bump, bump)
    moved = (warp_matrix(1.2) @ bump)[:, 0]
    assert abs(centres[int(moved.argmax())] - 1200) < 60  # one mel band is about 60 Hz wide here
    lowered = (warp_matrix(0.8) @ bump)[:, 0]
    assert abs(centres[int(lowered.argmax())] - 800) < 60


def test_speaker_conditioned_converter_prunes_to_the_teacher_and_needs_its_embedding():
    teacher = MelConverter(MelConverterSpec(width=16, layers=2, speaker=8))
    mel, speaker = torch.randn(2, 80, 21) - 4, torch.randn(2, 8)
    same = MelConverter(MelConverterSpec(width=16, layers=2, speaker=8))
    prune_converter(same, teacher)
    assert torch.equal(same(mel, speaker), teacher(mel, speaker))
    assert not torch.allclose(teacher(mel, speaker), teacher(mel, speaker.flip(0)))  # the voice matters
    with pytest.raises(ValueError, match="takes a speaker embedding"):
        teacher(mel)


def test_training_batch_pairs_voices_with_reference_embeddings():
    from kdgan.config import load_config
    from kdgan.tasks import build_task

    task = build_task(load_config("configs/clone_teacher.yaml"))
    assert len(task) == 39 * 7 * 6 and "slt" not in task.voices and task.target == "slt"
    batch = task.batch(torch.arange(4), torch.Generator().manual_seed(0))
    source, speaker = batch.g_inputs
    assert batch.real.shape == source.shape == (4, 80, 64) and speaker.shape == (4, 64)
    assert torch.allclose(speaker.norm(dim=1), torch.ones(4))


@pytest.fixture(scope="module")
def clone_runs(tmp_path_factory):
    return teacher_and_student(tmp_path_factory.mktemp("clone"), "configs/clone_teacher.yaml",
                               "configs/clone_distill.yaml", TINY,
                               {"model.generator.width": 8, "model.generator.layers": 1})


def test_cloning_evaluates_the_unseen_voice_and_samples_from_reference_clips(clone_runs, run_cli, tmp_path):
    student = clone_runs / "student"
    code, out, err = run_cli("evaluate", student, "--no-profile", "--samples", 2, "--metrics", "mcd,similarity")
    assert code == 0, err
    result = json.loads((student / "eval.json").read_text())["evaluations"][-1]
    assert (result["task"], result["target"], result["clips"]) == ("cloning", "slt", 2)
    assert result["seen_voice"]["voice"] == "awb" and result["seen_voice"]["mcd"] > 0
    assert result["fidelity"]["mel_l1"] > 0 and "unconverted source (baseline)" in out

    samples = student / "samples" / "step_0000004"
    refs = tmp_path / "refs"
    refs.mkdir()
    from kdgan.tasks.audio.corpus import load_embedded_speech

    for clip in load_embedded_speech().split("held_out_voice")[:2]:
        sf.write(refs / f"slt_{clip.sentence}.wav", clip.audio.numpy(), 16000)
    code, _, err = run_cli("sample", student, "--input", samples / "source_0.wav", "--reference",
                           str(refs / "slt_*.wav"), "--out", tmp_path / "cloned.wav")
    assert code == 0, err
    assert len(sf.read(tmp_path / "cloned.wav")[0]) == len(sf.read(samples / "source_0.wav")[0]) // 256 * 256

    # a reference too short, none given, or given to a generator that takes none: one line, nothing written
    sf.write(refs / "short.wav", np.zeros(4000, np.float32) + 0.1, 16000)
    code, _, err = run_cli("sample", student, "--input", samples / "source_0.wav", "--reference", refs / "short.wav",
                           "--out", tmp_path / "no.wav")
    assert code == 2 and "--reference:" in err and "0.25 s long" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("sample", student, "--input", samples / "source_0.wav", "--out", tmp_path / "no.wav")
    assert code == 2 and "--reference: a cloning generator needs clips of the target voice" in err
    assert not (tmp_path / "no.wav").exists()

    code, out, err = run_cli("export", student, "--format", "onnx", "--out", tmp_path / "c.onnx")
    assert code == 0 and "verified against PyTorch" in out, err


def test_reference_is_refused_by_a_generator_without_one(run_cli, tmp_path):
    code, _, err = run_cli("sample", "convert_teacher", "--input", "x.wav", "--reference", "y.wav",
                           "--out", tmp_path / "o.wav")
    assert code == 2 and "--reference: only a cloning generator takes reference clips" in err

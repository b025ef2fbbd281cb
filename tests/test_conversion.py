"""Parallel voice conversion (#18): the converter and its pruning, the aligned training pairs,
and train / distill / evaluate / sample / export through the CLI with tiny networks."""

from __future__ import annotations

import json

import pytest
import soundfile as sf
import torch

from conftest import set_args, teacher_and_student

from kdgan.tasks.audio.convert_nets import MelConverter, MelConverterSpec, prune_converter

TINY = {"model.generator.width": 16, "model.generator.layers": 2, "model.discriminator.width": 8,
        "data.frames": 16, "train.batch_size": 4, "train.steps": 4, "train.adversarial_start": 2,
        "log.log_every": 2, "log.sample_every": 4, "log.checkpoint_every": 4, "log.num_samples": 2,
        "log.progress": "false", "log.tensorboard": "false", "task.sample_frames": 32}


def test_converter_prunes_to_the_teacher_at_full_width_and_keeps_length():
    teacher = MelConverter(MelConverterSpec(width=16, layers=3))
    mel = torch.randn(2, 80, 21) - 4
    same = MelConverter(MelConverterSpec(width=16, layers=3))
    prune_converter(same, teacher)
    assert torch.equal(same(mel), teacher(mel)) and teacher(mel).shape == (2, 80, 21)
    narrow = MelConverter(MelConverterSpec(width=6, layers=2))
    keep, layers = prune_converter(narrow, teacher)
    assert len(keep) == 6 and layers.tolist() == [0, 2]  # first and last teacher blocks


def test_training_pairs_are_the_same_sentence_aligned_to_the_target():
    from kdgan.config import load_config
    from kdgan.tasks import build_task

    task = build_task(load_config("configs/convert_teacher.yaml"))
    assert len(task) == 39 and len(task.test_pairs) == 6  # 45 sentences, 6 held out
    pair = task.train_pairs[0]
    assert pair["aligned"].shape == pair["target"].shape  # the source re-timed to the target
    # aligned frames are nearer the target than the source's frames at the same index
    n = min(pair["source"].shape[1], pair["target"].shape[1])
    assert (pair["aligned"][:, :n] - pair["target"][:, :n]).abs().mean() < \
        (pair["source"][:, :n] - pair["target"][:, :n]).abs().mean()


@pytest.fixture(scope="module")
def convert_runs(tmp_path_factory):
    return teacher_and_student(tmp_path_factory.mktemp("convert"), "configs/convert_teacher.yaml",
                               "configs/convert_distill.yaml", TINY,
                               {"model.generator.width": 8, "model.generator.layers": 1})


def test_conversion_runs_write_vocoded_clips_and_evaluate_against_the_target(convert_runs, run_cli):
    student = convert_runs / "student"
    logged = json.loads((student / "log.jsonl").read_text().splitlines()[-1])
    assert {"mel_l1", "l1", "feature_mse", "d_kl", "g_adv"} <= set(logged), logged
    audio, rate = sf.read(student / "samples" / "step_0000004" / "target_0.wav")
    assert rate == 16000 and len(audio) == 32 * 256
    code, out, err = run_cli("evaluate", student, "--no-profile", "--samples", 2, "--metrics",
                             "mcd,similarity,f0_rmse,f0_corr")
    assert code == 0, err
    result = json.loads((student / "eval.json").read_text())["evaluations"][-1]
    assert result["task"] == "conversion" and result["clips"] == 2
    assert (result["source"], result["target"]) == ("kal16", "awb")
    source = result["baselines"]["unconverted source"]
    assert source["mcd"] > 0 and -1 <= source["similarity"] <= 1 and source["f0_rmse"] > 0
    assert result["fidelity"]["reference"] == "teacher" and result["fidelity"]["mel_l1"] > 0
    assert "unconverted source (baseline): mcd" in out


def test_conversion_sample_and_export(convert_runs, run_cli, tmp_path):
    import onnxruntime as ort

    recording = convert_runs / "student" / "samples" / "step_0000004" / "source_0.wav"
    code, _, err = run_cli("sample", convert_runs / "student", "--input", recording, "--out", tmp_path / "c.wav")
    assert code == 0, err
    assert len(sf.read(tmp_path / "c.wav")[0]) == len(sf.read(recording)[0]) // 256 * 256
    code, out, err = run_cli("export", convert_runs / "student", "--format", "onnx", "--out", tmp_path / "c.onnx")
    assert code == 0 and "verified against PyTorch" in out, err
    mel = torch.randn(1, 80, 29) - 4
    got = ort.InferenceSession(str(tmp_path / "c.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"mel": mel.numpy()})[0]
    assert got.shape == (1, 80, 29)


def test_conversion_names_an_unknown_voice(run_cli, tmp_path):
    code, _, err = run_cli("train", "--config", "configs/convert_teacher.yaml", "--out", tmp_path / "r",
                           "--set", "data.target=bob")
    assert code == 2 and "data.target: no voice 'bob' in the corpus; voices: kal16" in err
    assert not (tmp_path / "r").exists()


def test_conversion_on_a_users_parallel_recordings_and_a_missing_partner(run_cli, tmp_path):
    from kdgan.tasks.audio.corpus import load_embedded_speech

    for clip in load_embedded_speech().clips:
        if clip.sentence < 3 and clip.voice in ("rms", "en-us"):
            folder = tmp_path / ("alice" if clip.voice == "rms" else "bob")
            folder.mkdir(exist_ok=True)
            sf.write(folder / f"s{clip.sentence}.wav", clip.audio.numpy(), 16000)
    args = ["--set", "data.name=pairs", "--set", f"data.source_path={tmp_path / 'alice'}",
            "--set", f"data.target_path={tmp_path / 'bob'}",
            *set_args([f"{k}={v}" for k, v in {**TINY, "train.steps": 2, "train.batch_size": 2, "log.sample_every": 2,
                                              "log.checkpoint_every": 2}.items()])]
    code, _, err = run_cli("train", "--config", "configs/convert_teacher.yaml", "--out", tmp_path / "run", *args)
    assert code == 0, err
    assert len(list((tmp_path / "run" / "samples" / "step_0000002").glob("source_*.wav"))) == 2
    (tmp_path / "bob" / "s1.wav").unlink()
    code, _, err = run_cli("train", "--config", "configs/convert_teacher.yaml", "--out", tmp_path / "bad", *args)
    assert code == 2 and f"data.source_path: {tmp_path / 'alice' / 's1.wav'} has no partner" in err
    assert not (tmp_path / "bad").exists()

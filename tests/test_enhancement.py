"""Speech enhancement (#18, first part): noise and mixing, the wave U-Net and its pruning, the
signal-processing baselines, user folders and pairs, and train / distill / evaluate / sample /
export / compare through the CLI with tiny networks on the embedded corpus."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import set_args, teacher_and_student

from kdgan.tasks.audio.noise import make_noise, mix, snr_db
from kdgan.tasks.audio.waveunet import WaveUNetGenerator, WaveUNetSpec, prune_waveunet

TINY = {"model.generator.width": 4, "model.generator.depth": 3, "model.generator.context": 1,
        "model.discriminator.width": 2, "data.segment": 2048, "train.batch_size": 4, "train.steps": 4,
        "log.log_every": 2, "log.sample_every": 4, "log.checkpoint_every": 4, "log.num_samples": 2,
        "log.progress": "false", "log.tensorboard": "false", "task.sample_seconds": 0.5,
        "train.adversarial_start": 2}  # two steps without the discriminator, two with


def test_mix_hits_the_requested_snr_by_hand():
    """Clean power 0.01, unit noise power, 10 dB: the noise gain is sqrt(0.01 / 10) = 0.031623."""
    clean = torch.tensor([0.1, -0.1] * 8)
    noise = torch.tensor([1.0, 1.0, -1.0, -1.0] * 4)
    noisy, target = mix(clean, noise, 10.0)
    assert torch.equal(target, clean)
    assert torch.allclose(noisy - clean, 0.0316228 * noise, atol=1e-6)
    assert snr_db(clean, noisy) == pytest.approx(10.0, abs=1e-4)


def test_mix_scales_both_down_when_the_mixture_would_clip():
    clean = torch.tensor([0.9, -0.9] * 8)
    noise = torch.tensor([1.0, 1.0, -1.0, -1.0] * 4)
    noisy, target = mix(clean, noise, -5.0)  # noise gain sqrt(0.81 * 10^0.5) = 1.6006: peak 2.5006
    assert noisy.abs().max().item() == pytest.approx(0.99, abs=1e-6)
    assert torch.allclose(target, clean * 0.99 / (0.9 + 1.6006), atol=1e-4)
    assert snr_db(target, noisy) == pytest.approx(-5.0, abs=1e-4)  # the SNR survives the scaling


@pytest.mark.parametrize("kind,slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_noise_colours_have_their_spectral_slopes(kind, slope):
    """Power against frequency on log-log axes, 100 Hz - 6 kHz: slope 0, -1, -2."""
    gen = torch.Generator().manual_seed(0)
    noise = make_noise(kind, 160000, 16000, gen)
    assert noise.pow(2).mean().item() == pytest.approx(1.0, rel=1e-4)  # unit RMS
    power = torch.stft(noise, 1024, 256, window=torch.hann_window(1024), return_complex=True).abs().pow(2).mean(1)
    f = torch.arange(len(power)) * 16000 / 1024
    band = (f > 100) & (f < 6000)
    fitted = np.polyfit(np.log10(f[band].numpy()), np.log10(power[band].numpy()), 1)[0]
    assert fitted == pytest.approx(slope, abs=0.1)


def test_hum_is_mains_and_its_harmonics():
    noise = make_noise("hum", 16000, 16000, torch.Generator().manual_seed(3))
    spectrum = torch.fft.rfft(noise.double()).abs()  # 1 Hz bins over one second
    top = set(spectrum.argsort(descending=True)[:3].tolist())
    assert top in ({50, 100, 150}, {60, 120, 180})


def test_babble_and_folder_noise_come_from_the_given_recordings():
    talker = torch.sin(torch.arange(4000) * 0.05)
    gen = torch.Generator().manual_seed(0)
    babble = make_noise("babble", 9000, 16000, gen, talkers=[talker])
    assert babble.shape == (9000,) and babble.pow(2).mean().item() == pytest.approx(1.0, rel=1e-4)
    recorded = make_noise("folder", 100, 16000, gen, recordings=[torch.arange(1.0, 11.0)])
    assert set(recorded.round(decimals=3).tolist()) <= set((torch.arange(1.0, 11.0) / math.sqrt(38.5)).round(
        decimals=3).tolist())  # samples of the recording at unit RMS (mean square of 1..10 is 38.5), looped


def test_wave_unet_keeps_any_length_and_prunes_to_the_teacher_at_full_width():
    teacher = WaveUNetGenerator(WaveUNetSpec(width=8, depth=3, context=2))
    noisy = 0.1 * torch.randn(2, 1, 1000, generator=torch.Generator().manual_seed(0))
    assert teacher(noisy).shape == (2, 1, 1000)  # 1000 is not a multiple of 4^3: padded, cut back
    same = WaveUNetGenerator(WaveUNetSpec(width=8, depth=3, context=2))
    prune_waveunet(same, teacher)
    assert torch.equal(same(noisy), teacher(noisy))
    narrow = WaveUNetGenerator(WaveUNetSpec(width=3, depth=3, context=2))
    kept = prune_waveunet(narrow, teacher)
    assert [len(k) for k in kept] == [3, 6, 12]
    # the pruned student's first encoder is the teacher's, restricted to the kept gate rows
    rows = torch.cat([kept[0], kept[0] + 8])
    assert torch.equal(narrow.encoders[0].gate.bias, teacher.encoders[0].gate.bias[rows])
    from kdgan.errors import UserError

    with pytest.raises(UserError, match="teacher's depth and context"):
        prune_waveunet(WaveUNetGenerator(WaveUNetSpec(width=4, depth=2, context=2)), teacher)


def test_signal_processing_baselines_take_noise_out():
    """White noise at 5 dB on a held-out sentence: both baselines raise SI-SDR over the mixture."""
    from kdgan.tasks.audio.baselines import spectral_subtraction, wiener
    from kdgan.tasks.audio.corpus import load_embedded_speech
    from kdgan.tasks.audio.mel import LogMel
    from kdgan.tasks.audio.metrics import clip_scores

    clean = load_embedded_speech().split("held_out")[0].audio
    noisy, clean = mix(clean, make_noise("white", len(clean), 16000, torch.Generator().manual_seed(0)), 5.0)
    score = lambda x: clip_scores(x, clean, LogMel(), ("si_sdr",))["si_sdr"]  # noqa: E731
    assert score(noisy) == pytest.approx(5.0, abs=0.1)  # SI-SDR of a mixture is about its SNR
    assert score(spectral_subtraction(noisy)) > score(noisy) + 3
    assert score(wiener(noisy)) > score(noisy) + 3


@pytest.fixture(scope="module")
def enhance_runs(tmp_path_factory):
    return teacher_and_student(tmp_path_factory.mktemp("enhance"), "configs/enhance_teacher.yaml",
                               "configs/enhance_distill.yaml", TINY, {"model.generator.width": 2})


def test_enhancement_train_and_distill_write_noisy_enhanced_and_clean_clips(enhance_runs):
    student = enhance_runs / "student"
    logged = json.loads((student / "log.jsonl").read_text().splitlines()[-1])
    assert {"clean_l1", "clean_stft", "l1", "stft", "feature_mse", "d_kl", "teacher_fm", "g_adv"} <= set(logged), logged
    step = student / "samples" / "step_0000004"
    for name in ("noisy_0.wav", "teacher_0.wav", "clean_0.wav"):
        audio, rate = sf.read(step / name)
        assert rate == 16000 and len(audio) == 8000  # task.sample_seconds 0.5
    assert (student / "samples" / "step_0000004.png").read_bytes()[:4] == b"\x89PNG"
    meta = json.loads(sorted((student / "checkpoints").glob("*.json"))[-1].read_text())
    assert meta["generator_spec"] == {"arch": "wave-unet", "width": 2, "depth": 3, "context": 1}


def test_enhancement_evaluate_scores_mixtures_beside_noisy_input_and_baselines(enhance_runs, run_cli):
    code, out, err = run_cli("evaluate", enhance_runs / "student", "--no-profile", "--samples", 5)
    assert code == 0, err
    result = json.loads((enhance_runs / "student" / "eval.json").read_text())["evaluations"][-1]
    assert result["task"] == "enhancement" and result["clips"] == 5
    assert set(result["by_noise"]) == {"white", "pink", "brown", "hum", "babble"}  # kinds in turn
    assert {"noisy input", "spectral subtraction", "Wiener filter"} == set(result["baselines"])
    noisy = result["baselines"]["noisy input"]
    assert -0.5 <= noisy["pesq"] <= 4.5 and 0 <= noisy["stoi"] <= 1
    assert -5 < noisy["si_sdr"] < 15  # SI-SDR of a mixture is about its SNR, drawn in [-5, 15]
    assert result["held_out_voice"]["clips"] == 5 and result["fidelity"]["reference"] == "teacher"
    assert "spectral subtraction (baseline): pesq" in out and "5 held-out clips" in out


def test_enhancement_mixtures_are_the_same_in_every_run():
    from kdgan.config import load_config
    from kdgan.tasks import build_task

    cfg = load_config("configs/enhance_teacher.yaml")
    a, b = build_task(cfg), build_task(cfg)
    assert all(torch.equal(x.noisy, y.noisy) for x, y in zip(a.test, b.test))
    assert [round(snr_db(m.clean, m.noisy), 3) for m in a.test[:5]] == [round(m.snr, 3) for m in a.test[:5]]


def test_enhancement_sample_cleans_a_recording_and_export_takes_any_length(enhance_runs, run_cli, tmp_path):
    import onnxruntime as ort

    from kdgan.loading import load_gan

    noisy = enhance_runs / "student" / "samples" / "step_0000004" / "noisy_1.wav"
    code, out, err = run_cli("sample", enhance_runs / "student", "--input", noisy, "--out", tmp_path / "clean.wav")
    assert code == 0, err
    audio, rate = sf.read(tmp_path / "clean.wav")
    assert rate == 16000 and len(audio) == len(sf.read(noisy)[0])
    code, out, err = run_cli("export", enhance_runs / "student", "--format", "onnx", "--out", tmp_path / "e.onnx")
    assert code == 0 and "verified against PyTorch" in out, err
    wave = 0.1 * torch.randn(2, 1, 3333)
    got = ort.InferenceSession(str(tmp_path / "e.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"noisy": wave.numpy()})[0]
    with torch.no_grad():
        want = load_gan(enhance_runs / "student").generator(wave)
    assert got.shape == (2, 1, 3333) and torch.allclose(torch.from_numpy(got), want, atol=1e-4)


def test_enhancement_compare_plays_noisy_teacher_student_and_clean(enhance_runs, run_cli, tmp_path):
    for run in ("teacher", "student"):
        assert run_cli("evaluate", enhance_runs / run, "--no-profile", "--samples", 2)[0] == 0
    code, _, err = run_cli("compare", enhance_runs / "teacher", enhance_runs / "student", "--out", tmp_path / "r",
                           "--samples", 2)
    assert code == 0, err
    report = (tmp_path / "r" / "report.md").read_text()
    assert "| Wiener filter |" in report and "si_sdr to teacher" in report
    page = (tmp_path / "r" / "report.html").read_text()
    assert page.count("<audio controls") == 8  # noisy, teacher, student, clean x 2 clips


def _write(path, audio, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.numpy() if isinstance(audio, torch.Tensor) else audio, rate)


def test_enhancement_on_a_user_folder_with_a_noise_folder_and_on_pairs(tmp_path, run_cli):
    from kdgan.tasks.audio.corpus import load_embedded_speech

    clips = load_embedded_speech().split("train")[:5]  # every 10th is held out: 4 train, batch 4
    for i, c in enumerate(clips):
        _write(tmp_path / "clean" / f"c{i}.wav", c.audio)
        noisy, _ = mix(c.audio, make_noise("pink", len(c.audio), 16000, torch.Generator().manual_seed(i)), 5.0)
        _write(tmp_path / "noisy" / f"c{i}.flac", noisy)  # partners pair by name, whatever the format
    _write(tmp_path / "noise" / "fan.wav", 0.1 * np.random.default_rng(0).standard_normal(8000))
    args = set_args([f"{k}={v}" for k, v in TINY.items()])
    folder = set_args(["data.name=folder", f"data.path={tmp_path / 'clean'}", f"data.noise={tmp_path / 'noise'}",
                       "data.noises=[folder,babble]"])
    code, _, err = run_cli("train", "--config", "configs/enhance_teacher.yaml", "--out", tmp_path / "f", *args, *folder)
    assert code == 0, err
    pairs = set_args(["data.name=pairs", f"data.noisy={tmp_path / 'noisy'}", f"data.clean={tmp_path / 'clean'}"])
    code, _, err = run_cli("train", "--config", "configs/enhance_teacher.yaml", "--out", tmp_path / "p", *args, *pairs)
    assert code == 0, err


def test_enhancement_bad_inputs_are_one_line_and_write_nothing(tmp_path, run_cli):
    from kdgan.tasks.audio.corpus import load_embedded_speech

    audio = load_embedded_speech().split("train")[0].audio
    for i in range(3):
        _write(tmp_path / "clean" / f"c{i}.wav", audio)
        _write(tmp_path / "noisy" / f"c{i}.wav", audio)
    _write(tmp_path / "noisy" / "stray.wav", audio)  # no clean partner
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not audio")
    args = set_args([f"{k}={v}" for k, v in TINY.items()])
    cases = [
        (["data.name=pairs", f"data.noisy={tmp_path / 'noisy'}", f"data.clean={tmp_path / 'clean'}"],
         "stray.wav has no partner of the same name"),
        (["data.noises=[white,folder]", f"data.noise={tmp_path / 'notes'}"], "has no audio files"),
        (["data.noises=[white,folder]"], "data.noise: a folder of noise recordings goes with the noise kind"),
        (["data.snr=[10,0]"], "data.snr: [low, high] in dB with low <= high"),
    ]
    for overrides, message in cases:
        out = tmp_path / "run"
        code, _, err = run_cli("train", "--config", "configs/enhance_teacher.yaml", "--out", out, *args,
                               *set_args(overrides))
        assert code == 2 and message in err, (overrides, err)
        assert len(err.strip().splitlines()) == 1 and not out.exists(), err
    wrong = tmp_path / "wrong.yaml"  # a vocoder's generator (mel in) on the enhancement task
    wrong.write_text("task: {name: enhancement}\nmodel: {generator: {arch: vocos}, discriminator: {arch: mpd-mrd}}\n")
    code, _, err = run_cli("train", "--config", wrong, "--out", tmp_path / "run")
    assert code == 2 and "model.generator.arch: task enhancement takes wave-unet or spectral-mask, not 'vocos'" in err, err
    _write(tmp_path / "short" / "a.wav", audio)
    _write(tmp_path / "short" / "b.wav", audio[:3000])  # shorter than its partner by far
    _write(tmp_path / "long" / "a.wav", audio)
    _write(tmp_path / "long" / "b.wav", audio[:6000])
    code, _, err = run_cli("train", "--config", "configs/enhance_teacher.yaml", "--out", tmp_path / "run", *args,
                           *set_args(["data.name=pairs", f"data.noisy={tmp_path / 'short'}",
                                      f"data.clean={tmp_path / 'long'}", "data.segment=1024"]))
    assert code == 2 and "paired recordings must be the same length" in err and not (tmp_path / "run").exists()

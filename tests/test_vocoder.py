"""The vocoder task (#17, first part): networks, the mel loss, and train / distill / evaluate
through the CLI with tiny networks on the embedded speech corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import ROOT, cli_in_process, set_args

from kdgan.tasks.audio.nets import (HiFiGANGenerator, HiFiGANSpec, PeriodDiscriminator, VocoderDiscriminator,
                                    VocoderDiscriminatorSpec)

TINY = {"model.generator.width": 32, "model.discriminator.width": 2, "data.segment": 2048, "train.batch_size": 4,
        "train.steps": 4, "log.log_every": 2, "log.sample_every": 4, "log.checkpoint_every": 4,
        "log.num_samples": 2, "log.progress": "false", "log.tensorboard": "false", "task.sample_seconds": 0.5,
        "train.adversarial_start": 2}  # the recipes' warm-ups, shrunk: two steps without the discriminator, two with


def test_period_discriminator_folds_every_pth_sample_into_a_column():
    d = PeriodDiscriminator(3, width=2)
    folded = d.fold(torch.arange(10.0).view(1, 1, 10))
    # rows of 3 consecutive samples; the end reflect-padded to a multiple of 3 (9, then 8, 7)
    assert folded.tolist() == [[[[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 8, 7]]]]


def test_generator_and_discriminator_shapes_and_hifigan_v1_size():
    v1 = HiFiGANGenerator(HiFiGANSpec(width=512))
    assert 13.9e6 < sum(p.numel() for p in v1.parameters()) < 14.0e6  # HiFi-GAN V1: 13.92M
    g = HiFiGANGenerator(HiFiGANSpec(width=16))
    audio = g(torch.randn(2, 80, 10))
    assert audio.shape == (2, 1, 10 * 256) and audio.abs().max() <= 1
    out = VocoderDiscriminator(VocoderDiscriminatorSpec(width=2))(audio)
    assert len(out.logits) == 5 + 3  # five periods, three resolutions
    assert all(t.shape[0] == 2 for t in (*out.logits, *out.features))


def test_mel_loss_is_l1_between_log_mels():
    from types import SimpleNamespace

    from kdgan.losses.terms import StepContext
    from kdgan.tasks.audio.mel import LogMel
    from kdgan.tasks.audio.vocoder import MelL1

    mel = LogMel()
    real, fake = torch.randn(2, 1, 1024) * 0.1, torch.randn(2, 1, 1024) * 0.1
    ctx = StepContext("g", SimpleNamespace(real=real, g_inputs=(mel(real),)), fake, None, None, None)
    assert MelL1(mel, 45.0)(ctx).item() == pytest.approx((mel(fake) - mel(real)).abs().mean().item(), rel=1e-6)


@pytest.fixture(scope="module")
def vocoder_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vocoder")
    cli = cli_in_process

    assert cli("train", "--config", "configs/vocoder_teacher.yaml", "--out", root / "teacher",
               *set_args([f"{k}={v}" for k, v in TINY.items()])) == 0
    student = {**TINY, "distill.student.width_multiplier": 0.5, "distill.student.init": "prune"}
    assert cli("distill", "--config", "configs/vocoder_distill.yaml", "--teacher", root / "teacher", "--out",
               root / "student", *set_args([f"{k}={v}" for k, v in student.items()])) == 0
    return root


def test_vocoder_train_and_distill_write_audio_and_spectrograms(vocoder_runs, monkeypatch):
    student = vocoder_runs / "student"
    logged = json.loads((student / "log.jsonl").read_text().splitlines()[-1])
    assert {"d_adv", "g_adv", "g_fm", "mel_l1", "l1", "stft", "feature_mse", "d_kl", "teacher_fm"} <= set(logged), logged
    wav = student / "samples" / "step_0000004" / "student_step_4_0.wav"
    audio, rate = sf.read(wav)
    assert rate == 16000 and len(audio) == 31 * 256  # task.sample_seconds 0.5, cut to whole mel frames
    png = student / "samples" / "step_0000004.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    meta = json.loads(sorted((student / "checkpoints").glob("*.json"))[-1].read_text())
    assert meta["generator_spec"]["arch"] == "vocos" and meta["generator_spec"]["width"] == 16


def test_vocoder_evaluate_scores_held_out_sentences_and_voice(vocoder_runs, run_cli):
    code, out, err = run_cli("evaluate", vocoder_runs / "student", "--no-profile", "--samples", 3, "--metrics",
                             "mel_l1,pesq,stoi,dnsmos")
    assert code == 0, err
    result = json.loads((vocoder_runs / "student" / "eval.json").read_text())["evaluations"][-1]
    assert result["task"] == "vocoder" and result["clips"] == 3  # --samples caps the held-out clips
    assert result["mel_l1"] > 0 and result["held_out_voice"]["mel_l1"] > 0
    assert -0.5 <= result["pesq"] <= 4.5 and 0 <= result["stoi"] <= 1 and 1 <= result["dnsmos"] <= 5
    fidelity = result["fidelity"]  # the student against its teacher's waveform from the same mel
    assert fidelity["reference"] == "teacher" and fidelity["clips"] == 3 and "dnsmos" not in fidelity
    assert fidelity["mel_l1"] > 0 and fidelity["mel_l1"] != result["mel_l1"]
    griffin_lim = result["baselines"]["Griffin-Lim, 32 iterations"]
    # 4 steps of training: Griffin-Lim is far better; the teacher has to beat it
    assert griffin_lim["pesq"] > result["pesq"] and griffin_lim["mel_l1"] < result["mel_l1"]
    assert "mel_l1" in out and "3 held-out clips" in out
    assert "Griffin-Lim, 32 iterations (baseline): mel_l1" in out and "held-out voice (3 clips)" in out
    assert "fidelity to the teacher on the same inputs: mel_l1" in out


def test_audio_metrics_on_signals_with_known_answers():
    """Twice as loud: the STFT distance is 1 (spectral convergence) + ln 2 (log magnitude) at
    every resolution, and the cepstrum without c0 is unchanged (MCD 0). A 200 Hz tone against a
    210 Hz one: pitch error 10 Hz, every frame voiced in both; against silence: no frame agrees."""
    import math

    from kdgan.tasks.audio.mel import LogMel
    from kdgan.tasks.audio.metrics import clip_scores

    mel = LogMel()
    t = torch.arange(32000) / 16000
    tone, higher = 0.3 * torch.sin(2 * math.pi * 200 * t), 0.3 * torch.sin(2 * math.pi * 210 * t)
    noise = 0.1 * torch.randn(32000, generator=torch.Generator().manual_seed(0))
    louder = clip_scores(2 * noise, noise, mel, ("mrstft", "mcd"))
    assert louder["mrstft"] == pytest.approx(1 + math.log(2), rel=1e-4)
    assert louder["mcd"] == pytest.approx(0, abs=1e-3)
    assert clip_scores(noise, noise, mel, ("mcd", "mrstft")) == {"mcd": 0.0, "mrstft": 0.0}
    pitch = clip_scores(higher, tone, mel, ("f0_rmse", "vuv_error"))
    assert pitch["f0_rmse"] == pytest.approx(10, abs=1.5) and pitch["vuv_error"] < 0.05
    assert clip_scores(torch.zeros(32000), tone, mel, ("vuv_error",))["vuv_error"] > 0.9
    from kdgan.tasks.audio.metrics import mean_scores

    # a clip with no frame voiced in both has no pitch error: left out of the mean, not NaN
    assert mean_scores([{"f0_rmse": 4.0}, {"f0_rmse": float("nan")}, {"f0_rmse": 8.0}])["f0_rmse"] == 6.0


def test_griffin_lim_baseline_is_aligned_with_the_recording():
    """Griffin-Lim from a clip's own mel is intelligible (STOI) and in time with the recording
    (kdgan's mel frames are centred 128 samples later than librosa's): moved 64 samples
    either way, its mel is further from the recording's."""
    from kdgan.tasks.audio.corpus import load_embedded_speech
    from kdgan.tasks.audio.mel import LogMel
    from kdgan.tasks.audio.metrics import clip_scores, griffin_lim

    clip = load_embedded_speech().split("held_out")[0].audio
    clip = clip[: len(clip) // 256 * 256]
    mel = LogMel()
    rebuilt = griffin_lim(mel(clip[None])[0], mel, len(clip))
    scores = clip_scores(rebuilt, clip, mel, ("mel_l1", "stoi"))
    assert scores["stoi"] > 0.85 and scores["mel_l1"] < 0.2, scores
    later = torch.cat([torch.zeros(64), rebuilt[:-64]])
    earlier = torch.cat([rebuilt[64:], torch.zeros(64)])
    for moved in (later, earlier):
        assert clip_scores(moved, clip, mel, ("mel_l1",))["mel_l1"] > 1.3 * scores["mel_l1"]


def test_vocoder_sample_resynthesises_recordings_and_mels(vocoder_runs, run_cli, tmp_path):
    import numpy as np

    clip = vocoder_runs / "teacher" / "samples" / "step_0000004" / "ground_truth_0.wav"
    code, out, err = run_cli("sample", vocoder_runs / "student", "--input", clip, "--out", tmp_path / "re.wav")
    assert code == 0, err
    audio, rate = sf.read(tmp_path / "re.wav")
    assert rate == 16000 and len(audio) == len(sf.read(clip)[0]) // 256 * 256
    np.save(tmp_path / "m.npy", np.full((80, 12), -5.0, np.float32))
    code, _, err = run_cli("sample", vocoder_runs / "student", "--input", tmp_path / "m.npy", "--out", tmp_path / "m")
    assert code == 0 and len(sf.read(tmp_path / "m" / "m.wav")[0]) == 12 * 256, err
    np.save(tmp_path / "bad.npy", np.zeros((3, 4), np.float32))
    code, _, err = run_cli("sample", vocoder_runs / "student", "--input", tmp_path / "bad.npy", "--out", tmp_path / "b")
    assert code == 2 and "holds shape (3, 4); a mel is (80, frames)" in err
    code, _, err = run_cli("sample", vocoder_runs / "student", "--input", tmp_path / "none.wav", "--out", tmp_path / "c.wav")
    assert code == 2 and "none.wav does not exist" in err


def test_vocoder_onnx_export_takes_any_length(vocoder_runs, run_cli, tmp_path):
    """The exported file run by onnxruntime here at a length neither export nor its own
    verification used."""
    import onnxruntime as ort

    from kdgan.loading import load_gan

    code, out, err = run_cli("export", vocoder_runs / "student", "--format", "onnx", "--out", tmp_path / "v.onnx")
    assert code == 0 and "verified against PyTorch" in out, err
    mel = torch.randn(3, 80, 23) - 4
    session = ort.InferenceSession(str(tmp_path / "v.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"mel": mel.numpy()})[0]
    with torch.no_grad():
        want = load_gan(vocoder_runs / "student").generator(mel)
    assert got.shape == (3, 1, 23 * 256) and np_close(got, want)


def np_close(got, want) -> bool:
    return bool(torch.allclose(torch.from_numpy(got), want, atol=1e-4))


def test_vocoder_compare_shows_spectrograms_of_the_same_clips(vocoder_runs, run_cli, tmp_path):
    for run in ("teacher", "student"):
        assert run_cli("evaluate", vocoder_runs / run, "--no-profile", "--samples", 2)[0] == 0
    code, _, err = run_cli("compare", vocoder_runs / "teacher", vocoder_runs / "student", "--out", tmp_path / "r",
                           "--samples", 2)
    assert code == 0, err
    report = (tmp_path / "r" / "report.md").read_text()
    assert "mel_l1" in report and "| Griffin-Lim, 32 iterations |" in report
    # the student's fidelity in the task's own metrics, against its teacher's waveform
    assert "mel_l1 to teacher" in report and "pesq to teacher" in report and "FID to teacher" not in report
    assert "against its own teacher's output on the same inputs" in report
    assert "[student, clip 1](student_1.wav)" in report  # the clips beside the report, linked
    audio, rate = sf.read(tmp_path / "r" / "ground_truth_1.wav")
    assert rate == 16000 and len(audio) > 0
    page = (tmp_path / "r" / "report.html").read_text()
    assert page.count("<audio controls") == 6  # teacher, student, ground truth x 2 clips
    assert "each resynthesised from its own recording" in page and "wide-band PESQ" in page
    assert (tmp_path / "r" / "samples.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("make,message", [
    (lambda p: (p / "a.wav").write_bytes(b"RIFF\x00\x00garbage"), "a.wav: "),
    (lambda p: sf.write(p / "short.wav", np.full(1000, 0.1, np.float32), 16000), "shorter than one training segment"),
    (lambda p: sf.write(p / "quiet.flac", np.zeros(20000, np.float32), 16000), "silent throughout"),
    (lambda p: (p / "song.mp3").write_bytes(b"ID3"), "has no audio files"),
])
def test_bad_audio_folders_stop_train_in_one_line_before_any_run_folder(run_cli, tmp_path, make, message):
    data = tmp_path / "audio"
    data.mkdir()
    make(data)
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--config", "configs/vocoder_teacher.yaml", "--out", out, "--set",
                           "data.name=folder", "--set", f"data.path={data}")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


# -- audio distillation terms ----------------------------------------------------------------


def _ctx(student, teacher):
    from kdgan.losses.terms import StepContext

    return StepContext("g", None, student, None, None, None, extra={"teacher_out": teacher})


def test_stft_distance_by_hand_at_one_resolution():
    from kdgan.tasks.audio.terms import MultiResolutionSTFT

    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 1, 2048, generator=g) * 0.1, torch.randn(2, 1, 2048, generator=g) * 0.1
    term = MultiResolutionSTFT(resolutions=[(512, 128, 512)])
    window = torch.hann_window(512)
    mag = lambda x: torch.stft(x[:, 0], 512, 128, 512, window, return_complex=True).abs().clamp(min=1e-7)  # noqa: E731
    ms, mt = mag(s), mag(t)
    want = (mt - ms).norm() / mt.norm() + (mt.log() - ms.log()).abs().mean()
    assert term(_ctx(s, t)).item() == pytest.approx(want.item(), rel=1e-5)
    assert term(_ctx(t, t)).item() == pytest.approx(0.0, abs=1e-6)


def test_spectral_kl_compares_spectral_shape_not_loudness():
    """Each frame's spectrum as a distribution over bins: a louder copy (x2) of the teacher's
    waveform has the same distributions (KL 0); a different sound does not."""
    from kdgan.losses.distill import kl_softmax
    from kdgan.tasks.audio.terms import SpectralKL, stft_magnitude

    g = torch.Generator().manual_seed(1)
    t = torch.randn(1, 1, 4096, generator=g) * 0.1
    term = SpectralKL(temperature=2.0)
    assert term(_ctx(2 * t, t)).item() == pytest.approx(0.0, abs=1e-5)
    other = torch.sin(torch.arange(4096) * 0.3).view(1, 1, -1) * 0.1
    want = kl_softmax(stft_magnitude(other, 1024, 256, torch.hann_window(1024)).log(),
                      stft_magnitude(t, 1024, 256, torch.hann_window(1024)).log(), -1, 2.0, "distribution")
    got = term(_ctx(other, t)).item()
    assert got == pytest.approx(want.item(), rel=1e-5) and got > 0.1


def test_audio_terms_are_chosen_by_name_in_distill_terms():
    from kdgan.config import load_config

    cfg = load_config(ROOT / "configs/vocoder_distill.yaml", [
        "distill.terms=[{name: stft, weight: 2}, {name: spectral_kl, temperature: 3}, {name: mel_teacher}]"])
    assert [t.name for t in cfg.distill.terms] == ["stft", "spectral_kl", "mel_teacher"]
    assert cfg.distill.terms[1].temperature == 3
    from kdgan.errors import UserError

    with pytest.raises(UserError, match=r"distill.terms.0.temprature: unknown key; valid keys: name, weight, temperature"):
        load_config(ROOT / "configs/vocoder_distill.yaml", ["distill.terms=[{name: spectral_kl, temprature: 3}]"])


def test_hifigan_pruning_keeps_the_strongest_channels_of_each_stage():
    """A full-width prune reproduces the teacher; a half-width one starts with the teacher's
    stem at its strongest channels (chosen here by filter L1, independently) and is closer
    to the teacher's output than a random student of the same width."""
    from kdgan.tasks.audio.prune import prune_hifigan

    torch.manual_seed(0)
    teacher = HiFiGANGenerator(HiFiGANSpec(width=32)).eval()
    mel = torch.randn(2, 80, 12) - 4
    same = HiFiGANGenerator(HiFiGANSpec(width=32)).eval()
    prune_hifigan(same, teacher)
    assert torch.equal(same(mel), teacher(mel))
    half, random = HiFiGANGenerator(HiFiGANSpec(width=16)).eval(), HiFiGANGenerator(HiFiGANSpec(width=16)).eval()
    prune_hifigan(half, teacher)
    strongest = teacher.stem.weight.abs().sum((1, 2)).argsort(descending=True)[:16].sort().values
    assert torch.allclose(half.stem(mel), teacher.stem(mel)[:, strongest], atol=1e-6)
    with torch.no_grad():
        assert (half(mel) - teacher(mel)).abs().mean() < (random(mel) - teacher(mel)).abs().mean()


def test_vocos_pruning_keeps_the_teachers_function_and_its_frequency_bins():
    from kdgan.errors import UserError
    from kdgan.tasks.audio.prune import prune_vocos
    from kdgan.tasks.audio.vocos import VocosGenerator, VocosSpec

    torch.manual_seed(0)
    teacher = VocosGenerator(VocosSpec(width=32, layers=4, magnitude_prior="pinv")).eval()
    mel = torch.randn(1, 80, 12) - 4
    same = VocosGenerator(VocosSpec(width=32, layers=4, magnitude_prior="pinv")).eval()
    prune_vocos(same, teacher)  # every channel and block kept, in order: the teacher itself
    with torch.no_grad():
        assert torch.equal(same(mel), teacher(mel))
    small = VocosGenerator(VocosSpec(width=8, layers=2, n_fft=512, magnitude_prior="pinv")).eval()
    keep, layers = prune_vocos(small, teacher)
    assert layers.tolist() == [0, 3]  # evenly spaced, first and last
    bins = 513  # the teacher's; the student's bin k (31.25 k Hz) is its bin 2k, phase rows too
    assert torch.equal(small.to_spectrum.weight[5], teacher.to_spectrum.weight[10, keep])
    assert torch.equal(small.to_spectrum.weight[257 + 5], teacher.to_spectrum.weight[bins + 10, keep])
    assert torch.equal(small.stages[1].gamma, teacher.stages[3].gamma[keep])
    with pytest.raises(UserError, match="prune needs a vocos student no wider or deeper"):
        prune_vocos(VocosGenerator(VocosSpec(width=8, layers=2)), teacher)  # no magnitude prior


def test_the_pinv_prior_is_the_mels_pseudo_inverse_magnitude():
    """With the network's spectrum output at zero, the head's magnitude is max(pinv(M) exp(mel),
    1e-5) and its phase 0: M from librosa, pseudo-inverted by numpy (in float64; kdgan's is float32)."""
    import librosa

    from kdgan.tasks.audio.vocos import VocosGenerator, VocosSpec

    g = VocosGenerator(VocosSpec(width=8, layers=1, magnitude_prior="pinv")).eval()
    torch.nn.init.zeros_(g.to_spectrum.weight)
    torch.nn.init.zeros_(g.to_spectrum.bias)
    seen = {}
    g.istft.register_forward_hook(lambda m, args, out: seen.update(real=args[0], imag=args[1]))
    mel = torch.randn(1, 80, 6) - 3
    with torch.no_grad():
        g(mel)
    pinv = np.linalg.pinv(librosa.filters.mel(sr=16000, n_fft=1024, n_mels=80, fmin=0, fmax=8000))
    want = np.maximum(pinv @ np.exp(mel[0].double().numpy()), 1e-5)
    assert np.allclose(seen["real"][0].double().numpy(), want, rtol=1e-4, atol=1e-4)  # float32 pinv
    assert seen["imag"].abs().max() == 0


def test_the_inverse_stft_head_inverts_kdgans_framing_exactly():
    """STFT with the mel's framing (reflect pad (n_fft - hop) / 2, no centring), then the
    head's transposed-convolution inverse: the same samples back."""
    import torch.nn.functional as F

    from kdgan.tasks.audio.vocos import InverseSTFT

    x = torch.randn(2, 256 * 20, generator=torch.Generator().manual_seed(0)) * 0.3
    padded = F.pad(x[:, None], (384, 384), mode="reflect")[:, 0]
    spec = torch.stft(padded, 1024, 256, 1024, torch.hann_window(1024), center=False, return_complex=True)
    assert spec.shape[-1] == 20
    y = InverseSTFT(1024, 256)(spec.real, spec.imag)
    assert y.shape == (2, 1, 20 * 256) and (y[:, 0] - x).abs().max() < 1e-5


def test_vocos_family_trains_and_exports_with_a_dynamic_length(run_cli, tmp_path):
    import onnxruntime as ort

    from kdgan.loading import load_gan
    from kdgan.tasks.audio.vocos import VocosGenerator, VocosSpec

    assert 3.5e6 < sum(p.numel() for p in VocosGenerator(VocosSpec(width=256)).parameters()) < 3.7e6
    run = tmp_path / "vocos"
    overrides = {**TINY, "model.generator": "{arch: vocos, width: 16, layers: 2}"}
    code, _, err = run_cli("train", "--config", ROOT / "configs/vocoder_teacher.yaml", "--out", run,
                           *set_args([f"{k}={v}" for k, v in overrides.items()]))
    assert code == 0, err
    code, out, err = run_cli("export", run, "--format", "onnx", "--out", tmp_path / "v.onnx")
    assert code == 0 and "verified" in out, err
    mel = torch.randn(1, 80, 29) - 4
    got = ort.InferenceSession(str(tmp_path / "v.onnx"), providers=["CPUExecutionProvider"]).run(None, {"mel": mel.numpy()})[0]
    with torch.no_grad():
        assert np_close(got, load_gan(run).generator(mel)) and got.shape == (1, 1, 29 * 256)


@pytest.mark.parametrize("config,override,message", [
    ("vocoder_teacher", "model.generator.arch=unet", "'unet' is a family of image networks; task vocoder takes audio "
                                                     "families: hifigan, vocos"),
    ("glyph_teacher", "model.discriminator.arch=mpd-mrd", "'mpd-mrd' is a family of audio networks; task generation"),
    ("vocoder_distill", "distill.student.arch=dcgan", "distill.student.arch: 'dcgan' is a family of image networks"),
])
def test_a_family_of_another_modality_is_refused_in_one_line(run_cli, tmp_path, config, override, message):
    code, _, err = run_cli("train" if "teacher" in config else "distill", "--config", ROOT / f"configs/{config}.yaml",
                           "--out", tmp_path / "r", "--set", override)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_dnsmos_rates_speech_above_noise():
    """DNSMOS needs no reference: a corpus recording rates well above white noise of the same
    loudness (measured: about 3.0 against 1.1)."""
    from kdgan.tasks.audio.corpus import load_embedded_speech
    from kdgan.tasks.audio.metrics import dnsmos

    clip = load_embedded_speech().split("held_out")[0].audio
    noise = torch.randn(len(clip), generator=torch.Generator().manual_seed(0)) * float(clip.pow(2).mean().sqrt())
    speech, hiss = dnsmos(clip), dnsmos(noise)
    assert 2.5 < speech <= 5 and hiss < 2 and speech > hiss + 1


def test_adversarial_start_trains_the_generator_alone_first():
    """train.adversarial_start: 2 of 3 steps: the discriminator is untouched by the first two
    (and its terms absent from them), the generator learns from the mel loss; then both train."""
    from kdgan.config import load_config
    from kdgan.errors import UserError
    from kdgan.train.build import build_trainer

    overrides = [f"{k}={v}" for k, v in TINY.items()] + ["train.adversarial_start=2"]
    trainer = build_trainer(load_config(ROOT / "configs/vocoder_teacher.yaml", overrides))
    d0 = [p.detach().clone() for p in trainer.discriminator.parameters()]
    g0 = [p.detach().clone() for p in trainer.generator.parameters()]
    for _ in range(2):
        assert set(trainer.train_step()) == {"mel_l1"}
    assert all(torch.equal(a, b) for a, b in zip(d0, trainer.discriminator.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(g0, trainer.generator.parameters()))
    assert {"d_adv", "g_adv", "g_fm", "mel_l1"} <= set(trainer.train_step())
    assert not all(torch.equal(a, b) for a, b in zip(d0, trainer.discriminator.parameters()))
    with pytest.raises(UserError, match="train.adversarial_start: 5 steps without the discriminator need a generator "
                                        "term that runs no discriminator"):
        build_trainer(load_config(ROOT / "configs/glyph_teacher.yaml", ["train.adversarial_start=5"]))


def test_vocoder_costs_are_quoted_per_second_of_audio(vocoder_runs):
    """A vocoder's MACs grow with the clip, so the report divides a clip's MACs by its
    length: TINY's 0.5-s clips are 31 whole hops of 256 samples at 16 kHz; a clip of 0.5 s
    that costs 70M MACs reads as 140M per second."""
    import yaml

    from kdgan.config import validate
    from kdgan.report import table_rows
    from kdgan.tasks import build_task

    cfg = validate(yaml.safe_load((vocoder_runs / "student" / "config.yaml").read_text()))
    assert build_task(cfg).cost_unit() == ("second of audio", 31 * 256 / 16000)
    profile = {"params": 10, "macs_per_sample": 70e6, "cost_unit": {"name": "second of audio", "per_sample": 0.5}}
    entry = {"step": 4, "task": "vocoder", "clips": 2, "profile": profile}
    headers, rows = table_rows([{"name": "student", "latest": entry, "history": [entry]}])
    column = headers.index("MACs per second of audio")
    assert rows[0][column] == "140.00M"


def test_warmup_steps_run_no_discriminator_not_even_the_teachers(vocoder_runs):
    """teacher_fm runs the teacher's discriminator on the student's output (forward and
    backward): before train.adversarial_start it is left out with the student's D terms, and
    the teacher D does not run at all; the output and feature terms train the student."""
    from kdgan.config import load_config
    from kdgan.distill.build import build_distill_trainer

    overrides = [f"{k}={v}" for k, v in {**TINY, "distill.student.width_multiplier": 0.5}.items()]
    cfg = load_config(ROOT / "configs/vocoder_distill.yaml", [*overrides, f"distill.teacher={vocoder_runs / 'teacher'}"])
    trainer = build_distill_trainer(cfg)
    teacher_d = trainer.providers[0].teacher.discriminator
    calls = []
    teacher_d.register_forward_hook(lambda *_: calls.append(1))
    trainer.providers[0].on_fit_start()
    warm = set(trainer.train_step())
    assert {"l1", "stft", "mel_l1"} <= warm and not warm & {"teacher_fm", "g_adv", "g_fm", "d_kl"}
    assert calls == []
    trainer.train_step()
    assert {"teacher_fm", "g_adv", "d_kl"} <= set(trainer.train_step()) and calls

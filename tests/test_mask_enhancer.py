"""The spectral-mask enhancer (#18): its STFT round trip against torch.istft, gains in
MetricGAN+'s range, pruning init, and a short run that exports to ONNX at any length."""

from __future__ import annotations

import torch

from conftest import set_args

from kdgan.tasks.audio.mask_net import BETA, HOP, N_FFT, SpectralMaskGenerator, SpectralMaskSpec, overlap_add, prune_mask


def test_overlap_add_inverts_the_stft_as_torch_istft_does():
    window = torch.hann_window(N_FFT)
    spectrum = torch.randn(2, N_FFT // 2 + 1, 40, dtype=torch.complex64)
    frames = torch.fft.irfft(spectrum, n=N_FFT, dim=1) * window[:, None]
    want = torch.istft(spectrum, N_FFT, HOP, N_FFT, window, center=True)  # drops n_fft / 2 at each end
    got = overlap_add(frames, window, HOP)[:, N_FFT // 2:]
    assert torch.allclose(got[:, : want.shape[1]], want, atol=1e-5)


def test_unit_gains_give_back_the_input_and_gains_stay_in_range():
    net = SpectralMaskGenerator(SpectralMaskSpec(width=8, layers=2))
    noisy = 0.1 * torch.randn(2, 1, 5000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        gains = net.gains(torch.rand(2, N_FFT // 2 + 1, 7) * 10)
        assert gains.min() >= 0 and gains.max() <= BETA
        net.gains = lambda magnitude: torch.ones_like(magnitude)  # an all-pass mask
        assert torch.allclose(net(noisy), noisy, atol=1e-5)


def test_mask_enhancer_prunes_to_the_teacher_at_full_width():
    teacher = SpectralMaskGenerator(SpectralMaskSpec(width=16, layers=3))
    noisy = 0.1 * torch.randn(1, 1, 4000)
    same = SpectralMaskGenerator(SpectralMaskSpec(width=16, layers=3))
    prune_mask(same, teacher)
    assert torch.equal(same(noisy), teacher(noisy))
    keep, layers = prune_mask(SpectralMaskGenerator(SpectralMaskSpec(width=4, layers=2)), teacher)
    assert len(keep) == 4 and layers.tolist() == [0, 2]


def test_mask_enhancer_trains_and_exports_for_any_length(run_cli, tmp_path):
    import onnxruntime as ort

    from kdgan.loading import load_gan

    tiny = {"model.generator.width": 8, "model.generator.layers": 2,
            "model.discriminator.width": 2, "data.segment": 2048, "train.batch_size": 2, "train.steps": 2,
            "train.adversarial_start": 1, "log.sample_every": 2, "log.checkpoint_every": 2, "log.num_samples": 2,
            "log.progress": "false", "log.tensorboard": "false", "task.sample_seconds": 0.5}
    code, _, err = run_cli("train", "--config", "configs/enhance_mask_teacher.yaml", "--out", tmp_path / "run",
                           *set_args([f"{k}={v}" for k, v in tiny.items()]))
    assert code == 0, err
    code, out, err = run_cli("export", tmp_path / "run", "--format", "onnx", "--out", tmp_path / "m.onnx")
    assert code == 0 and "verified against PyTorch" in out, err
    wave = 0.1 * torch.randn(1, 1, 7777)
    got = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"noisy": wave.numpy()})[0]
    with torch.no_grad():
        want = load_gan(tmp_path / "run").generator(wave)
    assert got.shape == (1, 1, 7777) and torch.allclose(torch.from_numpy(got), want, atol=1e-4)

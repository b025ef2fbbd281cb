"""Image-to-image: networks, degradations and masks, photo data, tiled inference, PSNR/SSIM,
and a short CLI run of every task (train, distill, evaluate, compare)."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import ROOT, set_args
from kdgan.data.degrade import downscale, make_masks
from kdgan.data.photos import EMBEDDED_HELD_OUT, Photo, load_paired, random_crops
from kdgan.errors import UserError
from kdgan.metrics.efficiency import macs_per_sample
from kdgan.tasks.image.metrics import patches, psnr_ssim, run_tiled
from kdgan.nets import DiscriminatorSpec, GeneratorSpec, build_discriminator, build_generator


def i2i_spec(arch: str, width: int, **extra) -> GeneratorSpec:
    base = dict(arch=arch, width=width, latent_dim=0, resolution=32, channels=3, in_channels=3)
    return GeneratorSpec(**{**base, **extra})


@pytest.mark.parametrize("arch, in_shape, out_shape, extra", [
    ("resnet-i2i", (2, 4, 32, 32), (2, 3, 32, 32), {"in_channels": 4, "blocks": 2}),
    ("unet", (2, 1, 32, 48), (2, 3, 32, 48), {"in_channels": 1, "blocks": 4}),
    ("sr", (2, 3, 8, 12), (2, 3, 32, 48), {"scale": 4, "blocks": 2}),
])
def test_generators_shapes_and_width_scaling(arch, in_shape, out_shape, extra):
    x = torch.rand(in_shape) * 2 - 1
    wide, narrow = build_generator(i2i_spec(arch, 16, **extra)), build_generator(i2i_spec(arch, 8, **extra))
    y = wide(x)
    assert y.shape == out_shape and y.min() >= -1 and y.max() <= 1
    ratio = macs_per_sample(wide, (x[:1],)) / macs_per_sample(narrow, (x[:1],))
    assert 2.5 < ratio <= 4.0  # inner layers quadratic in width, input/output layers linear, SR interpolation fixed


@pytest.mark.parametrize("scale", [2, 4])
def test_untrained_sr_generator_is_exactly_bicubic(scale):
    import torch.nn.functional as F

    x = torch.rand(2, 3, 10, 14) * 2 - 1
    sr = build_generator(i2i_spec("sr", 8, scale=scale, blocks=2)).eval()
    bicubic = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)
    assert torch.allclose(sr(x), bicubic, atol=1e-5)


def test_latent_and_image_generators_are_not_mixed_up():
    with pytest.raises(UserError, match=r"in_channels: Input should be greater than or equal to 1 \(the unet"):
        build_generator(i2i_spec("unet", 8, in_channels=0))
    with pytest.raises(UserError, match=r"in_channels: Extra inputs are not permitted \(the dcgan"):
        build_generator(GeneratorSpec(arch="dcgan", width=8, latent_dim=4, resolution=16, channels=1, in_channels=3))


def test_patchgan_scores_patches_and_takes_a_smaller_condition():
    d = build_discriminator(DiscriminatorSpec(arch="patchgan", width=8, resolution=64, channels=3, in_channels=3))
    logits = d(torch.zeros(2, 3, 64, 64), torch.zeros(2, 3, 16, 16))  # SR: the low-resolution input
    assert logits.shape == (2, 1, 6, 6)
    with pytest.raises(ValueError, match="needs the generator's input"):
        d(torch.zeros(2, 3, 64, 64))


def test_degradation_and_masks_are_deterministic_for_a_seed():
    hr = torch.rand(3, 3, 32, 32) * 2 - 1
    lr = lambda seed: downscale(hr, 4, "bicubic", 1.0, 5.0, torch.Generator().manual_seed(seed))  # noqa: E731
    assert lr(0).shape == (3, 3, 8, 8) and torch.equal(lr(0), lr(0)) and not torch.equal(lr(0), lr(1))
    flat = torch.full((1, 3, 32, 32), 0.25)
    assert torch.allclose(downscale(flat, 2, "area"), torch.full((1, 3, 16, 16), 0.25))
    with pytest.raises(ValueError, match="multiple of the SR scale"):
        downscale(torch.zeros(1, 3, 30, 30), 4)
    for kind in ("rect", "freeform", "mixed"):
        m = lambda seed: make_masks(kind, 8, 32, 32, torch.Generator().manual_seed(seed))  # noqa: E731
        a = m(0)
        assert torch.equal(a, m(0)) and not torch.equal(a, m(1))
        assert set(a.unique().tolist()) <= {0.0, 1.0} and 0.01 < a.mean() < 0.6
    rect = make_masks("rect", 4, 40, 40, torch.Generator().manual_seed(0))
    for m in rect:  # one axis-aligned box with sides 25-50% of the image's
        rows, cols = m[0].any(1).nonzero(), m[0].any(0).nonzero()
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert 10 <= h <= 20 and 10 <= w <= 20 and m.sum() == h * w


def test_crops_are_a_pure_function_of_the_seed():
    photos = [Photo("a", torch.randint(0, 256, (3, 40, 50), dtype=torch.uint8)),
              Photo("b", torch.randint(0, 256, (3, 30, 30), dtype=torch.uint8))]
    a, b = random_crops(photos, 64, 16, seed=3), random_crops(photos, 64, 16, seed=3)
    assert torch.equal(a.images, b.images) and a.images.shape == (64, 3, 16, 16)
    assert set(a.labels.tolist()) == {0, 1} and a.class_names == ["a", "b"]
    with pytest.raises(UserError, match="do not fit in b"):
        random_crops(photos, 4, 32, seed=0)


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_paired_folder_needs_matching_partners(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("x.png", "y.png"):
        write_png(tmp_path / "A" / name, rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))
        write_png(tmp_path / "B" / name, rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))
    train, held = load_paired(tmp_path, 3, 3, 64)
    assert [p.name for p in train] == ["x.png"] and [p.name for p in held] == ["y.png"]
    assert train[0].pixels.shape == (6, 24, 24)  # target B channels, then input A channels
    write_png(tmp_path / "A" / "z.png", rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))
    with pytest.raises(UserError, match=r"A/z.png has no partner .*B/z.png"):
        load_paired(tmp_path, 3, 3, 64)
    write_png(tmp_path / "B" / "z.png", rng.integers(0, 255, (20, 24, 3), dtype=np.uint8))
    with pytest.raises(UserError, match="must have the same size"):
        load_paired(tmp_path, 3, 3, 64)


def test_psnr_and_ssim_against_hand_computations():
    from skimage.metrics import structural_similarity

    rng = torch.Generator().manual_seed(0)
    target = torch.rand(1, 3, 40, 40, generator=rng) * 2 - 1
    shifted = target + 0.1  # 0.05 in [0, 1] units everywhere: PSNR = 10 log10(1 / 0.05^2)
    psnr, ssim = psnr_ssim(shifted.clamp(-1, 1), target.clamp(-1, 1 - 0.1), shave=0)
    assert psnr == pytest.approx(10 * math.log10(1 / 0.05**2), abs=1e-3)
    assert psnr_ssim(target, target, shave=0)[1] == pytest.approx(1.0, abs=1e-6)
    noisy = (target + 0.2 * torch.randn(target.shape, generator=rng)).clamp(-1, 1)
    _, ssim = psnr_ssim(noisy, target, shave=4)
    a, b = ((noisy + 1) / 2)[0, :, 4:-4, 4:-4].numpy(), ((target + 1) / 2)[0, :, 4:-4, 4:-4].numpy()
    reference = structural_similarity(a, b, channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False)
    assert ssim == pytest.approx(reference, abs=2e-3)


def test_lpips_is_measured_per_held_out_photo_and_averaged():
    from kdgan.config import load_config
    from kdgan.tasks.image.metrics import evaluate_image_task, lpips_distance
    from kdgan.tasks import build_task

    class MeanAbs(nn.Module):
        """Stands in for the LPIPS network (the lpips package needs torchvision, which cannot
        be installed beside this project's CPU torch): same call, (N, 1, 1, 1) distances."""

        def forward(self, a, b):
            assert a.shape[1] == b.shape[1] == 3
            return (a - b).abs().mean((1, 2, 3), keepdim=True)

    assert lpips_distance(MeanAbs(), torch.zeros(1, 1, 8, 8), torch.full((1, 1, 8, 8), 0.5)) == pytest.approx(0.5)
    cfg = load_config(ROOT / "configs/sr_teacher.yaml", ["model.generator.width=4", "model.generator.blocks=1"])
    bicubic = build_generator(GeneratorSpec(arch="sr", width=4, blocks=1, scale=4, latent_dim=0, resolution=64,
                                            channels=3, in_channels=3))
    result = evaluate_image_task(bicubic, build_task(cfg), metrics=("psnr", "lpips"), lpips=MeanAbs())
    per_photo = [e["lpips"] for e in result["photos"]]
    assert len(per_photo) == len(EMBEDDED_HELD_OUT) and all(0 < d < 0.5 for d in per_photo)
    assert result["lpips"] == pytest.approx(sum(per_photo) / len(per_photo))


def test_tiled_inference_equals_the_whole_image():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1)).eval()
    x = torch.rand(1, 3, 70, 90)
    assert torch.allclose(run_tiled(net, x, tile=32, margin=4, multiple=1), net(x), atol=1e-6)
    sr = build_generator(i2i_spec("sr", 8, scale=2, blocks=1)).eval()
    tiled = run_tiled(sr, x[:, :, :40, :48], scale=2, tile=16, margin=8, multiple=1)
    assert tiled.shape == (1, 3, 80, 96)
    assert torch.allclose(tiled, sr(x[:, :, :40, :48]), atol=1e-5)


@pytest.mark.parametrize("arch, extra", [("sr", {"scale": 4, "blocks": 1}), ("unet", {"blocks": 3}),
                                         ("resnet-i2i", {"blocks": 1})])
def test_image_to_image_generators_export_verified(arch, extra, tmp_path):
    from kdgan.deploy import export_onnx, export_torchscript

    from kdgan.deploy import run_onnx, size_multiple

    spec = i2i_spec(arch, 4, **extra)
    generator = build_generator(spec).eval()
    assert export_onnx(generator, spec, tmp_path / "g.onnx") < 1e-4
    assert export_torchscript(generator, spec, tmp_path / "g.pt") < 1e-4
    # checked here, not only by export's own verification: another batch and a size it never saw
    m = size_multiple(generator)
    x = torch.rand(3, spec.in_channels, 5 * m if m > 1 else 21, 3 * m if m > 1 else 13) * 2 - 1
    with torch.no_grad():
        want = generator(x)
        scripted = torch.jit.load(str(tmp_path / "g.pt"))(x)
    assert torch.allclose(run_onnx(tmp_path / "g.onnx", (x,)), want, atol=1e-4)
    assert torch.allclose(scripted, want, atol=1e-5)


def test_patches_cut_without_overlap():
    x = torch.arange(2 * 1 * 4 * 6, dtype=torch.float32).view(2, 1, 4, 6)
    p = patches(x, 2)
    assert p.shape == (12, 1, 2, 2) and torch.equal(p[0, 0], x[0, 0, :2, :2]) and torch.equal(p[-1, 0], x[1, 0, 2:, 4:])


def tiny_i2i(**extra) -> list[str]:
    base = {"data.resolution": 16, "task.crops": 32, "task.max_side": 64, "model.generator.width": 4,
            "model.discriminator.width": 4, "model.discriminator.layers": 2, "train.batch_size": 4,
            "train.steps": 4, "log.log_every": 2, "log.sample_every": 4, "log.checkpoint_every": 4,
            "log.num_samples": 4, "log.progress": "false", "log.tensorboard": "false"}
    base.update(extra)
    return set_args([f"{k}={v}" for k, v in base.items()])


@pytest.mark.parametrize("task", ["sr", "inpainting", "edges"])
def test_each_task_trains_distills_evaluates_and_compares(task, run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("KDGAN_CACHE", str(tmp_path / "cache"))
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    extra = {"model.generator.blocks": 2} if task == "sr" else {"model.generator.blocks": 3}
    code, _, err = run_cli("train", "--config", ROOT / f"configs/{task}_teacher.yaml", "--out", teacher,
                           *tiny_i2i(**extra))
    assert code == 0, err
    code, _, err = run_cli("distill", "--config", ROOT / f"configs/{task}_distill.yaml", "--teacher", teacher,
                           "--out", student, *tiny_i2i(**{**extra, "model.generator.width": 8}))
    assert code == 0, err
    log = [json.loads(line) for line in (student / "log.jsonl").read_text().splitlines()]
    assert {"recon", "l1", "feature_mse", "g_adv"} <= set(log[-1])
    grid = Image.open(student / "samples" / "step_0000004.png")
    assert grid.width > 3.5 * grid.height  # input | teacher | student | ground truth
    for run in (teacher, student):
        code, out, err = run_cli("evaluate", run)
        assert code == 0, err
        assert "psnr" in out and f"{len(EMBEDDED_HELD_OUT)} held-out photos" in out
    e = json.loads((student / "eval.json").read_text())["evaluations"][-1]
    assert {"psnr", "ssim", "fid", "kid", "profile"} <= set(e) and e["features"] == "photos"
    assert [p["photo"] for p in e["photos"]] == list(EMBEDDED_HELD_OUT)
    code, _, err = run_cli("compare", teacher, student, "--out", tmp_path / "report", "--samples", 4)
    assert code == 0, err
    md = (tmp_path / "report" / "report.md").read_text()
    assert "PSNR dB" in md and "held-out whole photos" in md
    code, _, err = run_cli("evaluate", student, "--metrics", "is")
    assert code == 2 and "--metrics: is does not apply to task" in err
    # LPIPS needs the lpips package and AlexNet weights, neither of which is here: one line, exit 2
    code, _, err = run_cli("evaluate", student, "--metrics", "psnr,lpips")
    assert code == 2 and "--metrics lpips: lpips" in err and len(err.strip().splitlines()) == 1
    # sample --input: whole files through the student (inpainting: alpha 0 marks the hole)
    arr = np.random.default_rng(0).integers(0, 255, (20, 28, 4), dtype=np.uint8)
    arr[..., 3] = 255
    arr[4:12, 4:12, 3] = 0
    Image.fromarray(arr if task == "inpainting" else arr[..., :3]).save(tmp_path / "in.png")
    code, _, err = run_cli("sample", student, "--input", tmp_path / "in.png", "--out", tmp_path / "translated")
    assert code == 0, err
    scale = 4 if task == "sr" else 1
    assert Image.open(tmp_path / "translated" / "in.png").size == (24 * scale, 16 * scale)
    # the ONNX export takes any input size and translates the file as the checkpoint does
    code, _, err = run_cli("export", student, "--format", "onnx", "--out", tmp_path / "student.onnx")
    assert code == 0, err
    code, _, err = run_cli("sample", tmp_path / "student.onnx", "--input", tmp_path / "in.png",
                           "--out", tmp_path / "onnx_translated")
    assert code == 0, err
    via_onnx = np.asarray(Image.open(tmp_path / "onnx_translated" / "in.png"), dtype=np.int16)
    via_torch = np.asarray(Image.open(tmp_path / "translated" / "in.png"), dtype=np.int16)
    assert via_onnx.shape == via_torch.shape and np.abs(via_onnx - via_torch).max() <= 1
    code, _, err = run_cli("sample", student, "--out", tmp_path / "x.png")
    assert code == 2 and "--input" in err
    code, out, err = run_cli("sample", student, "--input", tmp_path / "in.png", "--out", tmp_path / "one.png")
    assert code == 0 and Image.open(tmp_path / "one.png").size == (24 * scale, 16 * scale), err  # a file, not a folder
    (tmp_path / "bad.png").write_bytes(b"not a png")
    code, _, err = run_cli("sample", student, "--input", tmp_path / "bad.png", "--out", tmp_path / "bad_out.png")
    assert code == 2 and "bad.png is not a readable image" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bad_out.png").exists()


def test_paired_folder_and_unpaired_runs(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("KDGAN_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    pairs = tmp_path / "pairs"
    for i in range(3):
        b = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        write_png(pairs / "B" / f"{i}.png", b)
        write_png(pairs / "A" / f"{i}.png", 255 - b)  # a colour inversion to learn
    teacher = tmp_path / "paired"
    code, _, err = run_cli("train", "--config", ROOT / "configs/paired_teacher.yaml", "--out", teacher,
                           *tiny_i2i(**{"data.path": pairs, "model.generator.blocks": 3}))
    assert code == 0, err
    code, out, err = run_cli("evaluate", teacher, "--metrics", "psnr,ssim")
    assert code == 0 and "1 held-out photos" in out, err
    # unpaired: the paired teacher (A -> B) distilled with no ground truth; B crops are unrelated
    student = tmp_path / "unpaired"
    code, _, err = run_cli("distill", "--config", ROOT / "configs/unpaired_distill.yaml", "--teacher", teacher,
                           "--out", student, *tiny_i2i(**{"data.name": "folder", "data.path": pairs,
                                                          "task.input_channels": 3}))
    assert code == 0, err
    log = json.loads((student / "log.jsonl").read_text().splitlines()[-1])
    assert "recon" not in log and "l1" in log
    code, out, err = run_cli("evaluate", student)
    assert code == 0 and "psnr" not in out, err
    e = json.loads((student / "eval.json").read_text())["evaluations"][-1]
    assert "too small" in e["patches"]["skipped"]  # 16px crops and a 24px photo: no 32px patch fits
    # a user folder of photos serves the other tasks the same way (here SR x4 on the B images)
    code, _, err = run_cli("train", "--config", ROOT / "configs/sr_teacher.yaml", "--out", tmp_path / "sr_folder",
                           *tiny_i2i(**{"data.name": "folder", "data.path": pairs / "B", "model.generator.blocks": 1}))
    assert code == 0, err
    code, out, err = run_cli("evaluate", tmp_path / "sr_folder", "--metrics", "psnr,ssim", "--no-profile")
    assert code == 0 and "psnr" in out and "1 held-out photos" in out, err
    (pairs / "B" / "2.png").unlink()
    code, _, err = run_cli("train", "--config", ROOT / "configs/paired_teacher.yaml", "--out", tmp_path / "x",
                           *tiny_i2i(**{"data.path": pairs}))
    assert code == 2 and "2.png has no partner" in err and len(err.strip().splitlines()) == 1


def test_task_config_mistakes_are_one_line(run_cli, tmp_path):
    cases = [
        (["model.generator.arch=dcgan"], "needs an image-to-image generator"),
        (["task.name=inpainting"], "sr is for task super_resolution"),
        (["model.discriminator.arch=dcgan"], "needs patchgan"),
        (["data.name=glyphs"], "needs whole photos"),
        (["task.name=unpaired", "model.generator.arch=unet", "task.input_channels=1"], "no ground truth"),
    ]
    for overrides, message in cases:
        code, _, err = run_cli("train", "--config", ROOT / "configs/sr_teacher.yaml", "--out", tmp_path / "r",
                               *set_args(overrides))
        assert code == 2 and message in err, (overrides, err)
    assert not (tmp_path / "r").exists()


def test_sr_prune_init_at_full_width_reproduces_the_teacher():
    from kdgan.distill.students import prune_init

    torch.manual_seed(0)
    teacher = build_generator(i2i_spec("sr", 8, scale=2, blocks=2)).eval()
    for p in teacher.parameters():  # an untrained SR net is bicubic; give every layer weights
        p.data.normal_(0, 0.1)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    full = build_generator(i2i_spec("sr", 8, scale=2, blocks=2)).eval()
    prune_init(full, teacher, "l1")
    assert torch.allclose(full(x), teacher(x), atol=1e-6)
    narrow = build_generator(i2i_spec("sr", 4, scale=2, blocks=2)).eval()
    kept = prune_init(narrow, teacher, "l1")
    assert len(kept) == 3 and narrow(x).shape == (2, 3, 16, 16)
    assert not torch.allclose(narrow(x), build_generator(i2i_spec("sr", 4, scale=2, blocks=2)).eval()(x))


@pytest.mark.parametrize("arch, blocks", [("unet", 3), ("unet", 4), ("resnet-i2i", 2)])
@pytest.mark.parametrize("importance", ["bn", "l1"])
def test_unet_and_resnet_prune_init_at_full_width_reproduces_the_teacher(arch, blocks, importance):
    from kdgan.distill.students import prune_init

    torch.manual_seed(0)
    spec = dict(blocks=blocks, in_channels=2, resolution=32)
    teacher = build_generator(i2i_spec(arch, 8, **spec))
    for m in teacher.modules():  # trained-looking norms: distinct scales and running statistics
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.2, 2), m.bias.data.normal_(0, 0.3)
            m.running_mean.normal_(0, 0.2), m.running_var.uniform_(0.5, 2)
    teacher.eval()
    x = torch.rand(2, 2, 32, 32) * 2 - 1
    full = build_generator(i2i_spec(arch, 8, **spec)).eval()
    prune_init(full, teacher, importance)
    assert torch.allclose(full(x), teacher(x), atol=1e-5)
    narrow = build_generator(i2i_spec(arch, 4, **spec)).eval()
    prune_init(narrow, teacher, importance)
    assert narrow(x).shape == (2, 3, 32, 32)
    # the kept channels carry the teacher's function: closer to it than a random narrow net
    random = build_generator(i2i_spec(arch, 4, **spec)).eval()
    assert (narrow(x) - teacher(x)).abs().mean() < (random(x) - teacher(x)).abs().mean()


@pytest.mark.parametrize("arch", ["sr", "resnet-i2i"])
def test_shallower_pruned_student_keeps_the_teachers_strongest_blocks(arch):
    """A teacher block that writes nothing to the trunk is an identity: a student one block
    shallower, at full width, must drop exactly that block and compute the teacher's function."""
    from kdgan.distill.students import prune_init

    torch.manual_seed(0)
    spec = dict(blocks=3, resolution=32, **({"scale": 2} if arch == "sr" else {"in_channels": 3}))
    teacher = build_generator(i2i_spec(arch, 8, **spec))
    for p in teacher.parameters():
        p.data.normal_(0, 0.1)
    dead = teacher.blocks[1].body
    with torch.no_grad():  # block 1 writes zeros: its last conv (and, for resnet-i2i, its BatchNorm) are zero
        for m in (dead[2],) if arch == "sr" else (dead[1], dead[2]):
            for p in m.parameters():
                p.zero_()
    teacher.eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    student = build_generator(i2i_spec(arch, 8, **{**spec, "blocks": 2})).eval()
    prune_init(student, teacher, "l1")
    assert torch.allclose(student(x), teacher(x), atol=1e-5)
    too_deep = build_generator(i2i_spec(arch, 8, **{**spec, "blocks": 4}))
    with pytest.raises(UserError, match="distill.student.blocks: .* at most the teacher's 3"):
        prune_init(too_deep, teacher, "l1")

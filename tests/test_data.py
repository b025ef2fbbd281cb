import numpy as np
import pytest
import torch
from PIL import Image

from kdgan.config import load_config
from kdgan.data import Reading, load_dataset, to_float, to_uint8
from kdgan.data.sampling import EpochSampler
from kdgan.tasks.image.generation import ImageGeneration
from kdgan.errors import UserError


def test_glyphs_embedded():
    ds = load_dataset("glyphs", None, 32, 1)
    assert ds.images.shape[1:] == (1, 32, 32) and ds.images.dtype == torch.uint8
    assert ds.num_classes == 62 and ds.class_names[:3] == ["0", "1", "2"] and ds.class_names[10] == "A"
    assert len(ds) == 62 * int(ds.font_ids.max() + 1) and len(ds) > 7000
    # every class appears once per font face
    assert torch.bincount(ds.labels).unique().tolist() == [len(ds) // 62]
    # glyphs are white ink on black: the border is dark, the centre has ink
    assert ds.images[:, :, 0, :].float().mean() < 5 and ds.images.float().mean() > 20


@pytest.mark.parametrize("resolution,channels", [(16, 1), (32, 3)])
def test_digits_resized(resolution, channels):
    ds = load_dataset("digits", None, resolution, channels)
    assert ds.images.shape == (1797, channels, resolution, resolution)
    assert ds.num_classes == 10 and ds.images.max() > 200
    if channels == 3:  # grey replicated into RGB
        assert torch.equal(ds.images[:, 0], ds.images[:, 2])


def _write_images(folder, names, size=(20, 24), mode="RGB"):
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new(mode, size, color=(i * 40) % 255 if mode == "L" else (i * 40 % 255, 0, 0)).save(path)


def test_folder_with_class_subfolders(tmp_path):
    _write_images(tmp_path, ["cat/a.png", "cat/b.jpg", "dog/c.png", "dog/deep/d.PNG"])
    ds = load_dataset("folder", tmp_path, 16, 3)
    assert ds.images.shape == (4, 3, 16, 16)
    assert ds.class_names == ["cat", "dog"] and ds.labels.tolist() == [0, 0, 1, 1]


def test_folder_flat_is_unlabelled_and_converted_to_grey(tmp_path):
    _write_images(tmp_path, ["x.png", "y.png"])
    ds = load_dataset("folder", tmp_path, 8, 1)
    assert ds.images.shape == (2, 1, 8, 8) and ds.class_names == []


def test_folder_corrupt_image_names_the_file(tmp_path):
    _write_images(tmp_path, ["good.png"])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(UserError, match="broken.png"):
        load_dataset("folder", tmp_path, 16, 1)


def test_folder_truncated_image_names_the_file(tmp_path):
    _write_images(tmp_path, ["full.jpg"], size=(64, 64))
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="cut.jpg"):
        load_dataset("folder", tmp_path, 16, 1)


def test_folder_empty_or_missing(tmp_path):
    with pytest.raises(UserError, match="no .png"):
        load_dataset("folder", tmp_path, 16, 1)
    with pytest.raises(UserError, match="not a folder"):
        load_dataset("folder", tmp_path / "missing", 16, 1)


@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW"])
def test_npz_layouts(tmp_path, layout):
    rng = np.random.default_rng(0)
    shape = {"NHW": (5, 12, 12), "NHWC": (5, 12, 12, 3), "NCHW": (5, 3, 12, 12)}[layout]
    path = tmp_path / "d.npz"
    np.savez(path, images=rng.integers(0, 255, shape, dtype=np.uint8), labels=np.arange(5) % 2)
    ds = load_dataset("npz", path, 16, 3)
    assert ds.images.shape == (5, 3, 16, 16) and ds.class_names == ["0", "1"]


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "f.npz", images=np.zeros((2, 8, 8), np.float32))
    with pytest.raises(UserError, match="uint8"):
        load_dataset("npz", tmp_path / "f.npz", 8, 1)
    np.savez(tmp_path / "n.npz", pictures=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(UserError, match="'images'"):
        load_dataset("npz", tmp_path / "n.npz", 8, 1)
    with pytest.raises(UserError, match="does not exist"):
        load_dataset("npz", tmp_path / "none.npz", 8, 1)


def test_float_round_trip():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    f = to_float(x)
    assert f.min() == -1 and f.max() == 1
    assert torch.equal(to_uint8(f), x)


def test_sampler_is_a_function_of_step():
    a, b = EpochSampler(100, 8, seed=3), EpochSampler(100, 8, seed=3)
    first = [a.indices(s) for s in range(30)]
    # a fresh sampler jumping straight to step 17 (as a resumed run does) agrees
    assert torch.equal(b.indices(17), first[17])
    epoch0 = torch.cat(first[:12])  # 12 full batches per epoch, no repeats within it
    assert len(epoch0.unique()) == 96
    with pytest.raises(UserError, match="batch_size"):
        EpochSampler(4, 8, 0)


def test_conditional_task_needs_labels(tmp_path):
    _write_images(tmp_path, ["a.png", "b.png"])
    ds = load_dataset("folder", tmp_path, 8, 1)
    with pytest.raises(UserError, match="data.conditional"):
        ImageGeneration(ds, 4, conditional=True)


def test_grey_image_where_rgb_is_expected_is_named_unless_allowed(tmp_path):
    _write_images(tmp_path, ["a.png", "b.png"])
    _write_images(tmp_path, ["scan.png"], mode="L")
    with pytest.raises(UserError, match=r"scan.png is a grey image but data.channels is 3.*grey_to_rgb"):
        load_dataset("folder", tmp_path, 8, 3)
    ds = load_dataset("folder", tmp_path, 8, 3, Reading(grey_to_rgb=True))
    grey = ds.images[2]
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    assert load_dataset("folder", tmp_path, 8, 1).images.shape == (3, 1, 8, 8)  # grey runs take any image


def test_non_image_files_are_ignored_but_a_fake_image_is_named(tmp_path):
    _write_images(tmp_path, ["a.png", "b.png"])
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "labels.csv").write_text("a,1")
    assert len(load_dataset("folder", tmp_path, 8, 3)) == 2
    (tmp_path / "c.jpg").write_text("not an image either")
    with pytest.raises(UserError, match=r"cannot read image .*c\.jpg"):
        load_dataset("folder", tmp_path, 8, 3)


def test_transparent_pixels_are_composited_over_the_background(tmp_path):
    """An emoji-like RGBA file: a red disc on a transparent square whose hidden colour is
    black. The background shows through (white by default, data.background otherwise), and
    half-transparent pixels blend; grey + alpha (LA) and palette transparency too."""
    rgba = np.zeros((8, 8, 4), np.uint8)  # transparent black
    rgba[2:6, 2:6] = (255, 0, 0, 255)  # opaque red
    rgba[0, 0] = (0, 0, 255, 128)  # half-transparent blue
    Image.fromarray(rgba, "RGBA").save(tmp_path / "emoji.png")
    la = np.zeros((8, 8, 2), np.uint8)
    Image.fromarray(la, "LA").save(tmp_path / "grey_alpha.png")
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    palette.paste(1, (2, 2, 6, 6))
    palette.save(tmp_path / "palette.png", transparency=0)
    ds = load_dataset("folder", tmp_path, 8, 3, Reading(grey_to_rgb=True))
    emoji, grey_alpha, pal = (ds.images[i].permute(1, 2, 0).numpy() for i in range(3))
    assert (emoji[7, 7] == 255).all() and tuple(emoji[3, 3]) == (255, 0, 0)
    assert tuple(emoji[0, 0]) == (127, 127, 255)  # 50% blue over white
    assert (grey_alpha == 255).all()
    assert (pal[0, 0] == 255).all() and tuple(pal[3, 3]) == (10, 200, 30)
    black = load_dataset("folder", tmp_path, 8, 3, Reading(grey_to_rgb=True, background=(0, 0, 0)))
    assert (black.images[0].permute(1, 2, 0).numpy()[7, 7] == 0).all()
    cfg = load_config(None, ["data.background='#102030'"])  # quoted: YAML reads a bare # as a comment
    assert cfg.data.reading.background == (16, 32, 48)
    with pytest.raises(UserError, match="data.background: unknown colour 'nope'"):
        load_config(None, ["data.background=nope"])


def test_generation_on_photos_draws_its_crop_pool_from_the_config():
    """seed, task.crops and task.max_side shape the pool, as they do for image-to-image tasks."""
    from kdgan.tasks import build_task

    base = ["data.name=photos", "data.channels=3", "data.resolution=16", "task.crops=10", "task.max_side=64"]
    a = build_task(load_config(None, base)).dataset.images
    b = build_task(load_config(None, [*base, "seed=1"])).dataset.images
    assert a.shape == (10, 3, 16, 16) and not torch.equal(a, b)
    assert torch.equal(a, build_task(load_config(None, base)).dataset.images)

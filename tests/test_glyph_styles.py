"""#20's embedded unpaired domains: serif and sans-serif glyphs (task unpaired, data.name
glyphs). Which faces are which style and which are held out, what evaluation measures on
them, and the README's two commands (CycleGAN teacher, then its distillation) end to end."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from conftest import ROOT, set_args

from kdgan.data.embedded import load_glyphs
from kdgan.tasks.image.glyph_styles import GlyphStyles, evaluate_styles, face_style, style_faces

TINY = {"model.generator.width": 4, "model.generator.blocks": 1, "model.discriminator.width": 4,
        "train.batch_size": 4, "train.steps": 2, "train.fake_pool": 4, "log.log_every": 1, "log.sample_every": 2,
        "log.checkpoint_every": 2, "log.num_samples": 4, "log.progress": "false", "log.tensorboard": "false"}


def tiny(**changes) -> list[str]:
    return set_args([f"{k}={v}" for k, v in {**TINY, **changes}.items()])


@pytest.mark.parametrize("name, style", [
    ("TeX Gyre Termes Regular", "serif"), ("C059 Roman", "serif"), ("DejaVu Serif Condensed Bold", "serif"),
    ("Roboto Thin", "sans"), ("DejaVu Sans ExtraLight", "sans"), ("URW Gothic Demi", "sans"),
    ("DejaVu Sans Mono Book", None), ("FreeSerif Italic", None), ("URW Gothic Book Oblique", None),
    ("TeX Gyre Chorus Regular", None), ("Noto Traditional Nushu Regular", None)])
def test_upright_proportional_faces_have_a_style_and_the_others_none(name, style):
    assert face_style(name) == style


def test_held_out_faces_are_every_fifth_of_each_style_and_never_train():
    names = load_glyphs(32, 1).font_names
    for style, count in (("serif", 28), ("sans", 37)):  # counted by hand in GLYPHS_FONTS.md
        train, held = style_faces(names, style)
        assert len(train) + len(held) == count and len(held) == count // 5
        assert not set(train) & set(held)
    task = GlyphStyles(("serif", "sans"), 32)
    assert len(task.test_a) == 5 * 62 and len(task.test_b) == 7 * 62  # every character of each held-out face
    faces = lambda ds: set(ds.font_ids.tolist())  # noqa: E731
    assert not faces(task.pool_a) & faces(task.test_a) and not faces(task.dataset) & faces(task.test_b)
    assert all(face_style(names[f]) == "serif" for f in faces(task.pool_a) | faces(task.test_a))
    assert all(face_style(names[f]) == "sans" for f in faces(task.dataset) | faces(task.test_b))
    reverse = GlyphStyles(("sans", "serif"), 32)  # task.domains the other way round
    assert torch.equal(reverse.test_a.images, task.test_b.images)


def test_a_translator_that_changes_nothing_scores_as_the_untranslated_input():
    from kdgan.metrics.classifier import load_classifier

    class Unchanged(nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x

    task = GlyphStyles(("serif", "sans"), 32)
    result = evaluate_styles(Unchanged(), task, load_classifier("glyphs")[0])
    same = result["baselines"]["the input (serif, untranslated)"]
    assert result["char_accuracy"] == same["char_accuracy"] > 0.85  # the classifier reads serif glyphs
    assert result["fid"] == pytest.approx(same["fid"]) and result["fid"] > result["real_vs_real"]["fid"]


def test_cyclegan_teacher_then_distillation_on_the_glyph_styles(run_cli, tmp_path, monkeypatch):
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    code, _, err = run_cli("train", "--config", ROOT / "configs/cyclegan_teacher.yaml", "--out", teacher,
                           *tiny(**{"log.eval_checkpoints": "true"}))
    assert code == 0, err
    logged = json.loads((teacher / "log.jsonl").read_text().splitlines()[-1])
    assert {"d_adv", "g_adv", "cycle", "identity"} <= set(logged)
    during = json.loads((teacher / "eval.json").read_text())["evaluations"][-1]
    assert during["domains"] == ["serif", "sans"] and {"fid", "kid", "char_accuracy", "baselines"} <= set(during)
    code, _, err = run_cli("distill", "--config", ROOT / "configs/cyclegan_distill.yaml", "--teacher", teacher,
                           "--out", student, *tiny())
    assert code == 0, err
    spec = json.loads((student / "checkpoints" / "step_0000002.json").read_text())["generator_spec"]
    assert spec["arch"] == "resnet-i2i" and spec["width"] == 1  # a quarter of the teacher's width
    monkeypatch.chdir(tmp_path)  # evaluated by relative paths, compared from another folder below
    for run in ("teacher", "student"):
        code, out, err = run_cli("evaluate", run, "--no-profile", "--metrics", "fid")  # KID: in training's
        assert code == 0, err
        assert "310 held-out serif glyphs translated, against 434 held-out sans glyphs" in out
        assert "char_accuracy" in out and "the input (serif, untranslated) (baseline)" in out
    code, out, err = run_cli("export", "student", "--format", "onnx", "--out", "onnx")
    assert code == 0, err
    code, out, err = run_cli("evaluate", "onnx/generator.onnx", "--no-profile", "--metrics", "fid")
    assert code == 0 and "char_accuracy" in out, err  # the exported file is scored like the run
    monkeypatch.chdir(ROOT)
    code, _, err = run_cli("compare", teacher, student, "--out", tmp_path / "report")
    assert code == 0, err
    md = (tmp_path / "report" / "report.md").read_text()
    assert "character accuracy" in md and "the input (serif, untranslated)" in md
    assert "310 held-out serif glyphs translated and scored against 434 held-out sans glyphs" in md


@pytest.mark.parametrize("changes, message", [
    ({"task.domains": "[serif, serif]"}, "task.domains"),
    ({"data.channels": 3}, "data.channels"),
    ({"task.domains": "[serif, script]"}, "task.domains"),
])
def test_glyph_style_mistakes_are_one_line(run_cli, tmp_path, changes, message):
    code, _, err = run_cli("train", "--config", ROOT / "configs/cyclegan_teacher.yaml", "--out", tmp_path / "run",
                           *tiny(**changes))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()

"""Unconditional text (#19, task.name: lm): the decoder-only model samples from latent codes
(the same code, the same sentence), prunes to its teacher at full size, and trains, distils,
evaluates and samples through the CLI with tiny networks on a user's text file."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import set_args, teacher_and_student

from kdgan.data.parallel_text import load_parallel_text
from kdgan.tasks.text.decoder import DecoderSpec, TextDecoder
from kdgan.tasks.text.prune import prune_transformer
from kdgan.tasks.text.tokenizer import BOS, EOS, PAD

TINY = {"task.vocab_size": 300, "model.generator.width": 16, "model.generator.heads": 2,
        "model.generator.layers": 1, "model.generator.expansion": 2, "model.generator.max_len": 48,
        "model.discriminator.width": 8, "train.batch_size": 8, "train.steps": 4, "train.adversarial_start": 2,
        "train.warmup_steps": 2, "log.log_every": 2, "log.sample_every": 4, "log.checkpoint_every": 4,
        "log.num_samples": 3, "log.progress": "false", "log.tensorboard": "false"}


def test_the_same_latent_code_samples_the_same_sentence_and_uniform_codes_follow_the_model():
    torch.manual_seed(0)
    model = TextDecoder(DecoderSpec(width=16, heads=2, layers=2, vocab=12, max_len=10, dropout=0)).eval()
    z = torch.rand(64, 10, generator=torch.Generator().manual_seed(1))
    a, b = model(z), model(z)
    assert torch.equal(a, b) and a.shape == (64, 10) and (a[:, 0] == BOS).all()
    for row in a:  # padding only after an EOS
        ends = (row == EOS).nonzero()
        if len(ends):
            assert (row[ends[0, 0] + 1:] == PAD).all()
    # the first token's frequencies over many codes follow the model's first distribution
    z = torch.rand(4000, 10, generator=torch.Generator().manual_seed(2))
    first = model(z)[:, 1]
    with torch.no_grad():
        p = model.teacher_forced(torch.full((1, 1), BOS))[0, 0].softmax(-1)
    counts = torch.bincount(first, minlength=12).float() / len(first)
    assert (counts - p).abs().max() < 0.03


def test_a_decoder_pruned_at_full_size_is_its_teacher():
    torch.manual_seed(0)
    spec = DecoderSpec(width=32, heads=4, layers=3, vocab=40, max_len=12, dropout=0)
    teacher = TextDecoder(spec).eval()
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))
    same = TextDecoder(spec).eval()
    prune_transformer(same, teacher)
    tokens = torch.randint(4, 40, (2, 7))
    assert torch.equal(same.teacher_forced(tokens), teacher.teacher_forced(tokens))
    narrow = TextDecoder(spec.model_copy(update={"width": 16, "layers": 2})).eval()
    prune_transformer(narrow, teacher)  # runs: a narrower, shallower student of the same family


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "lines.txt"
    short = [t for _, _, t in load_parallel_text("style_kjv_web") if len(t.split()) <= 6][:80]
    path.write_text("\n".join(short) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lm_runs(tmp_path_factory, lines_file):
    root = tmp_path_factory.mktemp("lm_runs")
    data = {"data.name": "lines", "data.path": lines_file}
    return teacher_and_student(root, "configs/lm_teacher.yaml", "configs/lm_distill.yaml", {**TINY, **data},
                               {"model.generator.width": 8, "task.targets": "teacher"})


def test_lm_runs_distil_evaluate_and_sample(lm_runs, run_cli, tmp_path):
    student = lm_runs / "student"
    logged = {k for line in (student / "log.jsonl").read_text().splitlines() for k in json.loads(line)}
    assert {"nll", "kl", "feature_mse", "g_adv", "d_adv"} <= logged, logged
    table = (student / "samples" / "step_0000004.tsv").read_text(encoding="utf-8").splitlines()
    assert table[0].split("\t") == ["teacher", "student, step 4", "a held-out sentence"] and len(table) == 4
    code, out, err = run_cli("evaluate", student, "--samples", 20)
    assert code == 0, err
    result = json.loads((student / "eval.json").read_text())["evaluations"][-1]
    assert result["task"] == "lm" and result["samples"] == 20 and result["held_out_sentences"] == 8
    assert result["nll"] > 0 and 0 <= result["bleu"] <= 100 and 0 <= result["distinct_2"] <= 1
    assert result["real_vs_real"]["bleu"] > 0 and result["profile"]["onnxruntime_latency"]["1"]["median_s"] > 0
    code, out, err = run_cli("sample", student, "-n", 5, "--seed", 3, "--out", tmp_path / "s.txt")
    assert code == 0, err
    first = (tmp_path / "s.txt").read_text(encoding="utf-8")
    assert len(first.splitlines()) == 5
    assert run_cli("sample", student, "-n", 5, "--seed", 3, "--out", tmp_path / "t.txt")[0] == 0
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == first  # the same codes, the same sentences

    # the cached step exported: sampled through onnxruntime, the same codes give the same sentences
    code, out, err = run_cli("export", student, "--format", "onnx", "--out", tmp_path / "g.onnx")
    assert code == 0 and "verified" in out, err
    assert run_cli("sample", tmp_path / "g.onnx", "-n", 5, "--seed", 3, "--out", tmp_path / "o.txt")[0] == 0
    assert (tmp_path / "o.txt").read_text(encoding="utf-8") == first
    code, _, err = run_cli("export", student, "--format", "torchscript", "--out", tmp_path / "g.pt")
    assert code == 2 and "exports to onnx" in err and not (tmp_path / "g.pt").exists()


def test_a_bad_lines_file_is_one_line_naming_file_and_line(run_cli, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"a fine line\n\xff\xfe\n")
    args = set_args([f"{k}={v}" for k, v in {**TINY, "data.name": "lines", "data.path": bad}.items()])
    code, _, err = run_cli("train", "--config", "configs/lm_teacher.yaml", "--out", tmp_path / "run", *args)
    assert code == 2 and "bad.txt line 2: not UTF-8 text" in err and not (tmp_path / "run").exists()

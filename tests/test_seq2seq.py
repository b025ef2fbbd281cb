"""The text task (#19, task.name: seq2seq): what a training step feeds the networks, the
Transformer's pruning init, train / distill / evaluate / sample through the CLI with tiny
networks on a user's TSV file, and the one-line errors of bad input files."""

from __future__ import annotations

import json
import os

import pytest
import torch

from conftest import set_args, teacher_and_student

from kdgan.data.parallel_text import load_parallel_text
from kdgan.tasks.text.prune import prune_transformer
from kdgan.tasks.text.tokenizer import BOS, EOS, PAD
from kdgan.tasks.text.transformer import TextTransformer, TransformerSpec

TINY = {"task.vocab_size": 300, "model.generator.width": 16, "model.generator.heads": 2,
        "model.generator.encoder_layers": 1, "model.generator.decoder_layers": 1, "model.generator.expansion": 2,
        "model.generator.max_len": 64, "model.discriminator.width": 8, "train.batch_size": 8, "train.steps": 4,
        "train.adversarial_start": 2, "train.warmup_steps": 2, "log.log_every": 2, "log.sample_every": 4,
        "log.checkpoint_every": 4, "log.num_samples": 3, "log.progress": "false", "log.tensorboard": "false"}


@pytest.fixture(scope="module")
def pairs_tsv(tmp_path_factory):
    """80 short English -> Spanish verses (at most 6 words) as a user's TSV file."""
    path = tmp_path_factory.mktemp("text") / "pairs.tsv"
    short = [(s, t) for _, s, t in load_parallel_text("translation_en_es") if len(s.split()) <= 6][:80]
    path.write_text("".join(f"{s}\t{t}\n" for s, t in short), encoding="utf-8")
    return path


def tiny_task(pairs_tsv, **extra):
    from kdgan.config import load_config
    from kdgan.tasks import build_task

    values = {**TINY, "data.name": "tsv", "data.path": str(pairs_tsv), **extra}
    return build_task(load_config("configs/translate_teacher.yaml", [f"{k}={v}" for k, v in values.items()]))


def test_a_step_feeds_the_decoder_the_target_before_its_eos_and_judges_padding_as_padding(pairs_tsv):
    task = tiny_task(pairs_tsv)
    assert len(task) == 72 and len(task.test_pairs) == 8  # every 10th line held out
    batch = task.batch(torch.arange(4), torch.Generator().manual_seed(0))
    src, tgt_in = batch.g_inputs
    real = batch.real
    for i in range(4):
        ids = task.targets[i]
        n = len(ids) - 1
        assert real[i, :n].tolist() == ids[1:] and (real[i, n:] == PAD).all()  # w1 .. wn EOS, then padding
        assert tgt_in[i, :n].tolist() == ids[:-1] and (tgt_in[i, n:] == PAD).all()  # BOS w1 .. wn
        assert src[i, 0] == BOS and EOS in src[i].tolist()
    torch.manual_seed(0)
    generator = TextTransformer(TransformerSpec(width=16, heads=2, encoder_layers=1, decoder_layers=1, vocab=300,
                                                max_len=40))
    output = generator(src, tgt_in)
    assert torch.equal(output.extras["mask"], real != PAD)  # the positions that hold a token
    view = task.discriminator_view(output, torch.Generator().manual_seed(0))
    assert torch.equal(view[real == PAD], torch.nn.functional.one_hot(torch.tensor(PAD), 300).float().expand(
        int((real == PAD).sum()), -1))
    assert torch.allclose(view.sum(-1), torch.ones(real.shape))
    view[real != PAD].pow(2).sum().backward()  # the relaxation passes gradients to the generator
    assert generator.embed.weight.grad.abs().sum() > 0


def test_the_score_function_term_rewards_tokens_the_discriminator_believes():
    """SeqGAN's gradient, by hand: -mean((sigmoid(D) - its mean) * log p(sampled token)) over
    the positions that hold a token; a step along it raises the log-probability of the token
    the discriminator scored above the mean and lowers the other's."""
    from kdgan.losses.terms import StepContext
    from kdgan.tasks.text.tokens import ScoreFunction

    logits = torch.zeros(1, 3, 5, requires_grad=True)
    sampled = torch.tensor([[2, 4, 1]])
    view = torch.nn.functional.one_hot(sampled, 5).float()
    d_logits = torch.tensor([[2.0, -2.0, 9.0]])  # the third position is padding: left out
    mask = torch.tensor([[True, True, False]])
    ctx = StepContext("g", None, sampled, d_logits, None, None, g_logits=logits, view=view, g_extras={"mask": mask})
    loss = ScoreFunction()(ctx)
    r = torch.sigmoid(torch.tensor([2.0, -2.0]))
    log_p = torch.log(torch.tensor(0.2))
    assert loss.item() == pytest.approx(float(-((r - r.mean()) * log_p).mean()), rel=1e-6)
    loss.backward()
    assert logits.grad[0, 0, 2] < 0 < logits.grad[0, 1, 4]  # descent raises the believed token, lowers the other
    assert logits.grad[0, 2].abs().sum() == 0


def test_pruning_at_full_size_copies_the_teacher_and_narrower_starts_nearer_it():
    torch.manual_seed(0)
    spec = TransformerSpec(width=32, heads=4, encoder_layers=3, decoder_layers=3, vocab=50, max_len=16, dropout=0)
    teacher = TextTransformer(spec).eval()
    with torch.no_grad():
        for p in teacher.parameters():  # away from the initialisation every network starts at
            p.add_(0.05 * torch.randn_like(p))
    src, tgt = torch.randint(4, 50, (3, 7)), torch.randint(4, 50, (3, 5))
    same = TextTransformer(spec).eval()
    prune_transformer(same, teacher)
    assert torch.equal(same.teacher_forced(src, tgt), teacher.teacher_forced(src, tgt))

    def kl(student) -> float:
        with torch.no_grad():
            return float(torch.nn.functional.kl_div(student.teacher_forced(src, tgt).log_softmax(-1),
                                                    teacher.teacher_forced(src, tgt).softmax(-1), reduction="batchmean"))

    small = spec.model_copy(update={"width": 16, "encoder_layers": 2, "decoder_layers": 2})
    pruned = TextTransformer(small).eval()
    prune_transformer(pruned, teacher)
    assert all(kl(pruned) < kl(TextTransformer(small).eval()) for _ in range(3))
    from kdgan.errors import UserError

    with pytest.raises(UserError, match="prune needs a text-transformer student no wider"):
        prune_transformer(TextTransformer(spec.model_copy(update={"width": 64})), teacher)


def test_a_resumed_run_drops_the_units_an_uninterrupted_one_would(pairs_tsv, run_cli, tmp_path):
    """Dropout draws from torch's global generator, which checkpoints keep (rng.torch)."""
    from safetensors.torch import load_file

    values = {**TINY, "data.name": "tsv", "data.path": pairs_tsv, "train.adversarial_start": 4,
              "model.generator.dropout": 0.5, "log.checkpoint_every": 2}
    args = set_args([f"{k}={v}" for k, v in values.items()])
    assert run_cli("train", "--config", "configs/translate_teacher.yaml", "--out", tmp_path / "straight", *args)[0] == 0
    short = set_args([f"{k}={v}" for k, v in {**values, "train.steps": 2}.items()])
    assert run_cli("train", "--config", "configs/translate_teacher.yaml", "--out", tmp_path / "split", *short)[0] == 0
    code, _, err = run_cli("train", "--out", tmp_path / "split", "--resume", "--set", "train.steps=4")
    assert code == 0, err
    a = load_file(tmp_path / "straight" / "checkpoints" / "step_0000004.safetensors")
    b = load_file(tmp_path / "split" / "checkpoints" / "step_0000004.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("generator."))


def test_a_maximum_likelihood_run_has_no_discriminator_to_offer(pairs_tsv, run_cli, tmp_path):
    """train.adversarial_start = steps: the discriminator never trained, so neither the run nor
    its exported folder offers it to teacher-discriminator terms."""
    from kdgan.loading import load_gan

    values = {**TINY, "data.name": "tsv", "data.path": pairs_tsv, "train.adversarial_start": 4}
    args = set_args([f"{k}={v}" for k, v in values.items()])
    assert run_cli("train", "--config", "configs/translate_teacher.yaml", "--out", tmp_path / "mle", *args)[0] == 0
    assert load_gan(tmp_path / "mle").discriminator is None
    assert run_cli("export", tmp_path / "mle", "--out", tmp_path / "folder")[0] == 0
    assert not (tmp_path / "folder" / "discriminator.safetensors").exists()
    assert json.loads((tmp_path / "folder" / "config.json").read_text())["discriminator"] is None
    gan = load_gan(tmp_path / "folder")
    assert gan.discriminator is None and gan.generator_spec.tokenizer


@pytest.fixture(scope="module")
def text_runs(tmp_path_factory, pairs_tsv):
    root = tmp_path_factory.mktemp("seq2seq")
    cache = os.environ.get("KDGAN_CACHE")
    os.environ["KDGAN_CACHE"] = str(root / "cache")
    try:
        data = {"data.name": "tsv", "data.path": pairs_tsv}
        yield teacher_and_student(root, "configs/translate_teacher.yaml", "configs/translate_distill.yaml",
                                  {**TINY, **data, "task.adversarial": "reinforce"},
                                  {"model.generator.width": 8, "task.adversarial": "gumbel",
                                   "distill.terms": "[{name: kl, dim: logits}, {name: d_kl}, "
                                                    "{name: feature, layout: channels_last}, "
                                                    "{name: feature, loss: attention}]"})
    finally:
        if cache is None:
            os.environ.pop("KDGAN_CACHE")
        else:
            os.environ["KDGAN_CACHE"] = cache


def test_text_runs_log_their_terms_write_sample_tables_and_evaluate(text_runs, run_cli):
    student = text_runs / "student"
    logged = {k for line in (student / "log.jsonl").read_text().splitlines() for k in json.loads(line)}
    assert {"nll", "kl", "g_adv", "d_adv", "d_kl", "feature_mse", "feature_attention"} <= logged, logged
    assert "g_reinforce" in {k for line in (text_runs / "teacher" / "log.jsonl").read_text().splitlines()
                             for k in json.loads(line)}  # the teacher trained with task.adversarial: reinforce
    table = (student / "samples" / "step_0000004.tsv").read_text(encoding="utf-8").splitlines()
    assert table[0].split("\t") == ["source", "teacher", "student, step 4", "reference"] and len(table) == 4
    assert len(list((text_runs / "cache" / "seqkd").glob("*.json"))) == 1  # the teacher's translations, kept
    code, out, err = run_cli("evaluate", student, "--no-profile", "--metrics",
                             "bleu,chrf,nll,length_ratio,distinct_2,self_bleu")
    assert code == 0, err
    result = json.loads((student / "eval.json").read_text())["evaluations"][-1]
    assert result["task"] == "seq2seq" and result["sentences"] == 8 and result["decoding"] == "greedy"
    assert 0 <= result["bleu"] <= 100 and result["nll"] > 0 and "fidelity" in result
    copy = result["baselines"]["copy the source"]
    assert copy["bleu"] >= 0 and "nll" not in copy
    assert "8 held-out sentences, greedy" in out and "copy the source (baseline): bleu" in out


def test_a_second_student_of_the_same_teacher_reads_its_translations_from_the_cache(text_runs, pairs_tsv, run_cli,
                                                                                     monkeypatch):
    monkeypatch.setenv("KDGAN_CACHE", str(text_runs / "cache"))
    values = {**TINY, "data.name": "tsv", "data.path": pairs_tsv, "train.steps": 2, "model.generator.width": 8}
    code, out, err = run_cli("distill", "--config", "configs/translate_distill.yaml", "--teacher",
                             text_runs / "teacher", "--out", text_runs / "again", *set_args([f"{k}={v}" for k, v in values.items()]))
    assert code == 0, err
    assert "the teacher's translations of the training sources from" in out, out
    first = json.loads(next((text_runs / "cache" / "seqkd").glob("*.json")).read_text())
    assert len(first) == 72 and all(row[0] == BOS and row[-1] == EOS for row in first)


def test_sample_translates_a_sentence_and_a_file(text_runs, run_cli, tmp_path):
    student = text_runs / "student"
    code, out, err = run_cli("sample", student, "--text", "And God said, Let there be light.", "--out",
                             tmp_path / "one.txt")
    assert code == 0, err
    assert (tmp_path / "one.txt").read_text(encoding="utf-8") == out  # printed and written: the translation's line
    lines = tmp_path / "in.txt"
    lines.write_text("In the beginning God created the heaven and the earth.\n\nJesus wept.\n", encoding="utf-8")
    code, out, err = run_cli("sample", student, "--input", lines, "--out", tmp_path / "out.txt")
    assert code == 0, err
    assert len((tmp_path / "out.txt").read_text(encoding="utf-8").split("\n")) == 4  # 3 lines, the blank kept
    code, _, err = run_cli("sample", student, "--out", tmp_path / "x.txt")
    assert code == 2 and "--text / --input" in err and not (tmp_path / "x.txt").exists()


@pytest.mark.parametrize("content, message", [
    (b"a sentence without a tab\n", "line 1: no tab; each line is SOURCE<TAB>TARGET"),
    (b"", "holds no SOURCE<TAB>TARGET lines"),
    (b"good\tbueno\n\xff\xfe\tmal\n", "line 2: not UTF-8 text"),
    (b"one\tuno\n\tvacio\n", "line 2: an empty source"),
    (b"one\tuno\n" * 3 + ("word " * 70 + "\tpalabra\n").encode(), "bad.tsv line 4: its source is 351 tokens with "
                                                                 "BOS and EOS, more than model.generator.max_len 64"),
])
def test_a_bad_tsv_file_is_one_line_naming_file_and_line_and_writes_nothing(content, message, run_cli, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(content)
    args = set_args([f"{k}={v}" for k, v in {**TINY, "data.name": "tsv", "data.path": bad}.items()])
    code, _, err = run_cli("train", "--config", "configs/translate_teacher.yaml", "--out", tmp_path / "run", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_onnx_export_is_two_graphs_that_translate_as_the_run_does(text_runs, run_cli, tmp_path):
    student = text_runs / "student"
    code, out, err = run_cli("export", student, "--format", "onnx", "--out", tmp_path / "onnx")
    assert code == 0 and "verified against PyTorch" in out, err
    assert {p.name for p in (tmp_path / "onnx").iterdir()} == {"generator.onnx", "generator.encoder.onnx"}
    sentence = "And the evening and the morning were the first day."
    assert run_cli("sample", tmp_path / "onnx", "--text", sentence)[1] == run_cli("sample", student, "--text", sentence)[1]
    code, out, err = run_cli("evaluate", tmp_path / "onnx", "--no-profile", "--out", tmp_path / "eval")
    assert code == 0, err
    assert run_cli("evaluate", student, "--no-profile", "--out", tmp_path / "ran")[0] == 0
    ran = json.loads((tmp_path / "ran" / "eval.json").read_text())["evaluations"][-1]
    exported = json.loads((tmp_path / "eval" / "eval.json").read_text())["evaluations"][-1]
    assert exported["bleu"] == ran["bleu"]  # the same greedy translations
    code, _, err = run_cli("export", student, "--format", "torchscript", "--out", tmp_path / "g.pt")
    assert code == 2 and "exports to onnx" in err and not (tmp_path / "g.pt").exists()
    (tmp_path / "onnx" / "generator.encoder.onnx").unlink()
    code, _, err = run_cli("sample", tmp_path / "onnx", "--text", sentence)
    assert code == 2 and "without its encoder generator.encoder.onnx" in err


def test_compare_shows_the_runs_translations_of_the_same_sources_as_a_table(text_runs, run_cli, tmp_path):
    for run in ("teacher", "student"):
        assert run_cli("evaluate", text_runs / run, "--no-profile", "--out", tmp_path / run)[0] == 0
    code, _, err = run_cli("compare", tmp_path / "teacher", tmp_path / "student", "--samples", 3, "--out",
                           tmp_path / "report")
    assert code == 0, err
    md = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "| source | teacher | student | reference |" in md and "![samples]" not in md
    assert not (tmp_path / "report" / "samples.png").exists()
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    first_source = json.loads((tmp_path / "student" / "eval.json").read_text())["evaluations"][-1]["examples"][0]
    assert 'class="text"' in page and first_source["reference"].split()[0] in page

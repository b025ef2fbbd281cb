"""Unconditional text (task.name: lm, #19): a decoder-only Transformer (`text-decoder`) that
samples sentences from latent codes, trained on the embedded corpora's sentences (one side,
data.side) or a user's text file of one sentence per line (data.name: lines).

The loop and its terms are the seq2seq task's (kdgan.tasks.text.tokens): maximum likelihood
(`nll`) under teacher forcing, then the discriminator (`token-cnn`, unconditional) on
Gumbel-softmax relaxations or drawn tokens (task.adversarial); `kl` with dim: logits distils a
teacher's distribution at every position; task.targets: teacher trains the student on the
teacher's own samples (sequence-level KD for a language model) instead of the data.

Evaluation (`kdgan evaluate`), of --samples sentences sampled from seeded latent codes:
  nll           the held-out sentences' mean token negative log-likelihood (perplexity: exp)
  bleu          "test-BLEU" (Texygen): each sample's BLEU against held-out sentences as
                references (quality: do samples read like the data?)
  self_bleu     each sample against the other samples (high: they repeat each other)
  distinct_2    unique word bigrams / all bigrams of the samples
  words         mean words per sentence
with the same scores for held-out sentences themselves (the real-vs-real row: the scale).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import sacrebleu
import torch
from pydantic import Field

from kdgan.data.sampling import StepBatch
from kdgan.errors import UserError
from kdgan.families import Family
from kdgan.registry import GENERATORS, TASKS
from kdgan.schema import Strict
from kdgan.tasks.base import Task
from kdgan.tasks.text.data import LineData, load_sentences
from kdgan.tasks.text.decoder import DecoderSpec, TextDecoder
from kdgan.tasks.text.discriminator import TokenDiscriminatorSpec
from kdgan.tasks.text.prune import prune_transformer
from kdgan.tasks.text.tokenizer import BOS, EOS, PAD, decode, from_saved, train_tokenizer
from kdgan.tasks.text.tokens import (TokenTraining, decoder_input, one_line, pad_batch, token_nll, token_terms,
                                     token_view, write_table)

METRICS = ("nll", "bleu", "self_bleu", "distinct_2", "words")
BLEU_REFERENCES = 200  # test-BLEU's references per sample: sacreBLEU re-reads them for every sample
SELF_BLEU_SAMPLES = 200


class DecoderConfig(Strict):
    """model.generator for arch text-decoder."""

    arch: Literal["text-decoder"] = "text-decoder"
    width: int = Field(256, ge=8)
    heads: int = Field(4, ge=1)
    layers: int = Field(3, ge=1)
    expansion: int = Field(4, ge=1)
    max_len: int = Field(64, ge=4)
    dropout: float = Field(0.1, ge=0, lt=1)
    temperature: float = Field(1.0, gt=0)


GENERATORS.register("text-decoder", Family(build=TextDecoder, spec=DecoderSpec, config=DecoderConfig,
                                           prune=prune_transformer, modality="text"))


class LMSettings(TokenTraining):
    name: Literal["lm"] = "lm"
    # teacher: the student trains on the teacher's samples (one per training sentence) instead of the data
    targets: Literal["data", "teacher"] = "data"


def sentence_ids(tokenizer, sentences: list[tuple[str, str]], max_len: int, field: str) -> list[list[int]]:
    ids = [[BOS, *e.ids, EOS] for e in tokenizer.encode_batch([s for s, _ in sentences])]
    for row, (_, where) in zip(ids, sentences):
        if len(row) > max_len:
            raise UserError(f"{field}: {where}: {len(row)} tokens with BOS and EOS, more than "
                            f"model.generator.max_len {max_len}; shorten it, leave it out or raise max_len")
    return ids


@TASKS.register("lm")
class LanguageModel(Task):
    settings, data_settings = LMSettings, LineData
    default_generator, default_discriminator = "text-decoder", "token-cnn"
    default_metrics = metric_names = METRICS
    modality = "text"
    generators = ("text-decoder",)

    @classmethod
    def check(cls, cfg) -> None:
        if cfg.task.targets == "teacher" and (cfg.distill is None or not cfg.distill.teacher):
            raise ValueError("task.targets: teacher (the teacher's samples as data) needs distill.teacher")

    def __init__(self, cfg):
        self.settings = cfg.task
        self.train_sentences, self.test_sentences = load_sentences(cfg.data)
        teacher = None
        if cfg.distill is not None and cfg.distill.teacher:
            from kdgan.loading import load_gan

            teacher = load_gan(cfg.distill.teacher, cfg.distill.trust_pickle, field="distill.teacher")
        if teacher is not None and getattr(teacher.generator_spec, "tokenizer", ""):
            self.tokenizer, self.max_len = from_saved(teacher.generator_spec.tokenizer), teacher.generator_spec.max_len
        else:
            self.tokenizer = train_tokenizer((s for s, _ in self.train_sentences), cfg.task.vocab_size)
            self.max_len = cfg.model.generator.max_len
        field = "data.path" if cfg.data.name == "lines" else f"data.name {cfg.data.name}"
        self.sentences = sentence_ids(self.tokenizer, self.train_sentences, self.max_len, field)
        self.held_out = sentence_ids(self.tokenizer, self.test_sentences, self.max_len, field)
        self._teacher = teacher.generator if cfg.task.targets == "teacher" else None

    def _teacher_samples(self, teacher) -> list[list[int]]:
        """One teacher sample per training sentence, from fixed latent codes (seed 0)."""
        start = time.perf_counter()
        z = torch.rand(len(self.sentences), self.max_len, generator=torch.Generator().manual_seed(0))
        teacher.eval()
        with torch.no_grad():
            rows = torch.cat([teacher(chunk) for chunk in z.split(256)]).tolist()
        print(f"kdgan: sampled {len(rows)} sentences from the teacher in {time.perf_counter() - start:.0f} s "
              "(task.targets: teacher)")
        kept = [[t for t in row if t != PAD] for row in rows]
        # each up to its EOS; one that never ended, cut to fit and ended
        return [row[: row.index(EOS) + 1] if EOS in row else row[: self.max_len - 1] + [EOS] for row in kept]

    def __len__(self) -> int:
        return len(self.sentences)

    def diversity(self, samples: torch.Tensor) -> float:
        texts = [" ".join(map(str, row)) for row in samples.tolist()]
        return len(set(texts)) / len(texts)  # the share of distinct samples: near 0 is mode collapse

    def objective_terms(self, cfg):
        return token_terms(cfg.task), []

    def network_specs(self, cfg):
        shared = {"vocab": self.tokenizer.get_vocab_size()}
        g = DecoderSpec(**{**cfg.model.generator.model_dump(), "max_len": self.max_len}, **shared,
                        tokenizer=self.tokenizer.to_str())
        return g, TokenDiscriminatorSpec(**cfg.model.discriminator.model_dump(), **shared)

    def latent(self, n: int, noise: torch.Generator) -> torch.Tensor:
        return torch.rand(n, self.max_len, generator=noise)

    def batch(self, indices: torch.Tensor, noise: torch.Generator) -> StepBatch:
        if self._teacher is not None:  # sampled when training first needs them (evaluate does not)
            self.sentences, self._teacher = self._teacher_samples(self._teacher), None
        tgt = pad_batch([self.sentences[i] for i in indices.tolist()])
        return StepBatch(tgt[:, 1:], (self.latent(len(tgt), noise), decoder_input(tgt)), ())

    def fixed_batch(self, n: int, seed: int) -> StepBatch:
        """Latent codes of the seed, and held-out sentences (again from the first when n is more)
        padded to max_len as samples are."""
        real = pad_batch([self.held_out[i % len(self.held_out)] for i in range(n)], self.max_len)
        return StepBatch(real, (self.latent(n, torch.Generator().manual_seed(seed)),), ())

    def discriminator_view(self, output, noise: torch.Generator) -> torch.Tensor:
        return token_view(output, self.settings, noise)

    # -- what the run shows --------------------------------------------------------------
    def texts(self, ids: torch.Tensor, tokenizer=None) -> list[str]:
        return [decode(tokenizer or self.tokenizer, row[1:] if row and row[0] == BOS else row) for row in ids.tolist()]

    def save_samples(self, path: Path, batch: StepBatch, outputs: list[torch.Tensor], names: list[str]) -> Path:
        """PATH.tsv: a column per generator (a teacher's and its student's samples from the same
        latent codes side by side), a held-out sentence beside (not paired: the data's look)."""
        return write_table(path, *self.comparison_text(names, batch, outputs))

    def _columns(self, batch, outputs, names):
        return [*names, "a held-out sentence"], [*(self.texts(o) for o in outputs), self.texts(batch.real)]

    def comparison_panel(self, names, batch, outputs) -> None:
        return None

    def comparison_text(self, names, batch, outputs):
        headers, columns = self._columns(batch, outputs, names)
        return headers, [list(row) for row in zip(*columns)]

    # -- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, generator, cfg, metrics, options) -> dict:
        spec = getattr(generator, "spec", None)
        tokenizer = from_saved(spec.tokenizer) if getattr(spec, "tokenizer", "") else self.tokenizer
        n = min(options.get("samples") or 500, 1000)
        generator.eval()
        z = self.latent(n, torch.Generator().manual_seed(options.get("seed", 0)))
        samples = [decode(tokenizer, row[1:]) for row in torch.cat([generator(c) for c in z.split(256)]).tolist()]
        held = [s for s, _ in self.test_sentences]
        half = len(held) // 2
        result = {"samples": n, "held_out_sentences": len(held), **self._scores(samples, held, metrics),
                  "examples": samples[:5]}
        if "nll" in metrics:
            result["nll"] = self._nll(generator, tokenizer)
        result["real_vs_real"] = {"half_samples": half, **self._scores(held[:half], held[half:],
                                                                  [m for m in metrics if m != "nll"])}
        return result

    @staticmethod
    def _scores(samples: list[str], references: list[str], metrics) -> dict:
        from kdgan.tasks.text import metrics as text_metrics

        scores = {}
        if "bleu" in metrics:
            refs = references[:BLEU_REFERENCES]
            scores["bleu"] = sum(sacrebleu.sentence_bleu(s, refs).score for s in samples) / len(samples)
        if "self_bleu" in metrics:
            scores["self_bleu"] = text_metrics.self_bleu(samples[:SELF_BLEU_SAMPLES])
        if "distinct_2" in metrics:
            scores["distinct_2"] = text_metrics.distinct_n(samples, 2)
        if "words" in metrics:
            scores["words"] = sum(len(s.split()) for s in samples) / len(samples)
        return scores

    def _nll(self, generator, tokenizer) -> float:
        if not hasattr(generator, "teacher_forced"):
            raise UserError("--metrics: nll needs the generator's own distribution, which an exported file does "
                            "not give; evaluate the run instead")
        rows = self.held_out if tokenizer is self.tokenizer else \
            sentence_ids(tokenizer, self.test_sentences, self.max_len, "data")
        batches = (pad_batch(rows[k: k + 64]) for k in range(0, len(rows), 64))
        return token_nll(generator, (((torch.zeros(len(tgt), self.max_len),), tgt) for tgt in batches))

    @classmethod
    def protocol(cls, evaluation: dict) -> str:
        return (f"Quality: task lm, {evaluation.get('samples')} sentences sampled from seeded latent codes, against "
                f"{evaluation.get('held_out_sentences')} held-out sentences (test-BLEU: each sample against them as "
                "references); the real-vs-real row scores half of the held-out sentences against the other half.")

    @classmethod
    def metric_notes(cls) -> dict[str, str]:
        return {
            "nll": "nll: the held-out sentences' mean token negative log-likelihood; lower is better.",
            "bleu": "bleu: test-BLEU, each sample's sentence BLEU against held-out sentences; higher reads more "
                    "like the data.",
            "self_bleu": "self_bleu: each sample against the others; lower is more diverse.",
            "distinct_2": "distinct_2: unique word bigrams / all bigrams of the samples.",
            "words": "words: mean words per sentence.",
        }

    # -- sampling ------------------------------------------------------------------------
    @classmethod
    def export_signature(cls, spec, generator):
        from kdgan.deploy import Signature

        def example(n: int, seed: int, size=None) -> tuple[torch.Tensor]:
            return (torch.rand(n, spec.max_len, generator=torch.Generator().manual_seed(seed)),)

        return Signature(["z"], example)

    @classmethod
    def export(cls, fmt: str, generator, spec, path: Path, info: dict) -> float:
        """onnx: the cached decoder step (kdgan.tasks.text.export), verified against PyTorch
        along its own samples; the sampling loop runs beside it (OnnxSampler)."""
        if fmt != "onnx":
            raise UserError(f"--format {fmt}: a text-decoder exports to onnx (its cached step) or safetensors")
        from kdgan.deploy import export_metadata
        from kdgan.tasks.text.export import export_language_model, verify_language_model

        export_language_model(generator, path, export_metadata(spec, generator, info))
        return verify_language_model(generator, path)

    @classmethod
    def exported_generator(cls, path: Path, fmt: str, spec):
        from kdgan.tasks.text.export import OnnxSampler

        return OnnxSampler(path, spec)

    @classmethod
    def onnx_module(cls, generator):
        from kdgan.tasks.text.export import OnnxSampler, export_language_model, in_onnx_runtime

        return in_onnx_runtime(generator, export_language_model, OnnxSampler)

    @classmethod
    def sample_suffix(cls) -> str:
        return ".txt"

    @classmethod
    def sample_files(cls, generator, spec, num: int, seed: int, out: Path) -> list[Path]:
        """`kdgan sample -n N --seed S --out FILE.txt`: N sentences, one per line."""
        z = cls.export_signature(spec, generator).example(num, seed)[0]
        tokenizer = from_saved(spec.tokenizer)
        generator.eval()
        with torch.no_grad():
            rows = torch.cat([generator(c) for c in z.split(256)]).tolist()
        if out.suffix.lower() != ".txt":
            out = out / "samples.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        partial.write_text("".join(one_line(decode(tokenizer, row[1:])) + "\n" for row in rows), encoding="utf-8")
        partial.replace(out)
        return [out]

"""Sequence-to-sequence text (task.name: seq2seq, #19): translation, text style transfer, and
any user pairs (summarisation, dialogue) through the one loop.

A step's batch: `real` is the target's token ids after BOS (B, T), the generator's inputs the
source ids and the target before its EOS (teacher forcing), the discriminator's input the
source (a conditional judge). The generator returns its logits beside the argmax ids
(kdgan.losses.GeneratorOutput), so that
  * the task's term `nll` is the token cross-entropy (maximum likelihood, task.nll_weight,
    with label smoothing), the whole objective while train.adversarial_start lasts;
  * the discriminator sees a Gumbel-softmax relaxation of the logits (RelGAN; task.gumbel_tau,
    straight-through with task.gumbel_hard), padding shown as padding, so its gradient reaches
    the generator; real targets are one-hot. task.adversarial: reinforce shows it tokens drawn
    from the logits instead, and the term `g_reinforce` gives the generator SeqGAN's
    score-function gradient with the discriminator's per-position probability as reward.
    Either is taken position by position under teacher forcing (each position's distribution
    given the reference prefix), not of a free-running sample: one decoder pass per step
    instead of one per token (kdgan.tasks.text.tokens);
  * distillation's `kl` term with dim: logits is the seed's KLDivLoss over the vocabulary at
    each position, over the positions that hold a token (extras["mask"]).
Sequence-level knowledge distillation (Kim & Rush 2016) is task.targets: teacher: the training
targets are replaced by the teacher's own translations of the training sources (greedy, or beam
task.teacher_beam), decoded once before training.

The tokenizer is trained on the training pairs (both sides: one vocabulary, task.vocab_size),
or taken from the teacher when distilling, and travels in the generator's spec.

Evaluation (`kdgan evaluate`) decodes the held-out sources greedily (task.beam > 1: beam
search) and scores them against the references:
  bleu, chrf      sacreBLEU corpus scores (0-100, higher is better)
  nll             the references' mean token negative log-likelihood under the generator
                  (its perplexity is exp(nll)); --metrics
  length_ratio    output words / reference words; --metrics
  distinct_2      share of unique word bigrams among the outputs (diversity); --metrics
  self_bleu       mean BLEU of each of the first 200 outputs against the others (high: the
                  outputs repeat each other); --metrics
with the same scores for copying the source unchanged (the baseline style transfer must beat),
and, for a distilled run, its BLEU against the teacher's outputs (agreement).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from kdgan.data.sampling import StepBatch
from kdgan.errors import UserError
from kdgan.losses.terms import LossTerm
from kdgan.registry import TASKS
from kdgan.tasks.base import Task
from kdgan.tasks.text import families  # noqa: F401  (registers text-transformer, token-cnn)
from kdgan.tasks.text.data import TextData, load_text_pairs, text_lines
from kdgan.tasks.text.discriminator import TokenDiscriminatorSpec
from kdgan.tasks.text.tokens import (TokenTraining, decoder_input, one_line, pad_batch, token_nll, token_terms,
                                     token_view, write_table)
from kdgan.tasks.text.tokenizer import BOS, EOS, PAD, decode, encode, from_saved, train_tokenizer
from kdgan.tasks.text.transformer import TransformerSpec

METRICS = ("bleu", "chrf")
OPTIONAL = ("nll", "length_ratio", "distinct_2", "self_bleu")
SELF_BLEU_OUTPUTS = 200  # self-BLEU compares every pair: quadratic in the outputs it takes


class Seq2SeqSettings(TokenTraining):
    name: Literal["seq2seq"] = "seq2seq"
    # teacher: sequence-level KD, the training targets are the teacher's translations (distill.teacher)
    targets: Literal["reference", "teacher"] = "reference"
    teacher_beam: int = Field(1, ge=1)  # targets: teacher: greedy (1) or beam search of this width
    beam: int = Field(1, ge=1)  # how evaluation decodes: greedy (1) or beam search
    decode_batch: int = Field(64, ge=1)  # sentences decoded at once (evaluation, samples, targets)


def _teacher_spec(cfg) -> TransformerSpec | None:
    if cfg.distill is None or not cfg.distill.teacher:
        return None
    from kdgan.loading import load_gan

    spec = load_gan(cfg.distill.teacher, cfg.distill.trust_pickle, field="distill.teacher").generator_spec
    return spec if isinstance(spec, TransformerSpec) else None


@TASKS.register("seq2seq")
class Seq2Seq(Task):
    settings, data_settings = Seq2SeqSettings, TextData
    default_generator, default_discriminator = "text-transformer", "token-cnn"
    default_metrics, metric_names = METRICS, (*METRICS, *OPTIONAL)
    modality = "text"
    takes_text = True

    @classmethod
    def check(cls, cfg) -> None:
        if cfg.task.targets == "teacher" and (cfg.distill is None or not cfg.distill.teacher):
            raise ValueError("task.targets: teacher (sequence-level distillation) needs distill.teacher")

    def __init__(self, cfg):
        self.settings = cfg.task
        self.train_pairs, self.test_pairs = load_text_pairs(cfg.data)
        teacher = _teacher_spec(cfg)
        if teacher is not None and teacher.tokenizer:  # a student must read and write the teacher's tokens
            self.tokenizer, self.max_len = from_saved(teacher.tokenizer), teacher.max_len
        else:
            self.tokenizer = train_tokenizer((s for pair in self.train_pairs for s in pair[:2]), cfg.task.vocab_size)
            self.max_len = cfg.model.generator.max_len
        self.field = "data.path" if cfg.data.name == "tsv" else f"data.name {cfg.data.name}"
        self.sources, self.targets = self._encode(self.train_pairs, 0), self._encode(self.train_pairs, 1)
        self._encode(self.test_pairs, 0), self._encode(self.test_pairs, 1)  # evaluation must fit the model too
        self._cfg, self._teacher_made = cfg, cfg.task.targets != "teacher"

    def _encode(self, pairs, side: int) -> list[list[int]]:
        """The ids (BOS ... EOS) of each pair's source (side 0) or target (1), all within max_len."""
        ids = [[BOS, *e.ids, EOS] for e in self.tokenizer.encode_batch([p[side] for p in pairs])]
        for i, row in enumerate(ids):
            if len(row) > self.max_len:
                which = ("source", "target")[side]
                raise UserError(f"{self.field}: {pairs[i][2]}: its {which} is {len(row)} tokens with BOS and "
                                f"EOS, more than model.generator.max_len {self.max_len}; shorten it, leave it out "
                                "or raise max_len")
        return ids

    def _teacher_targets(self, cfg) -> list[list[int]]:
        """The teacher's translations of every training source (sequence-level KD), as ids.
        Decoding them takes minutes on a CPU, so they are kept in the cache ($KDGAN_CACHE, by
        default ~/.cache/kdgan/seqkd), under a digest of the teacher's weights, the sources and
        the beam: the next student of the same teacher and data reads them back."""
        import hashlib
        import json

        from kdgan.loading import load_gan
        from kdgan.metrics.evaluate import cache_dir, tensor_digest

        teacher = load_gan(cfg.distill.teacher, cfg.distill.trust_pickle, field="distill.teacher").generator.eval()
        key = hashlib.sha256(json.dumps({
            "teacher": tensor_digest(*[v for _, v in sorted(teacher.state_dict().items())]),
            "sources": self.sources, "beam": cfg.task.teacher_beam}).encode()).hexdigest()[:32]
        path = cache_dir().parent / "seqkd" / f"{key}.json"
        if path.is_file():
            print(f"kdgan: the teacher's translations of the training sources from {path} (task.targets: teacher)")
            return json.loads(path.read_text())
        start = time.perf_counter()
        outputs = self.translate_ids(teacher, self.sources, cfg.task.teacher_beam)
        print(f"kdgan: decoded the teacher's translations of {len(outputs)} training sources in "
              f"{time.perf_counter() - start:.0f} s (task.targets: teacher); kept in {path}")
        targets = [row[: row.index(EOS) + 1] if EOS in row else row + [EOS] for row in outputs]
        targets = [row[: self.max_len - 1] + [EOS] if len(row) > self.max_len else row for row in targets]
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")  # a killed run leaves no torn entry
        partial.write_text(json.dumps(targets))
        partial.replace(path)
        return targets

    @torch.no_grad()
    def translate_ids(self, generator, sources: list[list[int]], beam: int = 1) -> list[list[int]]:
        """The generator's outputs (BOS ... EOS, no padding) for source ids, decoded in batches of
        similar length (greedy: generator(src); beam: generator.beam)."""
        generator.eval()
        device = next(generator.parameters(), torch.empty(0)).device
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
        outputs: list[list[int]] = [[] for _ in sources]
        step = self.settings.decode_batch
        for k in range(0, len(order), step):
            chunk = order[k: k + step]
            src = pad_batch([sources[i] for i in chunk]).to(device)
            ids = generator.beam(src, beam, self.max_len) if beam > 1 else generator(src)
            for i, row in zip(chunk, ids.cpu().tolist()):
                outputs[i] = [t for t in row if t != PAD]
        return outputs

    def __len__(self) -> int:
        return len(self.sources)

    def diversity(self, samples: torch.Tensor) -> None:
        return None  # a conditional generator: its outputs differ because its inputs do

    def objective_terms(self, cfg) -> tuple[list[LossTerm], list[LossTerm]]:
        return token_terms(cfg.task), []

    def network_specs(self, cfg):
        shared = {"vocab": self.tokenizer.get_vocab_size()}
        g = TransformerSpec(**{**cfg.model.generator.model_dump(), "max_len": self.max_len}, **shared,
                            tokenizer=self.tokenizer.to_str())
        return g, TokenDiscriminatorSpec(**cfg.model.discriminator.model_dump(), **shared)

    def batch(self, indices: torch.Tensor, noise: torch.Generator) -> StepBatch:
        rows = indices.tolist()
        src = pad_batch([self.sources[i] for i in rows])
        if not self._teacher_made:  # decoded (or read from the cache) when training first needs them
            self.targets, self._teacher_made = self._teacher_targets(self._cfg), True
        tgt = pad_batch([self.targets[i] for i in rows])
        return StepBatch(tgt[:, 1:], (src, decoder_input(tgt)), (src,))

    def fixed_batch(self, n: int, seed: int) -> StepBatch:
        """The first n held-out pairs (again from the first when n is more): the sources, and
        the references (BOS ... EOS) padded to max_len as the generator's translations are."""
        picks = [self.test_pairs[i % len(self.test_pairs)] for i in range(n)]
        src = pad_batch([encode(self.tokenizer, s)[: self.max_len] for s, _, _ in picks])
        ref = pad_batch([encode(self.tokenizer, t)[: self.max_len] for _, t, _ in picks], self.max_len)
        return StepBatch(ref, (src,), (src,))

    def discriminator_view(self, output, noise: torch.Generator) -> torch.Tensor:
        return token_view(output, self.settings, noise)

    # -- what the run shows --------------------------------------------------------------
    def texts(self, ids: torch.Tensor, tokenizer=None) -> list[str]:
        return [decode(tokenizer or self.tokenizer, row[1:] if row and row[0] == BOS else row)
                for row in ids.tolist()]

    def _columns(self, batch: StepBatch, outputs, names) -> tuple[list[str], list[list[str]]]:
        headers = ["source", *names, "reference"]
        return headers, [self.texts(batch.g_inputs[0]), *(self.texts(o) for o in outputs), self.texts(batch.real)]

    def save_samples(self, path: Path, batch: StepBatch, outputs: list[torch.Tensor], names: list[str]) -> Path:
        """PATH.tsv: a header (source, each output's name, reference), then a row per sentence."""
        return write_table(path, *self.comparison_text(names, batch, outputs))

    def comparison_panel(self, names, batch, outputs) -> None:
        return None  # the sentences are the comparison: comparison_text

    def comparison_text(self, names, batch, outputs) -> tuple[list[str], list[list[str]]]:
        headers, columns = self._columns(batch, outputs, names)
        return headers, [list(row) for row in zip(*columns)]

    # -- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, generator, cfg, metrics, options) -> dict:
        from kdgan.tasks.text import metrics as text_metrics

        spec = getattr(generator, "spec", None)
        tokenizer = from_saved(spec.tokenizer) if getattr(spec, "tokenizer", "") else self.tokenizer
        pairs = self.test_pairs[: options.get("samples") or None]
        sources = [encode(tokenizer, s)[: self.max_len] for s, _, _ in pairs]
        references = [t for _, t, _ in pairs]
        beam = cfg.task.beam
        start = time.perf_counter()
        outputs = [decode(tokenizer, row[1:]) for row in self.translate_ids(generator, sources, beam)]
        result = {"sentences": len(pairs), "decoding": "greedy" if beam == 1 else f"beam {beam}",
                  "decode_seconds": round(time.perf_counter() - start, 2),
                  **self._scores(outputs, references, metrics, text_metrics)}
        if "nll" in metrics:
            if not hasattr(generator, "teacher_forced"):
                raise UserError("--metrics: nll scores the references under the generator's own distribution, which "
                                "an exported file (greedy decoding only) does not give; evaluate the run instead")
            result["nll"] = self._nll(generator, tokenizer, pairs)
        result["baselines"] = {"copy the source": {"sentences": len(pairs), **self._scores(
            [s for s, _, _ in pairs], references, [m for m in metrics if m != "nll"], text_metrics)}}
        result["examples"] = [{"source": s, "output": o, "reference": r}
                              for (s, r, _), o in list(zip(pairs, outputs))[:5]]
        if cfg.distill is not None and cfg.distill.teacher:
            from kdgan.loading import load_gan

            teacher = load_gan(cfg.distill.teacher, cfg.distill.trust_pickle, field="distill.teacher").generator
            theirs = [decode(tokenizer, row[1:]) for row in self.translate_ids(teacher, sources, beam)]
            result["fidelity"] = {"reference": "teacher", "sentences": len(pairs),
                                  "bleu": text_metrics.bleu(outputs, theirs)}
        return result

    def checkpoint_evaluator(self, cfg):
        """log.eval_checkpoints: BLEU and chrF of log.eval_samples held-out sentences (greedy)."""
        if not cfg.log.eval_checkpoints:
            return None

        def evaluate_sentences(generator, step: int, reference=None) -> dict:
            plain = cfg.model_copy(update={"distill": None, "task": cfg.task.model_copy(update={"beam": 1})})
            result = self.evaluate(generator, plain, list(METRICS), {"samples": cfg.log.eval_samples})
            return {"step": step, "task": "seq2seq", **result}

        return evaluate_sentences

    @staticmethod
    def _scores(outputs: list[str], references: list[str], metrics, text_metrics) -> dict:
        scores = {}
        for name in metrics:
            if name in ("bleu", "chrf", "length_ratio"):
                scores[name] = getattr(text_metrics, name)(outputs, references)
            elif name == "distinct_2":
                scores[name] = text_metrics.distinct_n(outputs, 2)
            elif name == "self_bleu":
                scores[name] = text_metrics.self_bleu(outputs[:SELF_BLEU_OUTPUTS])
        return scores

    def _nll(self, generator, tokenizer, pairs) -> float:
        """Mean negative log-likelihood per reference token (EOS included), teacher forced."""
        device = next(generator.parameters(), torch.empty(0)).device
        step = self.settings.decode_batch
        chunks = (pairs[k: k + step] for k in range(0, len(pairs), step))
        return token_nll(generator, (
            ((pad_batch([encode(tokenizer, s)[: self.max_len] for s, _, _ in c]).to(device),),
             pad_batch([encode(tokenizer, t)[: self.max_len] for _, t, _ in c]).to(device)) for c in chunks))

    @classmethod
    def protocol(cls, evaluation: dict) -> str:
        return (f"Quality: task seq2seq, {evaluation.get('sentences')} held-out sentences decoded "
                f"{evaluation.get('decoding', 'greedy')}, scored against their references with sacreBLEU; copying "
                "the source unchanged is scored beside.")

    @classmethod
    def metric_notes(cls) -> dict[str, str]:
        return {
            "bleu": "bleu: sacreBLEU corpus BLEU (13a tokenisation) against the held-out references; higher is better.",
            "chrf": "chrf: sacreBLEU chrF, character n-gram F-score; higher is better.",
            "nll": "nll: the references' mean token negative log-likelihood under the generator; lower is better.",
            "length_ratio": "length_ratio: output words / reference words over the corpus; 1 is the reference's.",
            "distinct_2": "distinct_2: unique word bigrams / all bigrams of the outputs (diversity).",
            "self_bleu": "self_bleu: BLEU of each output against the others (repetition); lower is more diverse.",
        }

    # -- sampling ------------------------------------------------------------------------
    @classmethod
    def translate_text(cls, generator, spec, sentences: list[str], where: list[str] | None = None) -> list[str]:
        """The generator's greedy translations of sentences, with the tokenizer in its spec;
        `where` names each sentence in errors (default: --text)."""
        if not getattr(spec, "tokenizer", ""):
            raise UserError("SOURCE: this generator has no tokenizer in its spec; it was not trained by kdgan's seq2seq")
        tokenizer = from_saved(spec.tokenizer)
        ids = []
        for i, s in enumerate(sentences):
            row = encode(tokenizer, s)
            if len(row) > spec.max_len:
                raise UserError(f"{where[i] if where else '--text'}: {len(row)} tokens with BOS and EOS, more than "
                                f"the model's max_len {spec.max_len}; split the sentence")
            ids.append(row)
        generator.eval()
        out = []
        with torch.no_grad():
            for k in range(0, len(ids), 64):
                for row in generator(pad_batch(ids[k: k + 64])).tolist():
                    out.append(decode(tokenizer, row[1:]))
        return out

    @classmethod
    def export(cls, fmt: str, generator, spec, path: Path, info: dict) -> float:
        """onnx: the encoder and one cached decoder step as two graphs (kdgan.tasks.text.export),
        PATH and PATH.encoder.onnx, verified step by step against PyTorch."""
        if fmt != "onnx":
            raise UserError(f"--format {fmt}: a seq2seq generator exports to onnx (its encoder and decoder step) "
                            "or safetensors")
        from kdgan.deploy import export_metadata
        from kdgan.tasks.text.export import export_graphs, verify

        export_graphs(generator, path, export_metadata(spec, generator, info))
        return verify(generator, path)

    @classmethod
    def exported_generator(cls, path: Path, fmt: str, spec):
        from kdgan.tasks.text.export import OnnxTranslator, encoder_path

        if not encoder_path(path).is_file():
            raise UserError(f"SOURCE: {path} is a decoder step without its encoder {encoder_path(path).name} beside "
                            "it; export again or copy both files")
        return OnnxTranslator(path, spec)

    @classmethod
    def onnx_module(cls, generator):
        from kdgan.tasks.text.export import OnnxTranslator, export_graphs, in_onnx_runtime

        return in_onnx_runtime(generator, export_graphs, OnnxTranslator)

    @classmethod
    def translate(cls, generator, spec, inputs: Path, out: Path) -> list[Path]:
        """`kdgan sample --input FILE`: each line of a UTF-8 text file translated, one line each, into `out`."""
        lines = [text for _, text in text_lines(inputs, "--input", "a text file with one sentence per line")]
        numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
        if not numbered:
            raise UserError(f"--input: {inputs} holds no sentence")
        translated = dict(zip((n for n, _ in numbered), cls.translate_text(
            generator, spec, [line for _, line in numbered], [f"--input: {inputs} line {n}" for n, _ in numbered])))
        if out.suffix.lower() != cls.sample_suffix():  # a folder: the input's name in it
            out = out / inputs.with_suffix(".txt").name
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")  # an interrupted run leaves `out` as it was
        partial.write_text("\n".join(one_line(translated.get(n, "")) for n in range(1, len(lines) + 1)) + "\n",
                           encoding="utf-8")
        partial.replace(out)
        return [out]

    @classmethod
    def sample_suffix(cls) -> str:
        return ".txt"

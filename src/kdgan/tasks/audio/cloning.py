"""Voice cloning (task.name: cloning): conversion into a voice given by a few reference clips,
including a voice never heard in training. The generator (`mel-convnext` with a speaker input)
takes the source's log-mel and the target voice's speaker embedding: the unit-norm mean of the
project's speaker encoder's embeddings of the reference clips (kdgan.tasks.audio.speaker).

Training pairs: any training voice to any other (data.voices; by default every corpus voice
but the held-out one), on the training sentences, aligned by DTW as parallel conversion is
(kdgan.tasks.audio.conversion; alignments are computed when a pair is first drawn and kept).
The embedding comes from `data.references` other training sentences of the target voice, so
that the generator learns the voice from clips that do not say what it is asked to say.

Seven training voices are few points to learn a map from embeddings to voices. `data.warp`
(a range of factors, e.g. [0.9, 1.15], drawn from a grid of 9) makes more: each drawn target voice is re-shaped by a
random vocal-tract-length factor (Jaitly & Hinton's VTLP: the spectrum's frequency axis scaled,
moving formants and harmonics together; here on the log-mel, by interpolation between bands),
its reference clips by the same factor, so the generator sees a continuum of voices.

Evaluation on the held-out sentences of data.source, converted into the held-out voice (never
seen by the generator or the speaker encoder) from the first data.references of its training
sentences: MCD to its recording, speaker similarity to the centroid of its other clips, pitch
error and correlation with --metrics; the unconverted source beside, and the same scores for a
seen voice (data.seen) as the reference point of what the generator does for a voice it knows.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from kdgan.data.sampling import StepBatch
from kdgan.errors import UserError
from kdgan.registry import TASKS
from kdgan.schema import Strict
from kdgan.tasks.audio.align import warp_mapping
from kdgan.tasks.audio.conversion import Conversion, ConversionSettings, _crop
from kdgan.tasks.audio.convert_nets import MelConverterSpec, MelDiscriminatorSpec
from kdgan.tasks.audio.corpus import SAMPLE_RATE, load_embedded_speech
from kdgan.tasks.audio.mel import LogMel, warp_matrix

REFERENCE_SECONDS = 1.0  # the shortest reference clip the speaker encoder is given (its training crop)


class CloningData(Strict):
    name: Literal["speech"] = "speech"
    source: str = "kal16"  # the voice evaluation converts from
    seen: str = "awb"  # a training voice evaluation also converts into
    voices: list[str] = []  # training voices, sources and targets alike; empty: all but the held-out one
    frames: int = Field(64, ge=8)  # training crop in mel frames
    references: int = Field(3, ge=1)  # reference clips a target voice's embedding is averaged over
    warp: tuple[float, float] = (1.0, 1.0)  # vocal-tract-length factors drawn for training targets

    @field_validator("warp")
    @classmethod
    def _warp_range(cls, v):
        if not 0.5 <= v[0] <= v[1] <= 2.0:
            raise ValueError("give [low, high] with 0.5 <= low <= high <= 2.0 (1.0: the voice as recorded)")
        return v


class CloningSettings(ConversionSettings):
    name: Literal["cloning"] = "cloning"


def read_references(given: str | None) -> list[torch.Tensor]:
    """`kdgan sample --reference`: a file, a folder or a glob pattern (quoted, so kdgan and not
    the shell expands it); each clip as audio, at least REFERENCE_SECONDS long and not silent."""
    import glob

    from kdgan.tasks.audio.corpus import AUDIO_SUFFIXES, read_audio

    if not given:
        raise UserError("--reference: a cloning generator needs clips of the target voice (a file, a folder, "
                        "or a quoted pattern such as 'voice_*.wav')")
    path = Path(given)
    if path.is_dir():
        paths = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    elif glob.has_magic(given):
        paths = sorted(Path(p) for p in glob.glob(given, recursive=True))
    else:
        paths = [path]
    if not paths or not paths[0].exists():
        raise UserError(f"--reference: no audio files at {given}")
    clips = []
    for path in paths:
        audio = read_audio(path, "--reference")
        if len(audio) < REFERENCE_SECONDS * SAMPLE_RATE:
            raise UserError(f"--reference: {path} is {len(audio) / SAMPLE_RATE:.2f} s long; a reference clip needs "
                            f"at least {REFERENCE_SECONDS:g} s of the target voice")
        if float(audio.abs().max()) < 1e-4:
            raise UserError(f"--reference: {path} is silent throughout")
        clips.append(audio)
    return clips


@TASKS.register("cloning")
class Cloning(Conversion):
    settings, data_settings = CloningSettings, CloningData
    takes_reference = True
    cycle_domains = False  # any-to-any over many voices: no two domains

    def __init__(self, cfg):
        corpus = load_embedded_speech()
        d = cfg.data
        training = [v for v in corpus.voices if v != corpus.held_out_voice]
        self.voices = d.voices or training
        for field, names in (("voices", self.voices), ("source", [d.source]), ("seen", [d.seen])):
            wrong = [v for v in names if v not in training]
            if wrong:
                raise UserError(f"data.{field}: {', '.join(wrong)} is not a training voice of the corpus; "
                                f"valid: {', '.join(training)} (the held-out {corpus.held_out_voice} is for evaluation)")
        if len(self.voices) < 2:
            raise UserError("data.voices: cloning trains on at least two voices")
        self.mel, self.frames, self.sample_frames = LogMel(), d.frames, cfg.task.sample_frames
        self.mel_weight, self.vocoder_name, self.warp, self.references = \
            cfg.task.mel_weight, cfg.task.vocoder, d.warp, d.references
        self.source, self.target, self.seen = d.source, corpus.held_out_voice, d.seen
        held = set(corpus.held_out_sentences)
        with torch.no_grad():
            self.mels = {(c.voice, c.sentence): self.mel(c.audio[None])[0] for c in corpus.clips}
        self.audio = {(c.voice, c.sentence): c.audio for c in corpus.clips}
        self.train_sentences = sorted({s for v, s in self.mels if s not in held})
        self.test_sentences = sorted(held)
        self.examples = [(s, a, b) for s in self.train_sentences for a in self.voices for b in self.voices
                         if a != b and (a, s) in self.mels and (b, s) in self.mels]
        self._alignments: dict[tuple, torch.Tensor] = {}
        self._embeddings: dict[tuple, torch.Tensor] = {}
        # vocal-tract factors on a grid of 9 (1.0 alone without data.warp), so embeddings can be kept
        self.warp_factors = sorted({float(f) for f in np.linspace(*d.warp, 9)}) if d.warp != (1.0, 1.0) else [1.0]
        self._vocoder = self._speaker = None
        self.test_pairs = self._pairs(self.source, self.target)  # what the parent's panels and translate read

    def __len__(self) -> int:
        return len(self.examples)

    def network_specs(self, cfg):
        from kdgan.tasks.audio.speaker import load_speaker_encoder

        speaker = load_speaker_encoder().spec.embedding if self._speaker is None else self._speaker.spec.embedding
        return MelConverterSpec(**cfg.model.generator.model_dump(), speaker=speaker), \
            MelDiscriminatorSpec(**cfg.model.discriminator.model_dump())

    # -- data --------------------------------------------------------------------------------
    def aligned(self, source: str, target: str, sentence: int) -> torch.Tensor:
        """The source voice's log-mel of a sentence re-timed to the target's (DTW, kept)."""
        key = (source, target, sentence)
        if key not in self._alignments:
            src, tgt = self.mels[(source, sentence)], self.mels[(target, sentence)]
            self._alignments[key] = src[:, warp_mapping(src, tgt)]
        return self._alignments[key]

    def reference_sentences(self, voice: str, exclude: int, rng: random.Random | None = None) -> list[int]:
        """`references` training sentences of `voice` other than `exclude`: drawn at random
        with `rng`, else the first ones (evaluation's fixed choice)."""
        others = [s for s in self.train_sentences if s != exclude and (voice, s) in self.mels]
        return rng.sample(others, self.references) if rng is not None else others[: self.references]

    def batch(self, indices: torch.Tensor, noise: torch.Generator) -> StepBatch:
        real, source, speaker = [], [], []
        for i in indices.tolist():
            sentence, a, b = self.examples[i]
            rng = random.Random(int(torch.randint(2**31, (1,), generator=noise)))
            factor = rng.choice(self.warp_factors)
            target, aligned = self.mels[(b, sentence)], self.aligned(a, b, sentence)
            start = rng.randint(0, max(0, target.shape[1] - self.frames))
            real.append(warp_matrix(factor) @ _crop(target, self.frames, start) if factor != 1 else
                        _crop(target, self.frames, start))
            source.append(_crop(aligned, self.frames, start))
            mean = torch.stack([self.clip_embedding(b, s, factor)
                                for s in self.reference_sentences(b, sentence, rng)]).mean(0)
            speaker.append(mean / mean.norm())
        return StepBatch(torch.stack(real), (torch.stack(source), torch.stack(speaker)), ())

    def clip_embedding(self, voice: str, sentence: int, factor: float) -> torch.Tensor:
        """The speaker embedding of one training clip, warped by `factor` (kept: a step draws
        dozens of reference clips, and the factors come from a fixed grid)."""
        key = (voice, sentence, factor)
        if key not in self._embeddings:
            mel = self.mels[(voice, sentence)]
            self._embeddings[key] = self.speaker_embedding([warp_matrix(factor) @ mel if factor != 1 else mel])
        return self._embeddings[key]

    def _pairs(self, source: str, target: str) -> list[dict]:
        """The held-out sentences both voices speak, as the conversion task's test pairs."""
        return [{"source": self.mels[(source, s)], "target": self.mels[(target, s)],
                 "source_audio": self.audio[(source, s)], "target_audio": self.audio[(target, s)], "sentence": s}
                for s in self.test_sentences if (source, s) in self.mels and (target, s) in self.mels]

    def voice_embedding(self, voice: str) -> torch.Tensor:
        """What evaluation conditions on for `voice`: its first `references` training sentences."""
        return self.speaker_embedding([self.mels[(voice, s)] for s in self.reference_sentences(voice, -1)])

    def voice_centroid(self, voice: str) -> torch.Tensor:
        """What similarity is measured against: the voice's other training clips (not its references)."""
        refs = set(self.reference_sentences(voice, -1))
        return self.speaker_embedding([self.mels[(voice, s)] for s in self.train_sentences
                                       if s not in refs and (voice, s) in self.mels])

    def fixed_batch(self, n: int, seed: int) -> StepBatch:
        """The first `sample_frames` of held-out sentences of data.source, to be said in the
        held-out voice (its reference embedding); the real row is its own recording."""
        batch = super().fixed_batch(n, seed)
        speaker = self.voice_embedding(self.target)[None].expand(n, -1).contiguous()
        return StepBatch(batch.real, (*batch.g_inputs, speaker), ())

    # -- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, generator, cfg, metrics, options) -> dict:
        generator.eval()
        device = next(generator.parameters(), torch.empty(0)).device
        limit = options.get("samples") or None

        def run(net, pairs, voice):
            speaker = self.voice_embedding(voice)[None].to(device)
            return [net(p["source"][None].to(device), speaker).float().cpu()[0] for p in pairs]

        kept: dict[str, torch.Tensor] = {}  # each voice's centroid, computed once per evaluation

        def centroid(voice: str) -> torch.Tensor:
            if voice not in kept:
                kept[voice] = self.voice_centroid(voice)
            return kept[voice]

        def centroids(voice: str) -> dict[str, torch.Tensor]:
            # how near the target voice, and how near the source voice it started as
            return {"similarity": centroid(voice), "source_similarity": centroid(self.source)} \
                if "similarity" in metrics else {}

        def scores(voice: str) -> tuple[dict, list[dict], list[torch.Tensor]]:
            pairs = self._pairs(self.source, voice)[:limit]
            converted = run(generator, pairs, voice)
            return {"clips": len(pairs), **self._scores([self.vocode(m[None]).reshape(-1) for m in converted],
                                                        pairs, metrics, centroids(voice))}, pairs, converted

        unseen, pairs, converted = scores(self.target)
        result = {**unseen, "source": self.source, "target": self.target, "references": self.references,
                  "vocoder": self.vocoder_name,
                  "baselines": {"unconverted source": {"clips": len(pairs), **self._scores(
                      [p["source_audio"] for p in pairs], pairs, metrics, centroids(self.target))}},
                  "seen_voice": {"voice": self.seen, **scores(self.seen)[0]}}
        if cfg.distill is not None and cfg.distill.teacher:
            from kdgan.loading import load_gan

            teacher = load_gan(cfg.distill.teacher, cfg.distill.trust_pickle, field="distill.teacher").generator.eval()
            theirs = run(teacher, pairs, self.target)
            result["fidelity"] = {"reference": "teacher", "clips": len(pairs),
                                  "mel_l1": float(np.mean([(a - b).abs().mean() for a, b in zip(converted, theirs)]))}
        return result

    @classmethod
    def protocol(cls, evaluation: dict) -> str:
        return (f"Quality: task cloning, {evaluation.get('clips')} held-out sentences converted from "
                f"{evaluation.get('source')} into the unseen voice {evaluation.get('target')} from "
                f"{evaluation.get('references')} reference clips, vocoded by {evaluation.get('vocoder')}, scored "
                f"against that voice's own recording; the unconverted source and a seen voice are scored beside.")

    @classmethod
    def metric_notes(cls) -> dict[str, str]:
        return {**super().metric_notes(),
                "similarity": "similarity: cosine between speaker embeddings of the output and of the target voice's "
                              "clips other than its references (the project's speaker encoder); higher is better.",
                "source_similarity": "source_similarity: the same to the source voice's clips; a conversion lowers it."}

    # -- sampling and export -------------------------------------------------------------
    @classmethod
    def export_signature(cls, spec, generator):
        """mel (B, n_mels, frames), the frames axis dynamic, and speaker (B, embedding)."""
        from kdgan.deploy import Signature

        def example(n: int, seed: int, size=None) -> tuple[torch.Tensor, torch.Tensor]:
            gen = torch.Generator().manual_seed(seed)
            mel = torch.randn(n, spec.n_mels, size[0] if size else 32, generator=gen) - 4
            speaker = torch.nn.functional.normalize(torch.randn(n, spec.speaker, generator=gen), dim=1)
            return mel, speaker

        return Signature(["mel", "speaker"], example, sizes=[(45,), (17,)], length_axis=2)

    @classmethod
    def translate(cls, generator, spec, inputs: Path, out: Path, references: str | None = None) -> list[Path]:
        """`kdgan sample --input a.wav --reference b_*.wav`: each input said in the voice of the
        reference clips (every file is read before anything is written), vocoded by the shipped
        vocoder_teacher; `out` a .wav for one input, else a folder."""
        from kdgan.loading import load_gan
        from kdgan.tasks.audio.corpus import input_files, output_for, read_audio
        from kdgan.tasks.audio.render import write_outputs
        from kdgan.tasks.audio.speaker import load_speaker_encoder

        files = input_files(inputs, out)
        mel, audio = LogMel(), [read_audio(p, "--input") for p in files]
        refs = read_references(references)
        encoder = load_speaker_encoder()
        with torch.no_grad():
            mean = torch.cat([encoder.embed(mel(r[None])) for r in refs]).mean(0)
            speaker = (mean / mean.norm())[None]
        vocoder = load_gan("vocoder_teacher").generator.eval()
        written = []
        for path, recording in zip(files, audio):
            with torch.no_grad():
                speech = vocoder(generator(mel(recording[None]), speaker))
            written += write_outputs(speech, output_for(path, out))
        return written

"""Parallel voice conversion (task.name: conversion): a generator turns one voice's log-mel
into another voice's, frame for frame; the task's vocoder (task.vocoder, by default the
shipped vocoder_teacher, or a distilled vocoder student) turns it into speech.

Training pairs: every voice of the embedded corpus speaks the same sentences, so each training
sentence of data.source is aligned to the same sentence of data.target by dynamic time warping
on their mel-cepstra (kdgan.tasks.audio.align), and the generator learns target frames from
the source frames paired with them: L1 between log-mels (task.mel_weight) and a least-squares
GAN with feature matching on mel patches (`mel-patch`).

A user's parallel recordings: `data.name: pairs` with data.source_path and data.target_path,
two folders in which files of the same name hold the same sentence said by the two speakers
(every 10th pair held out for evaluation); a file without its partner is named.

A step's batch: `real` is a crop of data.frames target frames (B, n_mels, frames), the
generator's input the source frames aligned to them. At inference the source keeps its own
timing: conversion changes the voice, not the speaking rate.

Unparallel (data.parallel: false, CycleGAN-VC): the source voice keeps every other training
sentence and the target voice the rest, so no sentence is heard in both and nothing is
aligned. Teachers train with train.cycle (two converters, two discriminators, cycle and
identity terms: kdgan.train.cycle) on crops of each voice; a distilled student learns the
teacher's conversion of source crops while its discriminator compares it with target crops of
other sentences. The held-out sentences are evaluated as in the parallel setting. A user's
unparallel recordings: `data.name: folders`, two folders of any sentences; the few recorded
in both under the same names are held out for evaluation.

Evaluation on the held-out sentences, against the target voice's own recording of each:
  mcd         mel-cepstral distortion in dB after DTW (the converted speech is not in time
              with the target's recording), from the vocoded output; lower is better
  similarity  cosine between the speaker encoder's embedding of the output and the mean
              embedding of the target voice's training clips (kdgan.tasks.audio.speaker); 1
              is the target itself, higher is better
  f0_rmse     pitch error in Hz over DTW-aligned frames voiced in both (pYIN); --metrics
  f0_corr     correlation of the two pitch tracks there; --metrics
and the same for the unconverted source recording, the baseline a conversion has to move.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from kdgan.data.sampling import StepBatch
from kdgan.errors import UserError
from kdgan.families import Family
from kdgan.losses.terms import LossTerm, StepContext
from kdgan.registry import DISCRIMINATORS, GENERATORS, TASKS
from kdgan.schema import Strict
from kdgan.tasks.audio.align import mel_cepstrum, warp_mapping
from kdgan.tasks.audio.convert_nets import (MelConverter, MelConverterSpec, MelDiscriminator, MelDiscriminatorSpec,
                                            prune_converter)
from kdgan.tasks.audio.corpus import SAMPLE_RATE, load_embedded_speech
from kdgan.tasks.audio.mel import LogMel
from kdgan.tasks.audio.pairs import load_pairs
from kdgan.tasks.audio.render import clip_media, mel_panel, write_outputs
from kdgan.tasks.base import Task

METRICS = ("mcd", "similarity")
OPTIONAL = ("f0_rmse", "f0_corr", "dnsmos")


class ConversionData(Strict):
    name: Literal["speech", "pairs", "folders"] = "speech"
    source: str = "kal16"  # speech: the voice converted from
    target: str = "awb"  # speech: the voice converted to
    source_path: Path | None = None  # pairs, folders: the source speaker's recordings ...
    # ... and the target speaker's: pairs, of the same sentences under the same names; folders,
    # of any sentences (unparallel), those under a name also in source_path held out for evaluation
    target_path: Path | None = None
    frames: int = Field(64, ge=8)  # training crop in mel frames (64: about a second)
    # false: CycleGAN-VC's unparallel setting (train.cycle): the source voice's training clips are
    # every other training sentence, the target's the rest, so no sentence is heard in both voices
    parallel: bool = True


class ConversionSettings(Strict):
    name: Literal["conversion"] = "conversion"
    mel_weight: float = Field(45.0, ge=0)  # L1 to the aligned target frames
    vocoder: str = "vocoder_teacher"  # shipped name, pretrained folder or run that turns mels into speech
    sample_frames: int = Field(125, ge=8)  # length of the clips rendered at each sample grid


class MelConverterConfig(Strict):
    """model.generator for arch mel-convnext (width 256 x 6 blocks: 2.5M parameters)."""

    arch: Literal["mel-convnext"] = "mel-convnext"
    width: int = Field(256, ge=1)
    layers: int = Field(6, ge=1)
    expansion: int = Field(3, ge=1)


class MelDiscriminatorConfig(Strict):
    arch: Literal["mel-patch"] = "mel-patch"
    width: int = Field(64, ge=1)


GENERATORS.register("mel-convnext", Family(build=MelConverter, spec=MelConverterSpec, config=MelConverterConfig,
                                          prune=prune_converter, modality="audio"))
DISCRIMINATORS.register("mel-patch", Family(build=MelDiscriminator, spec=MelDiscriminatorSpec,
                                            config=MelDiscriminatorConfig, modality="audio"))


class AlignedMelL1(LossTerm):
    name = "mel_l1"

    def compute(self, ctx: StepContext) -> torch.Tensor:
        return (ctx.fake - ctx.batch.real).abs().mean()


def _crop(mel: torch.Tensor, frames: int, start: int) -> torch.Tensor:
    piece = mel[:, start: start + frames]
    # short clips are padded with the log-mel of silence (its floor), not with zeros
    return torch.nn.functional.pad(piece, (0, frames - piece.shape[1]), value=float(np.log(1e-5)))


@TASKS.register("conversion")
class Conversion(Task):
    settings, data_settings = ConversionSettings, ConversionData
    default_generator, default_discriminator = "mel-convnext", "mel-patch"
    default_metrics, metric_names = METRICS, (*METRICS, *OPTIONAL)
    modality = "audio"
    generators = ("mel-convnext",)

    cycle_domains = True  # with data.parallel false: the source voice's mels and the target's

    @classmethod
    def check(cls, cfg) -> None:
        d = cfg.data
        if d.name in ("pairs", "folders") and (d.source_path is None or d.target_path is None):
            raise ValueError(f"data.source_path, data.target_path: data.name {d.name} needs both folders")
        parallel = getattr(d, "parallel", True)
        if d.name == "folders" and parallel:
            raise ValueError("data.parallel: data.name folders holds unparallel recordings; set data.parallel: false "
                             "(or data.name: pairs for the same sentences under the same names)")
        if not parallel and cfg.train.cycle is None and cfg.distill is None:
            raise ValueError("data.parallel: false (unparallel recordings) trains CycleGAN-VC-style; set train.cycle "
                             "(as configs/convert_cycle_teacher.yaml does)")
        if not parallel and cfg.task.mel_weight > 0:
            raise ValueError("task.mel_weight: unparallel recordings have no aligned target frames; set 0")
        if cfg.train.cycle is not None and parallel:
            raise ValueError("train.cycle: conversion cycles between unparallel recordings; set data.parallel: false "
                             "(parallel sentences train better with their aligned frames and task.mel_weight)")

    def __init__(self, cfg):
        self.mel, self.frames, self.sample_frames = LogMel(), cfg.data.frames, cfg.task.sample_frames
        self.mel_weight, self.vocoder_name = cfg.task.mel_weight, cfg.task.vocoder
        only = None  # folders: (source clips, target clips) to train on
        if cfg.data.name == "folders":
            recordings, only = self._user_folders(cfg.data)
        else:
            recordings = self._user_pairs(cfg.data) if cfg.data.name == "pairs" else self._corpus_pairs(cfg.data)
        self.train_pairs, self.test_pairs = [], []
        with torch.no_grad():
            for sentence, source, target, held in recordings:
                src, tgt = self.mel(source[None])[0], self.mel(target[None])[0]
                pair = {"source": src, "target": tgt, "aligned": src[:, warp_mapping(src, tgt)],
                        "source_audio": source, "target_audio": target, "sentence": sentence}
                (self.test_pairs if held else self.train_pairs).append(pair)
        # unparallel: the two voices on disjoint halves of the training sentences, or the user's folders
        self.source_only = [p["source"] for p in self.train_pairs[0::2]]
        self.target_only = [p["target"] for p in self.train_pairs[1::2]]
        if only is not None:
            with torch.no_grad():
                self.source_only, self.target_only = ([self.mel(a[None])[0] for a in clips] for clips in only)
        self.target_clips = [p["target"] for p in self.train_pairs] or self.target_only
        self.parallel = getattr(cfg.data, "parallel", True)
        self._vocoder = self._speaker = None

    def _corpus_pairs(self, d: ConversionData) -> list[tuple]:
        """(sentence, source audio, target audio, held out) for the corpus sentences both voices speak."""
        corpus = load_embedded_speech()
        for field in ("source", "target"):
            voice = getattr(d, field)
            if voice not in corpus.voices:
                raise UserError(f"data.{field}: no voice {voice!r} in the corpus; voices: {', '.join(corpus.voices)}")
        if d.source == d.target:
            raise UserError("data.target: the same voice as data.source; conversion needs two voices")
        self.source, self.target = d.source, d.target
        by = {(c.voice, c.sentence): c for c in corpus.clips}
        held = set(corpus.held_out_sentences)
        return [(s, by[(d.source, s)].audio, by[(d.target, s)].audio, s in held)
                for s in sorted({c.sentence for c in corpus.clips})
                if (d.source, s) in by and (d.target, s) in by]

    def _user_folders(self, d: ConversionData) -> tuple[list[tuple], tuple[list, list]]:
        """Two folders of unparallel recordings: the recordings whose names (without suffix) are
        in both are the held-out parallel pairs evaluation needs; the others train."""
        from kdgan.tasks.audio.corpus import load_audio_folder

        stem = lambda name: str(Path(name).with_suffix(""))  # noqa: E731
        n_fft = self.mel.settings.n_fft
        source = {stem(c.name): c.audio for c in load_audio_folder(d.source_path, "data.source_path", n_fft)}
        target = {stem(c.name): c.audio for c in load_audio_folder(d.target_path, "data.target_path", n_fft)}
        shared = sorted(set(source) & set(target))
        if not shared:
            raise UserError(f"data.target_path: no recording in {d.target_path} has the name of one in "
                            f"{d.source_path}; evaluation needs a few sentences said by both speakers under the "
                            "same names (they are held out of training)")
        for field, folder, clips in (("data.source_path", d.source_path, source),
                                     ("data.target_path", d.target_path, target)):
            if len(clips) == len(shared):
                raise UserError(f"{field}: every recording in {folder} is a held-out sentence (its name is in both "
                                "folders); add recordings to train on")
        self.source, self.target = d.source_path.name, d.target_path.name
        held = [(name, source[name], target[name], True) for name in shared]
        return held, ([a for n, a in sorted(source.items()) if n not in shared],
                      [a for n, a in sorted(target.items()) if n not in shared])

    def _user_pairs(self, d: ConversionData) -> list[tuple]:
        """The same for two folders of the same sentences (same file names), every 10th held out."""
        pairs = load_pairs(d.source_path, d.target_path, self.mel.settings.n_fft,
                           ("data.source_path", "data.target_path"), same_length=False)
        self.source, self.target = d.source_path.name, d.target_path.name
        return [(name, a, b, i % 10 == 0) for i, (name, a, b) in enumerate(pairs)]

    def __len__(self) -> int:
        return len(self.train_pairs) if self.parallel else len(self.source_only)

    def cost_unit(self) -> tuple[str, float]:
        return "second of audio", self.sample_frames * self.mel.settings.hop_length / SAMPLE_RATE

    def diversity(self, samples: torch.Tensor) -> None:
        return None

    def objective_terms(self, cfg) -> tuple[list[LossTerm], list[LossTerm]]:
        return ([AlignedMelL1(self.mel_weight)] if self.mel_weight > 0 else []), []

    def network_specs(self, cfg):
        return MelConverterSpec(**cfg.model.generator.model_dump()), \
            MelDiscriminatorSpec(**cfg.model.discriminator.model_dump())

    def batch(self, indices: torch.Tensor, noise: torch.Generator) -> StepBatch:
        if not self.parallel:  # distilling an unparallel teacher: target-voice crops of other sentences as real
            source, target = self.unpaired_batch(indices, noise)
            return StepBatch(target, (source,), ())
        real, source = [], []
        for i in indices.tolist():
            pair = self.train_pairs[i]
            room = max(0, pair["target"].shape[1] - self.frames)
            start = int(torch.randint(room + 1, (1,), generator=noise))
            real.append(_crop(pair["target"], self.frames, start))
            source.append(_crop(pair["aligned"], self.frames, start))
        return StepBatch(torch.stack(real), (torch.stack(source),), ())

    def unpaired_batch(self, indices: torch.Tensor, noise: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Crops of source-voice clips at `indices` and of random target-voice clips of other sentences."""
        def crop(mel: torch.Tensor) -> torch.Tensor:
            start = int(torch.randint(max(0, mel.shape[1] - self.frames) + 1, (1,), generator=noise))
            return _crop(mel, self.frames, start)

        picks = torch.randint(len(self.target_only), (len(indices),), generator=noise).tolist()
        return (torch.stack([crop(self.source_only[i]) for i in indices.tolist()]),
                torch.stack([crop(self.target_only[i]) for i in picks]))

    def fixed_batch(self, n: int, seed: int) -> StepBatch:
        """The first `sample_frames` of held-out sentences: the source in its own timing, the
        target's recording in its own (they are not aligned: the panel shows what was said)."""
        picks = [self.test_pairs[i % len(self.test_pairs)] for i in range(n)]
        source = torch.stack([_crop(p["source"], self.sample_frames, 0) for p in picks])
        target = torch.stack([_crop(p["target"], self.sample_frames, 0) for p in picks])
        return StepBatch(target, (source,), ())

    # -- vocoder and speaker encoder (loaded when first needed) -------------------------
    def vocode(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, F) -> (B, 1, F * hop) through task.vocoder."""
        if self._vocoder is None:
            from kdgan.loading import load_gan

            self._vocoder = load_gan(self.vocoder_name, field="task.vocoder").generator.eval()
        with torch.no_grad():
            return self._vocoder(mel.float())

    def speaker_embedding(self, mels: list[torch.Tensor]) -> torch.Tensor:
        """The unit-norm mean of the speaker encoder's embeddings of log-mels (n_mels, F): a
        voice's centroid from its clips."""
        from kdgan.tasks.audio.speaker import load_speaker_encoder

        if self._speaker is None:
            self._speaker = load_speaker_encoder()
        with torch.no_grad():
            mean = torch.cat([self._speaker.embed(m[None]) for m in mels]).mean(0)
        return mean / mean.norm()

    def similarity(self, mel: torch.Tensor, centroid: torch.Tensor) -> float:
        """Cosine between the speaker embedding of a log-mel (n_mels, F) and a voice's centroid."""
        return float(self.speaker_embedding([mel]) @ centroid)

    # -- what the run shows --------------------------------------------------------------
    def _columns(self, batch: StepBatch, outputs, names):
        return [batch.g_inputs[0], *outputs, batch.real], [f"source ({self.source})", *names,
                                                             f"target ({self.target})"]

    def save_samples(self, path: Path, batch: StepBatch, outputs: list[torch.Tensor], names: list[str]) -> Path:
        """PATH/LABEL_i.wav (vocoded) for source, each output and target, PATH.png their mels."""
        from kdgan.tasks.audio.render import write_wav

        columns, labels = self._columns(batch, outputs, names)
        path.mkdir(parents=True, exist_ok=True)
        for mels, label in zip(columns, labels):
            audio = self.vocode(mels[:2])
            for i in range(len(audio)):
                write_wav(path / f"{label.split(' (')[0].replace(' ', '_').replace(',', '')}_{i}.wav", audio[i])
        png = path.with_suffix(".png")
        png.write_bytes(mel_panel(columns, labels))
        return png

    def comparison_panel(self, names, batch, outputs) -> bytes:
        return mel_panel(*self._columns(batch, outputs, names))

    def comparison_media(self, names, batch, outputs) -> list[tuple[str, str, bytes]]:
        columns, labels = self._columns(batch, outputs, names)
        return clip_media([self.vocode(m[:2]) for m in columns], labels)

    @classmethod
    def protocol(cls, evaluation: dict) -> str:
        return (f"Quality: task conversion, {evaluation.get('clips')} held-out sentences converted from "
                f"{evaluation.get('source')} to {evaluation.get('target')}, vocoded by {evaluation.get('vocoder')}, "
                f"scored against the target voice's own recording; the unconverted source is scored beside.")

    @classmethod
    def metric_notes(cls) -> dict[str, str]:
        return {
            "mcd": "mcd: mel-cepstral distortion in dB to the target voice's recording of the sentence, after DTW; "
                   "lower is better.",
            "similarity": "similarity: cosine between speaker embeddings of the output and of the target voice "
                          "(the project's speaker encoder); higher is better.",
            "f0_rmse": "f0_rmse: pitch error in Hz over DTW-aligned frames voiced in both.",
            "f0_corr": "f0_corr: correlation of the output's and the target's pitch over those frames.",
        }

    # -- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, generator, cfg, metrics, options) -> dict:
        generator.eval()
        pairs = self.test_pairs[: options.get("samples") or None]
        device = next(generator.parameters(), torch.empty(0)).device
        converted = [generator(p["source"][None].to(device)).float().cpu()[0] for p in pairs]
        centroids = {"similarity": self.speaker_embedding(self.target_clips)} if "similarity" in metrics else {}
        result = {"clips": len(pairs), "source": self.source, "target": self.target, "vocoder": self.vocoder_name,
                  **self._scores([self.vocode(m[None]).reshape(-1) for m in converted], pairs, metrics, centroids)}
        result["baselines"] = {"unconverted source": {"clips": len(pairs), **self._scores(
            [p["source_audio"] for p in pairs], pairs, metrics, centroids)}}
        if cfg.distill is not None and cfg.distill.teacher:
            from kdgan.loading import load_gan

            teacher = load_gan(cfg.distill.teacher, cfg.distill.trust_pickle, field="distill.teacher").generator.eval()
            theirs = [teacher(p["source"][None].to(device)).float().cpu()[0] for p in pairs]
            result["fidelity"] = {"reference": "teacher", "clips": len(pairs),
                                  "mel_l1": float(np.mean([(a - b).abs().mean() for a, b in zip(converted, theirs)]))}
        return result

    def _scores(self, outputs: list[torch.Tensor], pairs: list[dict], metrics, centroids: dict) -> dict:
        """Each output (audio) against its pair's target recording; for each (name, voice
        centroid) in `centroids`, the cosine of the output's speaker embedding to it."""
        from kdgan.tasks.audio.metrics import dnsmos, mean_scores

        per_clip = []
        for audio, pair in zip(outputs, pairs):
            out_mel, tgt_mel = self.mel(audio[None])[0], pair["target"]
            mapping = warp_mapping(out_mel, tgt_mel)  # target frame -> output frame
            scores = {}
            if "mcd" in metrics:
                diff = mel_cepstrum(out_mel)[:, mapping.numpy()] - mel_cepstrum(tgt_mel)
                scores["mcd"] = float(np.mean(10 / np.log(10) * np.sqrt(2 * (diff**2).sum(0))))
            for name, centroid in centroids.items():
                scores[name] = self.similarity(out_mel, centroid)
            if "f0_rmse" in metrics or "f0_corr" in metrics:
                scores.update({k: v for k, v in self._pitch(audio, pair["target_audio"], mapping).items()
                               if k in metrics})
            if "dnsmos" in metrics:
                scores["dnsmos"] = dnsmos(audio)
            per_clip.append(scores)
        return mean_scores(per_clip)

    def _pitch(self, audio: torch.Tensor, target: torch.Tensor, mapping: torch.Tensor) -> dict[str, float]:
        import librosa

        s = self.mel.settings

        def track(x: torch.Tensor):
            f0, voiced, _ = librosa.pyin(x.numpy().astype(np.float32), fmin=60, fmax=500, sr=s.sample_rate,
                                         frame_length=s.n_fft, hop_length=s.hop_length)
            return f0, voiced

        (f_out, v_out), (f_tgt, v_tgt) = track(audio), track(target)
        n = min(len(f_tgt), len(mapping))
        idx = mapping[:n].clamp(max=len(f_out) - 1).numpy()
        a, va, b, vb = f_out[idx], v_out[idx], f_tgt[:n], v_tgt[:n]
        both = va & vb
        if both.sum() < 2:
            return {"f0_rmse": float("nan"), "f0_corr": float("nan")}
        a, b = a[both], b[both]
        flat = a.std() == 0 or b.std() == 0  # a monotone track has no correlation (NaN, left out of the mean)
        return {"f0_rmse": float(np.sqrt(np.mean((a - b) ** 2))),
                "f0_corr": float("nan") if flat else float(np.corrcoef(a, b)[0, 1])}

    # -- sampling and export -------------------------------------------------------------
    @classmethod
    def export_signature(cls, spec, generator):
        """mel (B, n_mels, frames), the frames axis dynamic."""
        from kdgan.deploy import Signature

        def example(n: int, seed: int, size=None) -> tuple[torch.Tensor]:
            frames = size[0] if size else 32
            return (torch.randn(n, spec.n_mels, frames, generator=torch.Generator().manual_seed(seed)) - 4,)

        return Signature(["mel"], example, sizes=[(45,), (17,)], length_axis=2)

    @classmethod
    def translate(cls, generator, spec, inputs: Path, out: Path) -> list[Path]:
        """`kdgan sample --input`: each recording converted and vocoded by the shipped
        vocoder_teacher; `out` a .wav for one input, else a folder."""
        from kdgan.loading import load_gan
        from kdgan.tasks.audio.corpus import input_files, output_for, read_audio

        files = input_files(inputs, out)
        mel, audio = LogMel(), [read_audio(p, "--input") for p in files]
        vocoder = load_gan("vocoder_teacher").generator.eval()
        written = []
        for path, recording in zip(files, audio):
            with torch.no_grad():
                speech = vocoder(generator(mel(recording[None])))
            target = output_for(path, out)
            written += write_outputs(speech, target)
        return written

    @classmethod
    def sample_suffix(cls) -> str:
        return ".wav"

    @classmethod
    def write_samples(cls, outputs: torch.Tensor, out: Path, scale: int = 1) -> list[Path]:
        """Converted mels, vocoded by the shipped vocoder_teacher."""
        from kdgan.loading import load_gan

        with torch.no_grad():
            return write_outputs(load_gan("vocoder_teacher").generator.eval()(outputs), out)

"""The speech enhancement task (task.name: enhancement): a generator turns noisy speech into
clean speech, waveform in, waveform out (16 kHz). Its objective is the enhanced waveform's L1
and multi-resolution STFT distance to the clean speech (Demucs's denoiser losses; weights
task.l1_weight, task.stft_weight), and the vocoder's discriminators keep it sounding like
speech (HiFi-GAN-2's recipe: least-squares GAN + feature matching).

Data (`data.name`):
  speech  the embedded corpus, mixed on the fly with noise (kdgan.tasks.audio.noise) of the
          kinds in data.noises at an SNR drawn uniformly from data.snr; the test set is the
          held-out sentences (and the held-out voice), each mixed once with noise and an SNR
          drawn from data.test_seed, so every run is scored on the same mixtures
  folder  a folder of clean recordings (data.path), mixed the same way (every 10th file held
          out); babble is made of its other files; kind `folder` mixes in the recordings of
          data.noise
  pairs   paired recordings: data.noisy and data.clean hold files of the same relative names
          (every 10th pair held out)

A step's batch: `real` is the clean segment (B, 1, segment), the generator's input the noisy
one; the discriminators see clean and enhanced speech.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from kdgan.data.sampling import StepBatch
from kdgan.errors import UserError
from kdgan.families import Family
from kdgan.losses.terms import LossTerm, StepContext
from kdgan.registry import GENERATORS, TASKS
from kdgan.schema import Strict
from kdgan.tasks.audio.mask_net import SpectralMaskGenerator, SpectralMaskSpec, prune_mask
from kdgan.tasks.audio.corpus import SAMPLE_RATE, load_audio_folder, load_embedded_speech
from kdgan.tasks.audio.mel import LogMel
from kdgan.tasks.audio.noise import make_noise, mix
from kdgan.tasks.audio.pairs import load_pairs
from kdgan.tasks.audio.render import clip_media, save_clips, spectrogram_panel, write_outputs
from kdgan.tasks.audio.terms import RESOLUTIONS, stft_distance
from kdgan.tasks.audio.waveunet import WaveUNetGenerator, WaveUNetSpec, prune_waveunet
from kdgan.tasks.base import Task

NoiseKind = Literal["white", "pink", "brown", "hum", "babble", "folder"]
METRICS = ("pesq", "stoi", "si_sdr")
OPTIONAL = ("dnsmos", "mel_l1", "mrstft", "mcd")


class EnhancementData(Strict):
    name: Literal["speech", "folder", "pairs"] = "speech"
    path: Path | None = None  # folder: the clean recordings
    noise: Path | None = None  # a folder of noise recordings, for the noise kind `folder`
    noisy: Path | None = None  # pairs: the noisy recordings ...
    clean: Path | None = None  # ... and the clean ones, under the same relative names
    segment: int = Field(16384, ge=1024)  # training segment in samples
    snr: tuple[float, float] = (-5.0, 15.0)  # dB, drawn uniformly per training example
    noises: list[NoiseKind] = ["white", "pink", "brown", "hum", "babble"]
    test_seed: int = 1234  # the held-out mixtures' noise and SNR


class EnhancementSettings(Strict):
    name: Literal["enhancement"] = "enhancement"
    l1_weight: float = Field(10.0, ge=0)  # waveform L1 to the clean speech
    stft_weight: float = Field(2.0, ge=0)  # multi-resolution STFT distance to it
    sample_seconds: float = Field(2.0, gt=0)  # length of the clips rendered at each sample grid


class WaveUNetConfig(Strict):
    """model.generator for arch wave-unet (width 32, depth 4: 1.8M parameters, 215M MACs per
    second of audio)."""

    arch: Literal["wave-unet"] = "wave-unet"
    width: int = Field(32, ge=1)
    depth: int = Field(4, ge=1)
    context: int = Field(4, ge=0)


class SpectralMaskConfig(Strict):
    """model.generator for arch spectral-mask (width 256 x 6 blocks: 2.9M parameters, 182M MACs
    per second of audio)."""

    arch: Literal["spectral-mask"] = "spectral-mask"
    width: int = Field(256, ge=1)
    layers: int = Field(6, ge=1)
    expansion: int = Field(3, ge=1)


GENERATORS.register("wave-unet", Family(build=WaveUNetGenerator, spec=WaveUNetSpec, config=WaveUNetConfig,
                                       prune=prune_waveunet, modality="audio"))
GENERATORS.register("spectral-mask", Family(build=SpectralMaskGenerator, spec=SpectralMaskSpec,
                                           config=SpectralMaskConfig, prune=prune_mask, modality="audio"))


class CleanL1(LossTerm):
    name = "clean_l1"

    def compute(self, ctx: StepContext) -> torch.Tensor:
        return (ctx.fake - ctx.batch.real).abs().mean()


class CleanSTFT(LossTerm):
    """Multi-resolution STFT distance to the clean speech (the `stft` term's formula)."""

    name = "clean_stft"

    def __init__(self, weight: float):
        super().__init__(weight)
        for i, (_, _, win) in enumerate(RESOLUTIONS):
            self.register_buffer(f"window_{i}", torch.hann_window(win), persistent=False)

    def compute(self, ctx: StepContext) -> torch.Tensor:
        windows = [getattr(self, f"window_{i}") for i in range(len(RESOLUTIONS))]
        return stft_distance(ctx.fake, ctx.batch.real, RESOLUTIONS, windows)


class Mixture:
    """One held-out example: noisy and clean (T,), how it was made."""

    def __init__(self, name: str, noisy: torch.Tensor, clean: torch.Tensor, noise: str, snr: float | None):
        self.name, self.noisy, self.clean, self.noise, self.snr = name, noisy, clean, noise, snr


@TASKS.register("enhancement")
class Enhancement(Task):
    settings, data_settings = EnhancementSettings, EnhancementData
    default_generator, default_discriminator = "wave-unet", "mpd-mrd"
    default_metrics, metric_names = METRICS, (*METRICS, *OPTIONAL)
    modality = "audio"
    generators = ("wave-unet", "spectral-mask")

    @classmethod
    def check(cls, cfg) -> None:
        d = cfg.data
        if d.snr[0] > d.snr[1]:
            raise ValueError(f"data.snr: [low, high] in dB with low <= high, got {list(d.snr)}")
        if not d.noises:
            raise ValueError("data.noises: name at least one noise kind: white, pink, brown, hum, babble, folder")
        if ("folder" in d.noises) != (d.noise is not None):
            raise ValueError("data.noise: a folder of noise recordings goes with the noise kind `folder` in "
                             "data.noises, and that kind needs the folder")
        if d.name == "pairs" and (d.noisy is None or d.clean is None):
            raise ValueError("data.noisy, data.clean: data.name pairs needs both folders")
        if d.name == "folder" and d.path is None:
            raise ValueError("data.path: data.name folder needs a folder of clean recordings")

    def __init__(self, cfg):
        d = cfg.data
        self.mel = LogMel()
        self.segment, self.snr, self.noises = d.segment, d.snr, list(d.noises)
        self.sample_length = int(cfg.task.sample_seconds * SAMPLE_RATE)
        self.l1_weight, self.stft_weight = cfg.task.l1_weight, cfg.task.stft_weight
        self.recordings = [c.audio for c in load_audio_folder(d.noise, "data.noise", 1)] if d.noise else []
        self.pairs = d.name == "pairs"
        self.held_out_voice: list[Mixture] = []
        if self.pairs:
            pairs = load_pairs(d.noisy, d.clean, d.segment)
            self.train_noisy = [p[1] for i, p in enumerate(pairs) if i % 10]
            self.train_clean = [p[2] for i, p in enumerate(pairs) if i % 10]
            self.test = [Mixture(name, noisy, clean, "recorded", None) for name, noisy, clean in pairs[::10]]
            return
        if d.name == "speech":
            corpus = load_embedded_speech()
            train, held_out = corpus.split("train"), corpus.split("held_out")
            voice = corpus.split("held_out_voice")
        else:
            clips = load_audio_folder(d.path, "data.path", d.segment)
            if len(clips) < 2:
                raise UserError(f"data.path: {d.path} needs at least two files (one is held out)")
            train, held_out, voice = [c for i, c in enumerate(clips) if i % 10], clips[::10], []
        self.train_clean = [c.audio for c in train]
        self.talkers = self.train_clean  # babble for training; the test set's is made of held-out speech
        test_talkers = [c.audio for c in held_out] or self.train_clean
        self.test = self.mixtures(held_out, test_talkers, d.test_seed)
        self.held_out_voice = self.mixtures(voice, test_talkers, d.test_seed + 1)

    def mixtures(self, clips, talkers: list[torch.Tensor], seed: int) -> list[Mixture]:
        """Each clip mixed once: the noise kinds in turn, the SNR and the noise drawn from `seed`."""
        out = []
        for i, clip in enumerate(clips):
            gen = torch.Generator().manual_seed(seed * 100_003 + i)
            kind = self.noises[i % len(self.noises)]
            snr = float(self.snr[0] + (self.snr[1] - self.snr[0]) * torch.rand(1, generator=gen))
            noise = make_noise(kind, len(clip.audio), SAMPLE_RATE, gen, talkers, self.recordings)
            noisy, clean = mix(clip.audio, noise, snr)
            out.append(Mixture(clip.name, noisy, clean, kind, snr))
        return out

    def cost_unit(self) -> tuple[str, float]:
        return "second of audio", self.sample_length / SAMPLE_RATE

    def __len__(self) -> int:
        return len(self.train_clean)

    def diversity(self, samples: torch.Tensor) -> None:
        """None: each output follows its own recording (see the vocoder's)."""
        return None

    def objective_terms(self, cfg) -> tuple[list[LossTerm], list[LossTerm]]:
        terms = ([CleanL1(self.l1_weight)] if self.l1_weight > 0 else []) + \
                ([CleanSTFT(self.stft_weight)] if self.stft_weight > 0 else [])
        return terms, []

    def network_specs(self, cfg):
        from kdgan.tasks.audio.nets import VocoderDiscriminatorSpec

        spec = SpectralMaskSpec if cfg.model.generator.arch == "spectral-mask" else WaveUNetSpec
        return spec(**cfg.model.generator.model_dump()), \
            VocoderDiscriminatorSpec(**cfg.model.discriminator.model_dump())

    # -- batches -------------------------------------------------------------------------
    def batch(self, indices: torch.Tensor, noise: torch.Generator) -> StepBatch:
        noisy, clean = [], []
        for i in indices.tolist():
            audio = self.train_clean[i]
            start = int(torch.randint(max(0, len(audio) - self.segment) + 1, (1,), generator=noise))
            piece = _cut(audio, self.segment, start)
            if self.pairs:
                n, c = _cut(self.train_noisy[i], self.segment, start), piece
            else:
                kind = self.noises[int(torch.randint(len(self.noises), (1,), generator=noise))]
                snr = float(self.snr[0] + (self.snr[1] - self.snr[0]) * torch.rand(1, generator=noise))
                n, c = mix(piece, make_noise(kind, self.segment, SAMPLE_RATE, noise, self.talkers, self.recordings), snr)
            noisy.append(n)
            clean.append(c)
        return StepBatch(torch.stack(clean)[:, None], (torch.stack(noisy)[:, None],), ())

    def fixed_batch(self, n: int, seed: int) -> StepBatch:
        """The first `sample_seconds` of the first held-out mixtures (the same every time)."""
        picks = [self.test[i % len(self.test)] for i in range(n)]
        clean = torch.stack([_cut(m.clean, self.sample_length, 0) for m in picks])[:, None]
        noisy = torch.stack([_cut(m.noisy, self.sample_length, 0) for m in picks])[:, None]
        return StepBatch(clean, (noisy,), ())

    # -- what the run shows --------------------------------------------------------------
    def save_samples(self, path: Path, batch: StepBatch, outputs: list[torch.Tensor], names: list[str]) -> Path:
        """PATH/LABEL_i.wav for the noisy input, each output and the clean speech, and
        PATH.png: their log-mel spectrograms side by side."""
        return save_clips(path, *self._columns(batch, outputs, names), self.mel)

    def comparison_panel(self, names: list[str], batch: StepBatch, outputs: list[torch.Tensor]) -> bytes:
        return spectrogram_panel(*self._columns(batch, outputs, names), self.mel)

    def comparison_media(self, names, batch, outputs) -> list[tuple[str, str, bytes]]:
        return clip_media(*self._columns(batch, outputs, names))

    @staticmethod
    def _columns(batch: StepBatch, outputs, names) -> tuple[list[torch.Tensor], list[str]]:
        return [batch.g_inputs[0], *outputs, batch.real], ["noisy", *names, "clean"]

    @classmethod
    def protocol(cls, evaluation: dict) -> str:
        return (f"Quality: task enhancement, {evaluation.get('clips')} held-out mixtures (sentences no voice trained "
                f"on, each mixed once with a seeded noise and SNR), scored against the clean recording; the noisy "
                f"input and two signal-processing enhancers are scored beside in eval.json.")

    @classmethod
    def metric_notes(cls) -> dict[str, str]:
        return {
            "pesq": "pesq: wide-band PESQ (ITU-T P.862.2) against the clean recording, -0.5 to 4.5, higher is better.",
            "stoi": "stoi: short-time objective intelligibility against the clean recording, 0 to 1, higher is better.",
            "si_sdr": "si_sdr: scale-invariant signal-to-distortion ratio in dB against the clean recording, higher "
                      "is better.",
            "dnsmos": "dnsmos: DNSMOS P.835 overall MOS, a learned 1-5 estimate without the clean recording.",
        }

    # -- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, generator, cfg, metrics, options) -> dict:
        """The metrics of the enhanced held-out mixtures against their clean speech (`--samples`
        caps the mixtures), per noise kind too; the same for the noisy input itself and the
        signal-processing baselines; the held-out voice beside; a distilled run's distance to
        its teacher."""
        from kdgan.tasks.audio.baselines import BASELINES

        generator.eval()
        cap = options.get("samples") or None
        test = self.test[:cap]

        def summary(outputs) -> dict:  # means over the mixtures, and per noise kind
            per_clip = [self.clip_scores(out, m.clean, metrics) for out, m in zip(outputs, test)]
            by_noise = {kind: {"clips": sum(m.noise == kind for m in test),
                               **_mean([s for s, m in zip(per_clip, test) if m.noise == kind])}
                        for kind in dict.fromkeys(m.noise for m in test)}
            return {"clips": len(test), **_mean(per_clip), "by_noise": by_noise}

        result = summary(_run(generator, m.noisy) for m in test)
        result["baselines"] = {"noisy input": summary(m.noisy for m in test)}
        for name, enhance in BASELINES.items():
            result["baselines"][name] = summary(enhance(m.noisy) for m in test)
        if self.held_out_voice:
            voice = self.held_out_voice[:cap]
            result["held_out_voice"] = {"clips": len(voice), **_mean(
                [self.clip_scores(_run(generator, m.noisy), m.clean, metrics) for m in voice]),
                "noisy input": _mean([self.clip_scores(m.noisy, m.clean, metrics) for m in voice])}
        if cfg.distill is not None and cfg.distill.teacher:
            from kdgan.loading import load_gan

            teacher = load_gan(cfg.distill.teacher, cfg.distill.trust_pickle, field="distill.teacher").generator.eval()
            faithful = [m for m in metrics if m != "dnsmos"]
            result["fidelity"] = {"reference": "teacher", "clips": len(test), **_mean(
                [self.clip_scores(_run(generator, m.noisy), _run(teacher, m.noisy), faithful) for m in test])}
        return result

    def clip_scores(self, output: torch.Tensor, reference: torch.Tensor, metrics) -> dict[str, float]:
        from kdgan.tasks.audio.metrics import clip_scores

        return clip_scores(output, reference, self.mel, metrics)

    @classmethod
    def export_signature(cls, spec, generator):
        """noisy (B, 1, T), T dynamic; verified at other lengths too."""
        from kdgan.deploy import Signature

        def example(n: int, seed: int, size=None) -> tuple[torch.Tensor]:
            length = size[0] if size else 4096
            return (0.1 * torch.randn(n, 1, length, generator=torch.Generator().manual_seed(seed)),)

        return Signature(["noisy"], example, sizes=[(5000,), (1111,)], length_axis=2)

    @classmethod
    def translate(cls, generator, spec, inputs: Path, out: Path) -> list[Path]:
        """`kdgan sample --input`: each noisy recording enhanced; `out` a .wav for one input,
        else a folder (files keep their names, as .wav)."""
        from kdgan.tasks.audio.corpus import input_files, output_for, read_audio

        files = input_files(inputs, out)
        audio = [read_audio(p, "--input") for p in files]  # every file read before anything is written
        written = []
        for path, noisy in zip(files, audio):
            with torch.no_grad():
                clean = _run(generator, noisy)
            target = output_for(path, out)
            written += write_outputs(clean[None], target)
        return written

    @classmethod
    def sample_suffix(cls) -> str:
        return ".wav"

    @classmethod
    def write_samples(cls, outputs: torch.Tensor, out: Path, scale: int = 1) -> list[Path]:
        return write_outputs(outputs, out)


def _cut(audio: torch.Tensor, length: int, start: int) -> torch.Tensor:
    piece = audio[start: start + length]
    return torch.nn.functional.pad(piece, (0, length - len(piece)))


def _run(generator, noisy: torch.Tensor) -> torch.Tensor:
    """generator(noisy (1, 1, T)) as a waveform (T,) on the CPU."""
    device = next(generator.parameters(), torch.empty(0)).device
    return generator(noisy.reshape(1, 1, -1).to(device)).float().cpu().reshape(-1)


def _mean(per_clip: list[dict[str, float]]) -> dict[str, float]:
    from kdgan.tasks.audio.metrics import mean_scores

    return mean_scores(per_clip)

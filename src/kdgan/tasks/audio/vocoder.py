"""The vocoder task (task.name: vocoder): a generator turns log-mel spectrograms into 16 kHz
waveforms, judged by multi-period and multi-resolution spectrogram discriminators, and
trained with HiFi-GAN's recipe: least-squares adversarial loss (train.loss.name: lsgan),
feature matching (train.loss.feature_matching: 2) and the mel L1 below (task.mel_weight: 45).

A step's batch: `real` is (B, 1, segment) audio cut at random from training clips (zero-padded
when a clip is shorter); the generator's input is its log-mel (B, 80, segment / hop).
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
from kdgan.registry import DISCRIMINATORS, GENERATORS, TASKS
from kdgan.schema import Strict
from kdgan.tasks.audio.corpus import SAMPLE_RATE, Clip, load_audio_folder, load_embedded_speech
from kdgan.tasks.audio.mel import LogMel, MelSettings
from kdgan.tasks.audio.metrics import AUDIO_METRICS, OPTIONAL_METRICS
from kdgan.tasks.audio.prune import prune_hifigan, prune_vocos
from kdgan.tasks.audio.render import clip_media, save_clips, spectrogram_panel, write_outputs
from kdgan.tasks.audio.vocos import VocosGenerator, VocosSpec
from kdgan.tasks.audio.nets import HiFiGANGenerator, HiFiGANSpec, VocoderDiscriminator, VocoderDiscriminatorSpec
from kdgan.tasks.base import Task


class VocoderData(Strict):
    name: Literal["speech", "folder"] = "speech"  # the embedded corpus, or a folder of audio files
    path: Path | None = None  # folder: every .wav/.flac/.ogg under it; every 10th file is held out
    segment: int = Field(8192, ge=256)  # training segment in samples (a multiple of the mel hop)


class VocoderSettings(Strict):
    name: Literal["vocoder"] = "vocoder"
    mel_weight: float = Field(45.0, ge=0)  # HiFi-GAN's lambda_mel
    sample_seconds: float = Field(2.0, gt=0)  # length of the clips rendered at each sample grid


class HiFiGANConfig(Strict):
    """model.generator for arch hifigan (defaults: HiFi-GAN V2's shape)."""

    arch: Literal["hifigan"] = "hifigan"
    width: int = Field(128, ge=2)
    upsample_rates: list[int] = [8, 8, 2, 2]
    upsample_kernels: list[int] = [16, 16, 4, 4]
    resblock: Literal[1, 2] = 1
    resblock_kernels: list[int] = [3, 7, 11]
    resblock_dilations: list[list[int]] = [[1, 3, 5], [1, 3, 5], [1, 3, 5]]


class VocosConfig(Strict):
    """model.generator for arch vocos: a ConvNeXt backbone at frame rate and an inverse-STFT
    head (width 256 x 8 layers is 3.6M parameters; Vocos itself is width 512)."""

    arch: Literal["vocos"] = "vocos"
    width: int = Field(256, ge=1)
    layers: int = Field(8, ge=1)
    expansion: int = Field(3, ge=1)
    # pinv: the log-magnitude is a correction to the mel's pseudo-inverse (FreeV); none: predicted outright
    magnitude_prior: Literal["none", "pinv"] = "pinv"
    # the inverse-STFT head's FFT size (null: the mel's, 1024). Its transposed convolution
    # costs (n_fft + 2) x n_fft MACs a frame whatever the width: 512 makes a small student's
    # head 4x cheaper, at half the frequency resolution (31 Hz bins)
    n_fft: int | None = None


class VocoderDiscriminatorConfig(Strict):
    """model.discriminator for arch mpd-mrd (width 32 is HiFi-GAN's MPD, 41M parameters;
    width 8 is 2.6M, width 4 0.65M)."""

    arch: Literal["mpd-mrd"] = "mpd-mrd"
    width: int = Field(8, ge=1)
    periods: list[int] = [2, 3, 5, 7, 11]
    resolutions: list[tuple[int, int, int]] = [(1024, 120, 600), (2048, 240, 1200), (512, 50, 240)]


GENERATORS.register("hifigan", Family(build=HiFiGANGenerator, spec=HiFiGANSpec, config=HiFiGANConfig,
                                     prune=prune_hifigan, modality="audio"))
GENERATORS.register("vocos", Family(build=VocosGenerator, spec=VocosSpec, config=VocosConfig, prune=prune_vocos,
                                   modality="audio"))
DISCRIMINATORS.register("mpd-mrd", Family(build=VocoderDiscriminator, spec=VocoderDiscriminatorSpec,
                                          config=VocoderDiscriminatorConfig, modality="audio"))


class MelL1(LossTerm):
    """HiFi-GAN's mel loss: mean |log-mel(G(mel)) - mel|, where mel (the generator's input)
    is the real segment's log-mel."""

    name = "mel_l1"

    def __init__(self, mel: LogMel, weight: float):
        super().__init__(weight)
        self.mel = mel

    def compute(self, ctx: StepContext) -> torch.Tensor:
        return (self.mel(ctx.fake) - ctx.batch.g_inputs[0]).abs().mean()


@TASKS.register("vocoder")
class Vocoder(Task):
    settings, data_settings = VocoderSettings, VocoderData
    default_generator, default_discriminator = "hifigan", "mpd-mrd"
    default_metrics, metric_names = AUDIO_METRICS, (*AUDIO_METRICS, *OPTIONAL_METRICS)
    modality = "audio"
    generators = ("hifigan", "vocos")

    @classmethod
    def check(cls, cfg) -> None:
        hop = MelSettings().hop_length
        if cfg.data.segment % hop:
            raise ValueError(f"data.segment: {cfg.data.segment} samples is not a multiple of the mel hop ({hop})")
        n_fft = getattr(cfg.model.generator, "n_fft", None)  # vocos's head
        if n_fft is not None and (n_fft % 2 or n_fft < hop):
            raise ValueError(f"model.generator.n_fft: {n_fft} must be even and at least the mel hop ({hop})")
        rates = getattr(cfg.model.generator, "upsample_rates", None)  # hifigan's
        if rates is not None and torch.tensor(rates).prod().item() != hop:
            raise ValueError(f"model.generator.upsample_rates: their product must be the mel hop {hop}, got {rates}")

    def __init__(self, cfg):
        self.mel = LogMel(MelSettings())
        self.segment = cfg.data.segment
        self.sample_length = int(cfg.task.sample_seconds * SAMPLE_RATE) // self.mel.settings.hop_length \
            * self.mel.settings.hop_length
        if cfg.data.name == "speech":
            corpus = load_embedded_speech()
            self.train_clips, self.held_out = corpus.split("train"), corpus.split("held_out")
            self.held_out_voice = corpus.split("held_out_voice")
        else:
            if cfg.data.path is None:
                raise UserError("data.path: a folder of audio files is needed for data.name folder")
            clips = load_audio_folder(cfg.data.path, "data.path", self.segment)
            if len(clips) < 2:
                raise UserError(f"data.path: {cfg.data.path} needs at least two files (one is held out)")
            self.held_out = clips[::10]
            self.train_clips = [c for i, c in enumerate(clips) if i % 10]
            self.held_out_voice = []
        self.mel_weight = cfg.task.mel_weight

    def cost_unit(self) -> tuple[str, float]:
        # a vocoder's cost grows with the clip: per second of audio, whatever sample_seconds
        return "second of audio", self.sample_length / SAMPLE_RATE

    def __len__(self) -> int:
        return len(self.train_clips)

    def diversity(self, samples: torch.Tensor) -> None:
        """None: each waveform follows its own mel, so clips differ whatever the generator
        does, and the pairwise L1 of waveforms (mostly near-silent samples) says nothing of
        collapse."""
        return None

    def objective_terms(self, cfg) -> tuple[list[LossTerm], list[LossTerm]]:
        return ([MelL1(self.mel, self.mel_weight)] if self.mel_weight > 0 else []), []

    # -- batches -------------------------------------------------------------------------
    @staticmethod
    def cut(audio: torch.Tensor, length: int, start: int) -> torch.Tensor:
        piece = audio[start: start + length]
        return torch.nn.functional.pad(piece, (0, length - len(piece)))

    def batch(self, indices: torch.Tensor, noise: torch.Generator) -> StepBatch:
        pieces = []
        for i in indices.tolist():
            audio = self.train_clips[i].audio
            room = max(0, len(audio) - self.segment)
            start = int(torch.randint(room + 1, (1,), generator=noise))
            pieces.append(self.cut(audio, self.segment, start))
        real = torch.stack(pieces)[:, None]  # (B, 1, segment)
        with torch.no_grad():
            return StepBatch(real, (self.mel(real),), ())

    def fixed_batch(self, n: int, seed: int) -> StepBatch:
        """The first `sample_seconds` of held-out clips (the same every time)."""
        clips = [self.held_out[i % len(self.held_out)] for i in range(n)]
        real = torch.stack([self.cut(c.audio, self.sample_length, 0) for c in clips])[:, None]
        with torch.no_grad():
            return StepBatch(real, (self.mel(real),), ())

    def network_specs(self, cfg) -> tuple[HiFiGANSpec | VocosSpec, VocoderDiscriminatorSpec]:
        g, d, m = cfg.model.generator, cfg.model.discriminator, self.mel.settings
        if g.arch == "vocos":  # its inverse STFT frames the audio as the mel does
            g_spec = VocosSpec(n_mels=m.n_mels, hop=m.hop_length, **g.model_dump(exclude={"n_fft"}),
                               n_fft=g.n_fft or m.n_fft)
        else:
            g_spec = HiFiGANSpec(n_mels=m.n_mels, **g.model_dump())
        return g_spec, VocoderDiscriminatorSpec(**d.model_dump())

    # -- what the run shows --------------------------------------------------------------
    def save_samples(self, path: Path, batch: StepBatch, outputs: list[torch.Tensor], names: list[str]) -> Path:
        """PATH/NAME_i.wav for the first two clips of each output and of the ground truth,
        and PATH.png: their log-mel spectrograms, one column per output."""
        return save_clips(path, [*outputs, batch.real], [*names, "ground truth"], self.mel)

    def comparison_panel(self, names: list[str], batch: StepBatch, outputs: list[torch.Tensor]) -> bytes:
        return spectrogram_panel([*outputs, batch.real], [*names, "ground truth"], self.mel)

    def comparison_media(self, names: list[str], batch: StepBatch, outputs: list[torch.Tensor]
                         ) -> list[tuple[str, str, bytes]]:
        """The first two clips of every output and of the recording, as 16-bit WAVs."""
        return clip_media([*outputs, batch.real], [*names, "ground truth"])

    @classmethod
    def protocol(cls, evaluation: dict) -> str:
        voice = evaluation.get("held_out_voice", {}).get("clips")
        beside = f"; the held-out voice's {voice} clips are scored in eval.json beside" if voice else ""
        return (f"Quality: task vocoder, {evaluation.get('clips')} held-out clips (sentences no voice trained on), "
                f"each resynthesised from its own recording's log-mel{beside}.")

    @classmethod
    def metric_notes(cls) -> dict[str, str]:
        return {
            "mel_l1": "mel_l1: mean |log-mel(output) - log-mel(recording)| over the clip (HiFi-GAN's validation "
                      "number; lower is better).",
            "pesq": "pesq: wide-band PESQ (ITU-T P.862.2) against the recording, from -0.5 to 4.5, higher is better. "
                    "The Griffin-Lim row is the signal-processing baseline: 32 iterations on the same mel; a vocoder "
                    "worth distilling beats it.",
            "stoi": "stoi: short-time objective intelligibility against the recording, 0 to 1, higher is better.",
            "mrstft": "mrstft: multi-resolution STFT distance to the recording (spectral convergence + log-magnitude "
                      "L1 at FFT sizes 512, 1024, 2048; Parallel WaveGAN's), lower is better.",
            "mcd": "mcd: mel-cepstral distortion in dB (cepstral coefficients 1-12 of the log-mel, frames aligned), "
                   "lower is better.",
            "f0_rmse": "f0_rmse: pitch error in Hz (pYIN) over the frames voiced in both output and recording.",
            "vuv_error": "vuv_error: fraction of frames whose voiced/unvoiced decision differs from the recording's.",
            "dnsmos": "dnsmos: DNSMOS P.835 overall MOS, a learned 1-5 estimate of how a listener would rate the "
                      "clip, without the recording (on clean speech about 3).",
        }

    # -- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, generator, cfg, metrics, options) -> dict:
        """mel L1, PESQ and STOI of the generator's waveform from each held-out clip's own mel
        (`--samples` caps the clips), the same for Griffin-Lim as the baseline to beat, and the
        held-out voice's scores beside."""
        generator.eval()
        clips = self.held_out[: options.get("samples") or None]
        result = {"clips": len(clips), **self.score(generator, clips, metrics)}
        result["baselines"] = {"Griffin-Lim, 32 iterations": {"clips": len(clips),
                                                              **self.score(None, clips, metrics)}}
        if self.held_out_voice:
            voice = self.held_out_voice[: options.get("samples") or None]
            result["held_out_voice"] = {"clips": len(voice), **self.score(generator, voice, metrics)}
        if cfg.distill is not None and cfg.distill.teacher:  # how closely the student follows its teacher
            from kdgan.loading import load_gan

            teacher = load_gan(cfg.distill.teacher, cfg.distill.trust_pickle, field="distill.teacher").generator
            fidelity = [m for m in metrics if m != "dnsmos"]  # dnsmos has no reference to be faithful to
            result["fidelity"] = {"reference": "teacher", "clips": len(clips),
                                  **self.score(generator, clips, fidelity, reference=teacher.eval())}
        return result

    def score(self, generator, clips: list[Clip], metrics, reference=None) -> dict:
        """Mean (and std over clips) of each metric against the recording, or against what the
        `reference` generator makes of the same mel; generator None: Griffin-Lim."""
        from kdgan.tasks.audio.metrics import clip_scores, griffin_lim, mean_scores

        hop, per_clip = self.mel.settings.hop_length, []
        for clip in clips:
            audio = clip.audio[: len(clip.audio) // hop * hop]
            log_mel = self.mel(audio[None])
            fake = griffin_lim(log_mel[0], self.mel, len(audio)) if generator is None else _run(generator, log_mel)
            target = audio if reference is None else _run(reference, log_mel)
            per_clip.append(clip_scores(fake, target, self.mel, metrics))
        return mean_scores(per_clip)

    @classmethod
    def export_signature(cls, spec: HiFiGANSpec, generator):
        """mel (B, n_mels, frames), the frames axis dynamic; verified at other lengths too."""
        from kdgan.deploy import Signature

        def example(n: int, seed: int, size=None) -> tuple[torch.Tensor]:
            frames = size[0] if size else 32
            return (torch.randn(n, spec.n_mels, frames, generator=torch.Generator().manual_seed(seed)) - 4,)

        return Signature(["mel"], example, sizes=[(45,), (17,)], length_axis=2)

    @classmethod
    def translate(cls, generator, spec, inputs: Path, out: Path) -> list[Path]:
        """`kdgan sample --input`: each audio file (or a saved mel, .npy of (n_mels, frames))
        resynthesised through its log-mel; `out` a .wav for one input, else a folder."""
        import numpy as np

        from kdgan.tasks.audio.corpus import input_files, output_for, read_audio

        files = input_files(inputs, out, (".npy",), " or .npy mels")
        mel, written = LogMel(MelSettings()), []
        for path in files:
            if path.suffix.lower() == ".npy":
                m = torch.from_numpy(np.load(path, allow_pickle=False)).float()
                if m.ndim != 2 or m.shape[0] != spec.n_mels:
                    raise UserError(f"--input: {path} holds shape {tuple(m.shape)}; a mel is ({spec.n_mels}, frames)")
                m = m[None]
            else:
                m = mel(read_audio(path, "--input")[None])
            with torch.no_grad():
                audio = generator(m)
            target = output_for(path, out)
            written += cls.write_samples(audio, target)
        return written

    @classmethod
    def sample_suffix(cls) -> str:
        return ".wav"

    @classmethod
    def write_samples(cls, outputs: torch.Tensor, out: Path, scale: int = 1) -> list[Path]:
        return write_outputs(outputs, out)


def _run(generator, log_mel: torch.Tensor) -> torch.Tensor:
    """generator(mel (1, n_mels, F)) as a waveform (F * hop,) on the CPU."""
    device = next(generator.parameters(), torch.empty(0)).device
    return generator(log_mel.to(device)).float().cpu().reshape(-1)

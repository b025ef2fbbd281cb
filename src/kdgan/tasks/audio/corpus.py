"""Speech data: the embedded multi-voice corpus (kdgan/data/speech, built by
scripts/build_speech.py) and a user's folder of audio files, as 16 kHz mono float32 clips.

Splits of the embedded corpus (fixed; see data/speech/SOURCES.md):
  train           every voice but the held-out one, on every sentence but the held-out ones
  held_out        the same voices on the held-out sentences (no voice trains on them)
  held_out_voice  the held-out voice on every sentence (a speaker never heard in training)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from kdgan.errors import UserError

SAMPLE_RATE = 16000
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
SPLITS = ("train", "held_out", "held_out_voice")


@dataclass(frozen=True)
class Clip:
    name: str  # "voice/sentence" for the corpus, the file name for a folder
    audio: torch.Tensor  # (T,) float32 in [-1, 1] at SAMPLE_RATE
    voice: str = ""
    sentence: int = -1


@dataclass(frozen=True)
class SpeechCorpus:
    clips: list[Clip]
    sentences: list[str]
    held_out_sentences: tuple[int, ...]
    held_out_voice: str

    @property
    def voices(self) -> list[str]:
        return list(dict.fromkeys(c.voice for c in self.clips))

    def split(self, name: str) -> list[Clip]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}")
        held = set(self.held_out_sentences)
        if name == "held_out_voice":
            return [c for c in self.clips if c.voice == self.held_out_voice]
        seen_voice = [c for c in self.clips if c.voice != self.held_out_voice]
        return [c for c in seen_voice if (c.sentence in held) == (name == "held_out")]


def speech_folder() -> Path:
    return Path(str(resources.files("kdgan.data").joinpath("speech")))


def load_embedded_speech() -> SpeechCorpus:
    import soundfile as sf

    folder = speech_folder()
    meta = json.loads((folder / "corpus.json").read_text())
    audio = {v: sf.read(folder / f"{v}.flac", dtype="float32")[0] for v in meta["voices"]}
    clips = [Clip(f"{c['voice']}/{c['sentence']}", torch.from_numpy(audio[c["voice"]][c["start"]: c["end"]].copy()),
                  c["voice"], c["sentence"]) for c in meta["clips"]]
    return SpeechCorpus(clips, [s["text"] for s in meta["sentences"]], tuple(meta["held_out_sentences"]),
                        meta["held_out_voice"])


def read_audio(path: Path, field: str, rate: int = SAMPLE_RATE) -> torch.Tensor:
    """One audio file as (T,) float32 at `rate`: channels averaged to mono (documented: a
    stereo recording becomes the mean of its channels), resampled with soxr (VHQ)."""
    import soundfile as sf
    import soxr

    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise UserError(f"{field}: {path} is not a supported audio file; give {', '.join(AUDIO_SUFFIXES)}")
    try:
        audio, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise UserError(f"{field}: cannot read {path}: {str(err).splitlines()[0]} (damaged, or not audio?)") from None
    audio = audio.mean(1)
    if file_rate != rate:
        audio = soxr.resample(audio, file_rate, rate, quality="VHQ")
    return torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))


def input_files(inputs: Path, out: Path, also: tuple[str, ...] = (), also_named: str = "") -> list[Path]:
    """`kdgan sample --input`: the audio files (and files ending in `also`, e.g. .npy mels)
    under `inputs`, or `inputs` itself; a missing input, a folder without any, or several
    inputs for one .wav `out` is the user's to fix."""
    if not inputs.exists():
        raise UserError(f"--input: {inputs} does not exist")
    files = sorted(p for p in inputs.rglob("*") if p.suffix.lower() in (*AUDIO_SUFFIXES, *also)) \
        if inputs.is_dir() else [inputs]
    if not files:
        raise UserError(f"--input: {inputs} has no audio files ({', '.join(AUDIO_SUFFIXES)}){also_named}")
    if out.suffix.lower() == ".wav" and len(files) > 1:
        raise UserError(f"--out: {len(files)} inputs need a folder, not {out.name}")
    return files


def output_for(path: Path, out: Path) -> Path:
    """Where the result for input `path` goes: `out` itself when it is a .wav, else out/NAME.wav."""
    return out if out.suffix.lower() == ".wav" else out / path.with_suffix(".wav").name


def load_audio_folder(folder: Path, field: str, min_samples: int, rate: int = SAMPLE_RATE) -> list[Clip]:
    """Every audio file under `folder` (sorted, recursively). A file shorter than
    `min_samples` (one training segment) or silent throughout is the user's to fix, by name."""
    if not folder.is_dir():
        raise UserError(f"{field}: {folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise UserError(f"{field}: {folder} has no audio files ({', '.join(AUDIO_SUFFIXES)})")
    clips = []
    for path in files:
        audio = read_audio(path, field, rate)
        if len(audio) < min_samples:
            raise UserError(f"{field}: {path} is {len(audio) / rate:.3f} s long, shorter than one training segment "
                            f"({min_samples / rate:.3f} s); remove it or shorten data.segment")
        if float(audio.abs().max()) < 1e-4:
            raise UserError(f"{field}: {path} is silent throughout; remove it")
        clips.append(Clip(str(path.relative_to(folder)), audio))
    return clips

"""A speaker encoder trained in the project on the corpus voices (#18): it classifies which
voice speaks a clip, and its penultimate layer is the speaker embedding that voice conversion
is scored in (speaker similarity: cosine between embeddings) and that a cloning generator is
conditioned on, as the glyph classifier's features are the space FID is measured in.

The network is an x-vector in small (Snyder et al. 2018): dilated 1-D convs over the log-mel
frames, the mean and standard deviation of the last layer over time (so any length goes in),
a linear layer to the embedding (L2-normalised by `embed`), and a linear classifier over the
training voices, each at several vocal-tract lengths.

Training: random 1-second crops (62 mel frames) of the training split's clips (every voice
but the held-out one, the held-out sentences excluded), cross-entropy; accuracy is measured
on whole clips of the held-out sentences (the voice named, at any warp). The held-out voice is
never seen, which is what lets it stand for an unseen target voice.

Speaker augmentation: seven voices (six of them male) are too few for an embedding in which a
new voice lands somewhere meaningful. Each training voice is also warped to the vocal-tract
lengths in `warps` (kdgan.tasks.audio.mel.warp_matrix: formants and harmonics moved
together), and every (voice, warp) pair is a class of its own, as speed-perturbed copies of a
speaker are new speakers in Yamamoto et al. 2019. The embedding then has a direction for
vocal-tract length: the unseen female voice's clips land nearest the warped-up male voices
(measured: cosine to kal16 0.46 with warps, 0.82 without).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from kdgan.errors import UserError

CROP_FRAMES = 62  # one second of 16 kHz audio at the mel hop of 256


class SpeakerEncoderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    voices: list[str]  # the training voices; the classes are each voice at each warp, voice-major
    warps: list[float] = [1.0]  # vocal-tract-length factors every voice is also trained at
    width: int = Field(64, ge=1)
    embedding: int = Field(64, ge=1)
    n_mels: int = 80


class SpeakerEncoder(nn.Module):
    """log-mel (B, n_mels, F) -> voice logits (B, voices); `embed` -> (B, embedding), unit norm."""

    def __init__(self, spec: SpeakerEncoderSpec):
        super().__init__()
        self.spec = spec
        w = spec.width
        self.frames = nn.Sequential(
            nn.Conv1d(spec.n_mels, w, 5, padding=2), nn.ReLU(), nn.BatchNorm1d(w),
            nn.Conv1d(w, w, 3, dilation=2, padding=2), nn.ReLU(), nn.BatchNorm1d(w),
            nn.Conv1d(w, w, 3, dilation=3, padding=3), nn.ReLU(), nn.BatchNorm1d(w),
        )
        self.to_embedding = nn.Linear(2 * w, spec.embedding)
        self.classify = nn.Linear(spec.embedding, len(spec.voices) * len(spec.warps))

    def _pooled(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.frames(mel)  # (B, w, F)
        return self.to_embedding(torch.cat([h.mean(-1), h.std(-1, unbiased=False)], 1))

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        return F.normalize(self._pooled(mel), dim=1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Logits over (voice, warp) classes."""
        return self.classify(F.relu(self._pooled(mel)))

    def voice(self, mel: torch.Tensor) -> list[str]:
        """The training voice each log-mel (B, n_mels, F) sounds most like, at any warp."""
        return [self.spec.voices[int(i) // len(self.spec.warps)] for i in self(mel).argmax(1)]


def _crops(mels: list[torch.Tensor], labels: list[int], n: int, gen: torch.Generator):
    picks = torch.randint(len(mels), (n,), generator=gen).tolist()
    batch = []
    for i in picks:
        mel = mels[i]
        if mel.shape[1] < CROP_FRAMES:  # a short clip: repeated to a second
            mel = mel.repeat(1, CROP_FRAMES // mel.shape[1] + 1)
        start = int(torch.randint(mel.shape[1] - CROP_FRAMES + 1, (1,), generator=gen))
        batch.append(mel[:, start: start + CROP_FRAMES])
    return torch.stack(batch), torch.tensor([labels[i] for i in picks])


WARPS = (0.85, 0.92, 1.0, 1.09, 1.2)  # the shipped encoder's vocal-tract lengths


def train_speaker_encoder(corpus, steps: int = 2000, batch_size: int = 32, seed: int = 0, width: int = 64,
                          warps: tuple[float, ...] = WARPS, log=None) -> tuple[SpeakerEncoder, dict]:
    """The encoder trained on `corpus` (kdgan.tasks.audio.corpus.SpeechCorpus); report: its
    accuracy on the held-out sentences and the majority-voice rate there."""
    from kdgan.tasks.audio.mel import LogMel, warp_matrix

    torch.manual_seed(seed)
    mel = LogMel()
    train, test = corpus.split("train"), corpus.split("held_out")
    voices = list(dict.fromkeys(c.voice for c in train))
    with torch.no_grad():
        recorded = [mel(c.audio[None])[0] for c in train]
        test_mels = [mel(c.audio[None])[0] for c in test]
    train_mels, train_labels = [], []
    for k, factor in enumerate(warps):
        train_mels += [warp_matrix(factor) @ m if factor != 1 else m for m in recorded]
        train_labels += [voices.index(c.voice) * len(warps) + k for c in train]
    model = SpeakerEncoder(SpeakerEncoderSpec(voices=voices, width=width, warps=list(warps)))
    optim = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    for step in range(steps):
        x, y = _crops(train_mels, train_labels, batch_size, gen)
        loss = F.cross_entropy(model(x), y)
        optim.zero_grad()
        loss.backward()
        optim.step()
        if log and (step + 1) % 100 == 0:
            log(f"step {step + 1}: loss {loss.item():.4f}")
    model.eval()
    with torch.no_grad():
        right = sum(model.voice(m[None])[0] == c.voice for m, c in zip(test_mels, test))
    counts = [sum(c.voice == v for c in test) for v in voices]
    return model, {"test_accuracy": right / len(test), "majority_rate": max(counts) / len(test),
                   "test_clips": len(test), "steps": steps}


def save_speaker_encoder(model: SpeakerEncoder, out: Path, report: dict) -> None:
    from kdgan.train.checkpoint import atomic_save_tensors, atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    atomic_save_tensors(out / "model.safetensors", model.state_dict())
    atomic_write_bytes(out / "config.json", json.dumps({"spec": model.spec.model_dump(), **report}, indent=2).encode())


def load_speaker_encoder(folder: Path | None = None, field: str = "speaker encoder") -> SpeakerEncoder:
    """A folder written by save_speaker_encoder; None: the shipped one (`make speaker-encoder`)."""
    from importlib import resources

    from safetensors.torch import load_file

    folder = folder or Path(str(resources.files("kdgan.pretrained").joinpath("speaker_encoder")))

    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise UserError(f"{field}: {folder} is not a speaker encoder folder (config.json + model.safetensors)")
    model = SpeakerEncoder(SpeakerEncoderSpec(**json.loads((folder / "config.json").read_text())["spec"]))
    model.load_state_dict(load_file(folder / "model.safetensors"))
    return model.eval()

"""How audio tasks show clips: log-mel spectrogram panels (one column per source), WAV
files and the WAV bytes `kdgan compare`'s HTML page plays. Shared by the vocoder and the
enhancement tasks; a column is a batch of waveforms (B, 1, T) with its label."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from kdgan.tasks.audio.corpus import SAMPLE_RATE
from kdgan.tasks.audio.mel import LogMel

ROWS = 2  # clips shown per column


def wav_bytes(audio: torch.Tensor) -> bytes:
    """One waveform as 16-bit WAV bytes at 16 kHz (clipped to [-1, 1])."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio.reshape(-1).float().cpu().clamp(-1, 1).numpy(), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def write_wav(path: Path, audio: torch.Tensor) -> Path:
    path.write_bytes(wav_bytes(audio))
    return path


def slug(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label)


def spectrogram_panel(columns: list[torch.Tensor], labels: list[str], mel: LogMel) -> bytes:
    """PNG bytes: the log-mel spectrograms of each column's first clips, columns side by side."""
    rows = min(ROWS, len(columns[0]))
    with torch.no_grad():
        return mel_panel([mel(audio[:rows].float().cpu()) for audio in columns], labels)


def mel_panel(columns: list[torch.Tensor], labels: list[str]) -> bytes:
    """PNG bytes: log-mels (B, n_mels, F) of each column's first clips, columns side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = min(ROWS, len(columns[0]))
    fig, axes = plt.subplots(rows, len(columns), figsize=(3.2 * len(columns), 2.2 * rows), squeeze=False)
    for col, (mels, label) in enumerate(zip(columns, labels)):
        for row in range(rows):
            ax = axes[row][col]
            ax.imshow(mels[row].float().cpu().numpy(), origin="lower", aspect="auto", vmin=-11.5, vmax=2.5,
                      cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(label, fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def clip_media(columns: list[torch.Tensor], labels: list[str]) -> list[tuple[str, str, bytes]]:
    """(label, file name, WAV bytes) of each column's first clips, for compare's HTML page."""
    return [(f"{label}, clip {i + 1}", f"{slug(label)}_{i + 1}.wav", wav_bytes(audio[i]))
            for audio, label in zip(columns, labels) for i in range(min(ROWS, len(audio)))]


def save_clips(path: Path, columns: list[torch.Tensor], labels: list[str], mel: LogMel) -> Path:
    """PATH/LABEL_i.wav for each column's first clips, and PATH.png: their spectrograms."""
    path.mkdir(parents=True, exist_ok=True)
    for audio, label in zip(columns, labels):
        for i in range(min(ROWS, len(audio))):
            write_wav(path / f"{label.replace(' ', '_').replace(',', '')}_{i}.wav", audio[i])
    png = path.with_suffix(".png")
    png.write_bytes(spectrogram_panel(columns, labels, mel))
    return png


def write_outputs(outputs: torch.Tensor, out: Path) -> list[Path]:
    """`kdgan sample`'s files: one .wav holding every output end to end, or a folder of them."""
    if out.suffix.lower() == ".wav":
        out.parent.mkdir(parents=True, exist_ok=True)
        return [write_wav(out, outputs.reshape(-1))]
    out.mkdir(parents=True, exist_ok=True)
    return [write_wav(out / f"{i:06d}.wav", audio) for i, audio in enumerate(outputs)]

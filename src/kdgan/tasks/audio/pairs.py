"""Paired recordings (noisy / clean, source / target): two folders holding files of the same
relative names, read as 16 kHz mono like every audio file (kdgan.tasks.audio.corpus)."""

from __future__ import annotations

from pathlib import Path

import torch

from kdgan.errors import UserError
from kdgan.tasks.audio.corpus import SAMPLE_RATE, load_audio_folder

LENGTH_TOLERANCE = 0.01  # seconds two partners may differ by (resampling rounds); the longer is cut


def load_pairs(first: Path, second: Path, min_samples: int, fields=("data.noisy", "data.clean"),
               same_length: bool = True) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, first's audio, second's audio) per relative name, sorted. A file without its
    partner, or (with `same_length`: noisy and clean takes of one recording) partners of
    different lengths, is named; two speakers saying a sentence keep their own lengths."""
    a = {c.name: c.audio for c in load_audio_folder(first, fields[0], min_samples)}
    b = {c.name: c.audio for c in load_audio_folder(second, fields[1], min_samples)}
    stem = lambda name: str(Path(name).with_suffix(""))  # noqa: E731  (a.wav pairs with a.flac)
    b_by_stem = {stem(n): n for n in b}
    for name in a:
        if stem(name) not in b_by_stem:
            raise UserError(f"{fields[0]}: {first / name} has no partner of the same name in {second}")
    a_stems = {stem(n) for n in a}
    for name in b:
        if stem(name) not in a_stems:
            raise UserError(f"{fields[1]}: {second / name} has no partner of the same name in {first}")
    pairs = []
    for name in sorted(a):
        x, y = a[name], b[b_by_stem[stem(name)]]
        if not same_length:
            pairs.append((name, x, y))
            continue
        if abs(len(x) - len(y)) > LENGTH_TOLERANCE * SAMPLE_RATE:
            raise UserError(f"{fields[0]}: {first / name} lasts {len(x) / SAMPLE_RATE:.3f} s and its partner in "
                            f"{second} {len(y) / SAMPLE_RATE:.3f} s; paired recordings must be the same length")
        n = min(len(x), len(y))
        pairs.append((name, x[:n], y[:n]))
    if len(pairs) < 2:
        raise UserError(f"{fields[0]}: {first} needs at least two pairs (one is held out)")
    return pairs

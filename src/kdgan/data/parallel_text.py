"""The embedded parallel text (issue #19): verse-aligned pairs built by scripts/build_text.py
from Debian's public-domain Bible modules (their versions and licences: data/text/SOURCES.md).

    translation_en_es  King James Version -> Reina-Valera 1909 (English -> Spanish), 31,084 verses
    style_kjv_web      King James Version -> World English Bible (archaic -> modern English), 31,095

Each pair is (reference, source, target), e.g. ("John 11:35", "Jesus wept.", "Y lloró Jesús.").
The held-out split is by chapter, every `every`-th chapter in canonical order, so no test verse
shares a chapter (its context, its names) with a training verse.
"""

from __future__ import annotations

import lzma
from importlib import resources

CORPORA = ("translation_en_es", "style_kjv_web")


def load_parallel_text(name: str) -> list[tuple[str, str, str]]:
    """Every (reference, source, target) of an embedded corpus, in canonical order."""
    if name not in CORPORA:
        raise ValueError(f"no embedded parallel text {name!r}; corpora: {', '.join(CORPORA)}")
    packed = resources.files("kdgan.data").joinpath("text", f"{name}.tsv.xz").read_bytes()
    return [tuple(line.split("\t")) for line in lzma.decompress(packed).decode("utf-8").splitlines()]


def chapter(reference: str) -> str:
    """"Song of Solomon 1:2" -> "Song of Solomon 1"."""
    return reference.rsplit(":", 1)[0]


def split_by_chapter(pairs: list[tuple[str, str, str]], every: int = 11) -> tuple[list, list]:
    """(training pairs, held-out pairs): the held-out ones are the verses of every `every`-th
    chapter in the order the chapters first appear."""
    order: dict[str, int] = {}
    for ref, *_ in pairs:
        order.setdefault(chapter(ref), len(order))
    held = lambda ref: order[chapter(ref)] % every == every - 1  # noqa: E731
    return [p for p in pairs if not held(p[0])], [p for p in pairs if held(p[0])]

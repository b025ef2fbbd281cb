"""Sentence pairs for the text tasks (#19): the embedded corpora or a user's TSV file.

    data.name: translation_en_es   King James English -> Reina-Valera Spanish (embedded)
    data.name: style_kjv_web       King James -> World English Bible, archaic -> modern (embedded)
    data.name: tsv                 data.path, one SOURCE<TAB>TARGET pair per line (translation,
                                   summarisation, dialogue: any sequence-to-sequence pairs);
                                   data.test_path holds the evaluation pairs, else every 10th line
                                   (the last one of a file of fewer than 10)

The embedded corpora keep the verses of at most data.max_words source words (and at most twice
as many target words: longer ones are merged verses) and hold out
every 11th chapter (kdgan.data.parallel_text), about 1,000 short test pairs. A user's file is
read strictly: a line without a tab, an empty side, text that is not UTF-8 or an empty file is
one error naming the file and the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from kdgan.data.parallel_text import CORPORA, load_parallel_text, split_by_chapter
from kdgan.errors import UserError
from kdgan.schema import Strict


class TextData(Strict):
    name: Literal["translation_en_es", "style_kjv_web", "tsv"] = "translation_en_es"
    path: Path | None = None  # tsv: the training pairs
    test_path: Path | None = None  # tsv: the evaluation pairs (default: every 10th line of path)
    max_words: int | None = Field(20, ge=1)  # embedded corpora: keep verses of at most this many source words
    every: int = Field(11, ge=2)  # embedded corpora: hold out every n-th chapter


Pairs = list[tuple[str, str, str]]  # (source, target, where it came from: "FILE line N" or a verse)


def text_lines(path: Path, field: str, kind: str) -> list[tuple[int, str]]:
    """(line number, text) of every line of a UTF-8 file, or a UserError naming the file (and
    the line that is not UTF-8); `kind` says what the file should be, for a folder given."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{field}: no file {path}") from None
    except IsADirectoryError:
        raise UserError(f"{field}: {path} is a folder; give {kind}") from None
    except OSError as err:
        raise UserError(f"{field}: cannot read {path}: {err.strerror}") from None
    lines = []
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            lines.append((number, raw.decode("utf-8")))
        except UnicodeDecodeError as err:
            raise UserError(f"{field}: {path} line {number}: not UTF-8 text (byte {err.start + 1}); "
                            "save the file as UTF-8") from None
    return lines


def read_tsv(path: Path, field: str) -> Pairs:
    """The (source, target, "PATH line N") of a TSV file, or a UserError naming the file and line."""
    pairs = []
    for number, line in text_lines(path, field, "a TSV file of SOURCE<TAB>TARGET lines"):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            what = "no tab" if len(parts) == 1 else f"{len(parts) - 1} tabs"
            raise UserError(f"{field}: {path} line {number}: {what}; each line is SOURCE<TAB>TARGET")
        source, target = (p.strip() for p in parts)
        if not source or not target:
            raise UserError(f"{field}: {path} line {number}: an empty {'source' if not source else 'target'}")
        pairs.append((source, target, f"{path} line {number}"))
    if not pairs:
        raise UserError(f"{field}: {path} holds no SOURCE<TAB>TARGET lines")
    return pairs


def load_text_pairs(d: TextData) -> tuple[Pairs, Pairs]:
    """(training pairs, evaluation pairs) of the data section, each (source, target, where)."""
    if d.name in CORPORA:
        # A few verses of one version hold several of the other's (versification differs): a
        # target of over twice the words allowed is such a merge, not a translation.
        pairs = [(ref, s, t) for ref, s, t in load_parallel_text(d.name)
                 if d.max_words is None or (len(s.split()) <= d.max_words and len(t.split()) <= 2 * d.max_words)]
        train, test = split_by_chapter(pairs, d.every)
        if not train or not test:
            raise UserError(f"data.max_words: {d.max_words} leaves {len(train)} training and {len(test)} held-out "
                            f"verses of {d.name}; allow more words")
        return [(s, t, ref) for ref, s, t in train], [(s, t, ref) for ref, s, t in test]
    if d.path is None:
        raise UserError("data.path: data.name tsv needs a file of SOURCE<TAB>TARGET lines")
    pairs = read_tsv(d.path, "data.path")
    if d.test_path is not None:
        return pairs, read_tsv(d.test_path, "data.test_path")
    if len(pairs) < 2:
        raise UserError(f"data.path: {d.path} holds one pair; training and evaluation need at least two "
                        "(or give data.test_path)")
    held = set(range(9, len(pairs), 10)) or {len(pairs) - 1}  # a file of under 10 pairs: its last one
    return [p for i, p in enumerate(pairs) if i not in held], [p for i, p in enumerate(pairs) if i in held]


class LineData(Strict):
    """The `data` section of unconditional text (task.name: lm)."""

    name: Literal["translation_en_es", "style_kjv_web", "lines"] = "style_kjv_web"
    side: Literal["source", "target"] = "target"  # embedded corpora: which side's sentences
    path: Path | None = None  # lines: one sentence per line, UTF-8
    test_path: Path | None = None  # lines: the held-out sentences (default: every 10th line of path)
    max_words: int | None = Field(20, ge=1)
    every: int = Field(11, ge=2)


Sentences = list[tuple[str, str]]  # (sentence, where it came from)


def read_lines(path: Path, field: str) -> Sentences:
    """The non-blank lines of a UTF-8 text file, or a UserError naming the file and line."""
    lines = [(text.strip(), f"{path} line {number}")
             for number, text in text_lines(path, field, "a text file with one sentence per line") if text.strip()]
    if not lines:
        raise UserError(f"{field}: {path} holds no sentence")
    return lines


def load_sentences(d: LineData) -> tuple[Sentences, Sentences]:
    """(training sentences, held-out sentences) of an lm data section."""
    if d.name in CORPORA:
        pairs = TextData(name=d.name, max_words=d.max_words, every=d.every)
        train, test = load_text_pairs(pairs)
        side = 0 if d.side == "source" else 1
        return [(p[side], p[2]) for p in train], [(p[side], p[2]) for p in test]
    if d.path is None:
        raise UserError("data.path: data.name lines needs a text file, one sentence per line")
    lines = read_lines(d.path, "data.path")
    if d.test_path is not None:
        return lines, read_lines(d.test_path, "data.test_path")
    if len(lines) < 2:
        raise UserError(f"data.path: {d.path} holds one sentence; training and evaluation need at least two "
                        "(or give data.test_path)")
    held = set(range(9, len(lines), 10)) or {len(lines) - 1}
    return [x for i, x in enumerate(lines) if i not in held], [x for i, x in enumerate(lines) if i in held]

"""The embedded parallel text (#19), as scripts/build_text.py built it: sizes, known verses,
clean fields, and a held-out split by chapter that shares no chapter with training."""

from __future__ import annotations

import pytest

from kdgan.data.parallel_text import CORPORA, chapter, load_parallel_text, split_by_chapter


@pytest.mark.parametrize("name, size", [("translation_en_es", 31084), ("style_kjv_web", 31095)])
def test_the_corpora_hold_every_aligned_verse_with_clean_fields(name, size):
    pairs = load_parallel_text(name)
    assert len(pairs) == size and len({ref for ref, _, _ in pairs}) == size
    assert all(source and target and source == source.strip() and "  " not in source for _, source, target in pairs)
    assert pairs[0][0] == "Genesis 1:1" and pairs[-1][0] == "Revelation of John 22:21"
    assert not any("<" in s or ">" in s or "<" in t for _, s, t in pairs)  # no markup left


def test_known_verses():
    es = dict((ref, (s, t)) for ref, s, t in load_parallel_text("translation_en_es"))
    assert es["John 11:35"] == ("Jesus wept.", "Y lloró Jesús.")
    web = dict((ref, (s, t)) for ref, s, t in load_parallel_text("style_kjv_web"))
    # a footnote sat between "God" and "created" in the WEB's source: the words stay apart
    assert web["Genesis 1:1"][1] == "In the beginning, God created the heavens and the earth."
    assert web["Psalms 23:1"][1].startswith("A Psalm by David. Yahweh is my shepherd;")


def test_the_held_out_split_is_by_chapter():
    pairs = load_parallel_text(CORPORA[0])
    train, held = split_by_chapter(pairs)
    assert len(train) + len(held) == len(pairs)
    assert not {chapter(r) for r, _, _ in train} & {chapter(r) for r, _, _ in held}
    short = [p for p in held if len(p[1].split()) <= 20]
    assert 900 <= len(short) <= 1200  # about a thousand short test sentences

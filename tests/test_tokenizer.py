"""The text tasks' subword tokenizer (#19): trained on the training split, it encodes every
held-out sentence of both languages and decodes it back exactly, and it survives saving."""

from __future__ import annotations

import unicodedata

import pytest

from kdgan.data.parallel_text import load_parallel_text, split_by_chapter
from kdgan.tasks.text.tokenizer import BOS, EOS, SPECIALS, decode, encode, from_saved, train_tokenizer


@pytest.fixture(scope="module")
def split():
    return split_by_chapter(load_parallel_text("translation_en_es"))


@pytest.fixture(scope="module")
def tokenizer(split):
    train, _ = split
    return train_tokenizer((s for _, en, es in train for s in (en, es)), vocab_size=4000)


def test_held_out_sentences_round_trip_in_both_languages(tokenizer, split):
    _, held = split
    sentences = [s for _, en, es in held for s in (en, es)]
    for sentence in sentences:
        ids = encode(tokenizer, sentence)
        assert ids[0] == BOS and ids[-1] == EOS
        assert decode(tokenizer, ids) == unicodedata.normalize("NFC", sentence)
    assert tokenizer.get_vocab_size() == 4000
    assert [tokenizer.token_to_id(t) for t in SPECIALS] == [0, 1, 2, 3]
    # subwords, not characters: a held-out Spanish verse is far fewer tokens than letters
    ids = encode(tokenizer, "Y lloró Jesús.")
    assert len(ids) < len("Y lloró Jesús.") and decode(tokenizer, ids) == "Y lloró Jesús."


def test_decoding_stops_at_the_first_end_and_skips_specials(tokenizer):
    ids = encode(tokenizer, "Jesus wept.")
    assert decode(tokenizer, [*ids, *encode(tokenizer, "more")]) == "Jesus wept."
    assert decode(tokenizer, [0, 0, *ids[1:]]) == "Jesus wept."


def test_a_saved_tokenizer_encodes_alike_and_training_is_repeatable(tokenizer, split):
    again = from_saved(tokenizer.to_str())
    text = "In the beginning God created the heaven and the earth."
    assert encode(again, text) == encode(tokenizer, text)
    train, _ = split
    twin = train_tokenizer((s for _, en, es in train for s in (en, es)), vocab_size=4000)
    assert twin.to_str() == tokenizer.to_str()

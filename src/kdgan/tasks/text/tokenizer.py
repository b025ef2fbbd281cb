"""The subword tokenizer of the text tasks: byte-level BPE trained with Hugging Face
`tokenizers` on a run's training sentences and saved with the model (its JSON string goes into
the checkpoint), so a model always decodes with the vocabulary it was trained on.

Byte-level BPE cannot meet an unknown character: any UTF-8 text (Spanish accents, curly
quotes) encodes, and decoding gives the NFC form of the text back exactly. Four special
tokens take the first ids: PAD 0, BOS 1, EOS 2, UNK 3 (never produced, kept for checkpoints
of other tokenizers).
"""

from __future__ import annotations

from typing import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

SPECIALS = ("[PAD]", "[BOS]", "[EOS]", "[UNK]")
PAD, BOS, EOS, UNK = range(len(SPECIALS))


def train_tokenizer(sentences: Iterable[str], vocab_size: int = 8000) -> Tokenizer:
    """A byte-level BPE of at most `vocab_size` tokens (specials included) fitted to `sentences`."""
    tokenizer = Tokenizer(models.BPE(unk_token=SPECIALS[UNK]))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(sentences, trainer)
    return tokenizer


def encode(tokenizer: Tokenizer, text: str) -> list[int]:
    """Token ids of `text` between BOS and EOS."""
    return [BOS, *tokenizer.encode(text).ids, EOS]


def decode(tokenizer: Tokenizer, ids: Iterable[int]) -> str:
    """The text of token ids, up to the first EOS, specials left out, without the space a
    first word-initial token carries."""
    kept = []
    for i in ids:
        if i == EOS:
            break
        if i >= len(SPECIALS):
            kept.append(int(i))
    return tokenizer.decode(kept).strip()


def from_saved(saved: str) -> Tokenizer:
    """The tokenizer from the JSON string `Tokenizer.to_str()` wrote (kept in a checkpoint's meta)."""
    return Tokenizer.from_str(saved)

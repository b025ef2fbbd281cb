"""Quality of generated text (#19): corpus BLEU and chrF against references (sacrebleu, with
its default 13a tokenisation, so the numbers are comparable with published sacreBLEU scores),
the length ratio, and diversity: distinct-n (the share of n-grams that are unique) and
self-BLEU (each output scored against the others: high means the outputs repeat each other).
"""

from __future__ import annotations

import sacrebleu


def bleu(outputs: list[str], references: list[str]) -> float:
    return float(sacrebleu.corpus_bleu(outputs, [references]).score)


def chrf(outputs: list[str], references: list[str]) -> float:
    return float(sacrebleu.corpus_chrf(outputs, [references]).score)


def length_ratio(outputs: list[str], references: list[str]) -> float:
    """Output words over reference words, over the whole corpus (BLEU's brevity measure)."""
    return sum(len(o.split()) for o in outputs) / max(1, sum(len(r.split()) for r in references))


def distinct_n(outputs: list[str], n: int) -> float:
    """Distinct n-grams over all n-grams of the outputs (whitespace words); 0 for no n-grams."""
    grams = [tuple(words[i: i + n]) for words in (o.split() for o in outputs) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_bleu(outputs: list[str]) -> float:
    """The mean sentence BLEU of each output against all the others as references."""
    if len(outputs) < 2:
        raise ValueError("self-BLEU needs at least two outputs")
    scores = [sacrebleu.sentence_bleu(o, outputs[:i] + outputs[i + 1:]).score for i, o in enumerate(outputs)]
    return sum(scores) / len(scores)

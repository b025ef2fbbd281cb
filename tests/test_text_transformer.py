"""The text tasks' Transformer (#19): cached decoding equals recomputing the whole prefix,
padding does not change a sentence's output, and beam search with a beam wide enough to keep
every hypothesis finds what exhaustive search over a tiny vocabulary finds."""

from __future__ import annotations

import itertools

import torch

from kdgan.tasks.text.tokenizer import BOS, EOS, PAD
from kdgan.tasks.text.transformer import TextTransformer, TransformerSpec

TINY = TransformerSpec(width=16, heads=2, encoder_layers=2, decoder_layers=2, expansion=2, vocab=8, max_len=16)


def model(spec=TINY, seed=0) -> TextTransformer:
    torch.manual_seed(seed)
    return TextTransformer(spec).eval()


def test_cached_greedy_decoding_equals_recomputing_the_prefix():
    m = model(TransformerSpec(width=32, heads=4, encoder_layers=2, decoder_layers=3, expansion=2, vocab=50, max_len=16))
    src = torch.randint(4, 50, (3, 7))
    src[1, 5:] = PAD
    cached = m.greedy(src, max_len=12)
    out = torch.full((3, 1), BOS)
    with torch.no_grad():
        for _ in range(cached.shape[1] - 1):
            out = torch.cat([out, m.teacher_forced(src, out)[:, -1].argmax(-1, keepdim=True)], 1)
    for row, full in zip(cached, out):  # after a row's EOS the cached decoder pads
        n = (row == EOS).nonzero()[0, 0] + 1 if (row == EOS).any() else len(row)
        assert torch.equal(row[:n], full[:n]) and (row[n:] == PAD).all()


def test_padding_a_source_does_not_change_its_output():
    m = model()
    src = torch.tensor([[5, 6, 7, 4]])
    padded = torch.tensor([[5, 6, 7, 4, PAD, PAD]])
    tgt = torch.tensor([[BOS, 5, 4]])
    assert torch.allclose(m.teacher_forced(src, tgt), m.teacher_forced(padded, tgt), atol=1e-6)


def test_beam_search_keeping_every_hypothesis_finds_the_exhaustive_best():
    m = model(seed=3)
    src = torch.tensor([[5, 6, 7]])
    max_len = 5  # BOS + up to 3 tokens + EOS
    best, best_score = None, -float("inf")
    tokens = [t for t in range(TINY.vocab) if t != EOS]
    with torch.no_grad():
        for k in range(max_len - 1):
            for middle in itertools.product(tokens, repeat=k):
                seq = torch.tensor([[BOS, *middle, EOS]])
                logp = m.teacher_forced(src, seq[:, :-1]).log_softmax(-1)[0]
                score = float(logp.gather(1, seq[0, 1:, None]).sum()) / seq.shape[1]
                if score > best_score:
                    best, best_score = seq[0], score
    found = m.beam(src, beam=1000, max_len=max_len)[0]
    assert torch.equal(found[: len(best)], best), (found, best)


def test_a_sequence_longer_than_the_model_is_refused():
    m = model()
    try:
        m.teacher_forced(torch.ones(1, 17, dtype=torch.long), torch.ones(1, 2, dtype=torch.long))
    except ValueError as err:
        assert "longer than the model's max_len 16" in str(err)
    else:
        raise AssertionError("no error")


def test_attention_maps_computed_for_a_hook_give_the_fused_kernels_output():
    m = model()
    src, tgt = torch.tensor([[5, 6, 7, 4, PAD]]), torch.tensor([[BOS, 5, 6, 4]])
    with torch.no_grad():
        fused = m.teacher_forced(src, tgt)
    seen = {}
    hooks = [m.decoder[1].cross_attn.maps.register_forward_hook(lambda mod, i, o: seen.update(cross=o)),
             m.decoder[0].attn.maps.register_forward_hook(lambda mod, i, o: seen.update(causal=o))]
    with torch.no_grad():
        explicit = m.teacher_forced(src, tgt)
    for h in hooks:
        h.remove()
    assert torch.allclose(explicit, fused, atol=1e-5)
    cross, causal = seen["cross"], seen["causal"]  # (B, heads, queries, keys)
    assert cross.shape == (1, 2, 4, 5) and torch.allclose(cross.sum(-1), torch.ones(1, 2, 4))
    assert (cross[..., 4] == 0).all()  # the source's padding is never attended
    assert (causal.triu(1) == 0).all() and torch.allclose(causal.sum(-1), torch.ones(1, 2, 4))
    assert m.attention_taps == ("decoder.1.cross_attn.maps",)

"""A Transformer encoder-decoder for the text tasks (#19): pre-LayerNorm blocks, sinusoidal
positions, tied input/output embeddings in the decoder, and a key/value cache so that greedy
and beam decoding run each new token through the decoder once (not the whole prefix again).

    model(src, tgt_in)        -> GeneratorOutput: per-position argmax ids (B, T), logits
                                 (B, T, vocab) under teacher forcing, extras["mask"]: the
                                 positions that hold a token (tgt_in not padding); padding id 0
    model(src)                -> greedy translation (B, max_len), BOS first, padded after EOS
    model.teacher_forced(src, tgt_in) -> the logits alone
    model.greedy(src, n)      -> (B, <= n) token ids, BOS first, with the cache
    model.beam(src, k, n)     -> the best of k hypotheses per source by log-probability / length

Widths, depths and heads are the spec's, so a student is the same family narrower or shallower.
The spec also carries the tokenizer (its JSON, kdgan.tasks.text.tokenizer), so a checkpoint or
an exported file decodes with the vocabulary it was trained on, with nothing beside it.
The position codes are a saved buffer so that a pruned student can start from the teacher's.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from kdgan.losses.terms import GeneratorOutput
from kdgan.tasks.text.tokenizer import BOS, EOS, PAD


class TransformerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: Literal["text-transformer"] = "text-transformer"
    width: int = Field(256, ge=8)
    heads: int = Field(4, ge=1)
    encoder_layers: int = Field(3, ge=1)
    decoder_layers: int = Field(3, ge=1)
    expansion: int = Field(4, ge=1)  # feed-forward width / width
    vocab: int = Field(8000, ge=8)
    max_len: int = Field(128, ge=4)
    dropout: float = Field(0.1, ge=0, lt=1)  # on the embeddings and each sublayer's output, while training
    tokenizer: str = Field("", repr=False)  # the tokenizer's JSON (Tokenizer.to_str()); "" for none

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")
        return self


def positions(n: int, width: int, start: int = 0) -> torch.Tensor:
    """Sinusoidal position codes (n, width) for positions start .. start + n - 1."""
    pos = torch.arange(start, start + n, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    codes = torch.zeros(n, width)
    codes[:, 0::2], codes[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return codes


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.q, self.kv, self.out = nn.Linear(width, width), nn.Linear(width, 2 * width), nn.Linear(width, width)
        # the attention distributions (B, heads, queries, keys) pass through here only while a
        # hook reads them (attention transfer): the fused kernel never materialises them
        self.maps = nn.Identity()

    def split(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, W) -> (B, heads, T, W / heads)
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def forward(self, x, k, v, mask=None, causal=False) -> torch.Tensor:
        q = self.split(self.q(x))
        if self.maps._forward_hooks:
            y = self.maps(attention_weights(q, k, mask, causal)) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        return self.out(y.transpose(1, 2).flatten(2))


def attention_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) as scaled_dot_product_attention computes it: `mask` True where
    a key may be attended, `causal` the lower triangle from the top-left corner."""
    scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
    if causal:
        scores = scores.masked_fill(~torch.ones(scores.shape[-2:], dtype=torch.bool, device=q.device).tril(), -math.inf)
    if mask is not None:
        scores = scores.masked_fill(~mask, -math.inf)
    return scores.softmax(-1)


class Block(nn.Module):
    """Self-attention (causal in the decoder), cross-attention (decoder only), feed-forward."""

    def __init__(self, spec: TransformerSpec, cross: bool):
        super().__init__()
        w = spec.width
        self.norm1, self.attn = nn.LayerNorm(w), Attention(w, spec.heads)
        self.has_cross = cross
        if cross:
            self.norm_cross, self.cross_attn = nn.LayerNorm(w), Attention(w, spec.heads)
        self.norm2 = nn.LayerNorm(w)
        self.ffn = nn.Sequential(nn.Linear(w, w * spec.expansion), nn.GELU(), nn.Linear(w * spec.expansion, w))
        self.drop = nn.Dropout(spec.dropout)

    def forward(self, x, self_mask=None, memory=None, memory_mask=None, cache=None, causal=False):
        """`cache` (decoding): a dict holding this block's past keys/values and the memory's."""
        h = self.norm1(x)
        k, v = self.attn.keys_values(h)
        if cache is not None:
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        x = x + self.drop(self.attn(h, k, v, mask=self_mask, causal=causal))
        if self.has_cross:
            if cache is not None and "mk" in cache:  # one memory for every hypothesis of a beam
                mk, mv = (m.expand(x.shape[0], -1, -1, -1) for m in (cache["mk"], cache["mv"]))
            else:
                mk, mv = self.cross_attn.keys_values(memory)
                if cache is not None:
                    cache["mk"], cache["mv"] = mk, mv
            x = x + self.drop(self.cross_attn(self.norm_cross(x), mk, mv, mask=memory_mask))
        return x + self.drop(self.ffn(self.norm2(x)))


class TokenModel(nn.Module):
    """What the encoder-decoder and the decoder-only model share: the token embedding (also the
    output projection), position codes, dropout, the decoder stack and its final norm, and one
    cached decoding step."""

    def __init__(self, spec, encoder_layers: int, decoder_layers: int):
        super().__init__()
        self.spec = spec
        self.embed = nn.Embedding(spec.vocab, spec.width, padding_idx=PAD)
        # x sqrt(width) into the stream gives it unit scale; as the tied output projection, the
        # initial logits are then about unit scale too (N(0, 1) would make them sqrt(width))
        nn.init.normal_(self.embed.weight, std=spec.width ** -0.5)
        with torch.no_grad():
            self.embed.weight[PAD].zero_()
        # built in this order (embedding, encoder, decoder), so a seed gives the weights it gave
        # before the decoder-only model shared this class: the shipped teacher's recipe re-creates it
        self.encoder = nn.ModuleList(Block(spec, cross=False) for _ in range(encoder_layers))
        self.decoder = nn.ModuleList(Block(spec, cross=encoder_layers > 0) for _ in range(decoder_layers))
        self.dec_norm = nn.LayerNorm(spec.width)
        self.register_buffer("codes", positions(spec.max_len, spec.width))
        self.drop = nn.Dropout(spec.dropout)

    def embed_at(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        n = tokens.shape[1]
        if start + n > self.spec.max_len:
            raise ValueError(f"a sequence of {start + n} tokens is longer than the model's max_len {self.spec.max_len}")
        return self.drop(self.embed(tokens) * math.sqrt(self.spec.width) + self.codes[start: start + n])

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec_norm(x) @ self.embed.weight.t()

    def step(self, token: torch.Tensor, t: int, memory, memory_mask, caches: list[dict]) -> torch.Tensor:
        """Log-probabilities (B, vocab) of the token after `token` (B, 1) at position t."""
        x = self.embed_at(token, start=t)
        for block, cache in zip(self.decoder, caches):
            x = block(x, memory=memory, memory_mask=memory_mask, cache=cache)
        return self.project(x)[:, -1].log_softmax(-1)


class TextTransformer(TokenModel):
    # distillation's feature term, by default: the encoder's output (the source as the decoder
    # reads it) and the decoder's last hidden states, (B, T, width) whatever the depth: a student
    # of fewer layers pairs with its teacher there (layout: channels_last)
    feature_taps = ("enc_norm", "dec_norm")

    @property
    def attention_taps(self) -> tuple[str, ...]:
        """Attention transfer's default: the last decoder layer's cross-attention, the
        alignment of target to source words (a student of fewer layers pairs with it too)."""
        return (f"decoder.{len(self.decoder) - 1}.cross_attn.maps",)

    def __init__(self, spec: TransformerSpec):
        super().__init__(spec, spec.encoder_layers, spec.decoder_layers)
        self.enc_norm = nn.LayerNorm(spec.width)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(memory (B, S, W), its attention mask (B, 1, 1, S): True where a token may be attended)."""
        mask = (src != PAD)[:, None, None, :]
        x = self.embed_at(src)
        for block in self.encoder:
            x = block(x, self_mask=mask)
        return self.enc_norm(x), mask

    def teacher_forced(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, memory_mask = self.encode(src)
        x = self.embed_at(tgt_in)
        for block in self.decoder:
            x = block(x, memory=memory, memory_mask=memory_mask, causal=True)
        return self.project(x)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor | None = None):
        if tgt_in is None:  # what the model says for src: a fixed shape, so batches of it stack
            out = self.greedy(src, self.spec.max_len)
            return F.pad(out, (0, self.spec.max_len - out.shape[1]), value=PAD)
        logits = self.teacher_forced(src, tgt_in)
        return GeneratorOutput(logits.argmax(-1), logits, {"mask": tgt_in != PAD})

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, max_len: int) -> torch.Tensor:
        memory, memory_mask = self.encode(src)
        caches = [{} for _ in self.decoder]
        out = torch.full((src.shape[0], 1), BOS, dtype=torch.long, device=src.device)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for t in range(max_len - 1):
            nxt = self.step(out[:, -1:], t, memory, memory_mask, caches).argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            out = torch.cat([out, nxt[:, None]], 1)
            done |= nxt == EOS
            if bool(done.all()):
                break
        return out

    @torch.no_grad()
    def beam(self, src: torch.Tensor, beam: int, max_len: int) -> torch.Tensor:
        """Per source, the finished hypothesis (BOS ... EOS) of highest log-probability / length
        among those beam search keeps (an unfinished one if none finishes), as (B, <= max_len)."""
        results = []
        for b in range(src.shape[0]):
            memory, memory_mask = self.encode(src[b: b + 1])
            caches = [{} for _ in self.decoder]
            seqs, scores, finished = torch.full((1, 1), BOS, device=src.device), torch.zeros(1, device=src.device), []
            for t in range(max_len - 1):
                n = len(seqs)
                logp = self.step(seqs[:, -1:], t, memory.expand(n, -1, -1), memory_mask.expand(n, -1, -1, -1), caches)
                total = (scores[:, None] + logp).flatten()
                top = total.topk(min(beam, total.numel()))
                rows, toks = top.indices // logp.shape[1], top.indices % logp.shape[1]
                seqs, scores = torch.cat([seqs[rows], toks[:, None]], 1), top.values
                for cache in caches:  # each kept hypothesis continues from its parent's cache
                    for key in ("k", "v"):
                        cache[key] = cache[key][rows]
                ended = toks == EOS
                finished += [(float(s) / seqs.shape[1], q) for s, q in zip(scores[ended], seqs[ended])]
                if len(finished) >= beam or bool(ended.all()):
                    break
                seqs, scores = seqs[~ended], scores[~ended]
                for cache in caches:
                    cache["k"], cache["v"] = cache["k"][~ended], cache["v"][~ended]
            if not finished:
                finished = [(float(s) / seqs.shape[1], q) for s, q in zip(scores, seqs)]
            results.append(max(finished, key=lambda f: f[0])[1])
        width = max(len(r) for r in results)
        return torch.stack([F.pad(r, (0, width - len(r)), value=PAD) for r in results])

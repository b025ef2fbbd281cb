"""Pruning init of a Transformer student from its teacher (distill.student.init: prune, #19),
for the encoder-decoder (text-transformer) and the decoder-only model (text-decoder).

What a narrower, shallower student keeps:
  * the residual stream: one channel set for every layer (the embedding, each block's norms,
    the projections that read and write it), scored by the L1 norms of the embedding's columns
    and of every projection that writes to the stream;
  * attention: the heads whose output projection weighs most and, inside each, the dimensions
    whose query, key, value and output weights weigh most (query and key share them, as the dot
    product needs; the query is rescaled for the student's 1/sqrt(head size));
  * feed-forward: the hidden units whose input row x output column weigh most;
  * layers: the teacher's layers whose projections write most to the stream, in order.
The embedding is rescaled so that embedding x sqrt(width) and the tied output projection give
the teacher's values on the kept channels, and the position codes are the teacher's there.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from kdgan.distill.channels import strongest_blocks, top_channels
from kdgan.errors import UserError


def _writes(block: nn.Module) -> torch.Tensor:
    """How strongly a block writes each stream channel (L1 of the rows of its output projections)."""
    rows = block.attn.out.weight.abs().sum(1) + block.ffn[2].weight.abs().sum(1)
    if block.has_cross:
        rows = rows + block.cross_attn.out.weight.abs().sum(1)
    return rows


def _copy_norm(s: nn.LayerNorm, t: nn.LayerNorm, keep: torch.Tensor, scale: float = 1.0) -> None:
    s.weight.copy_(t.weight[keep] * scale)
    s.bias.copy_(t.bias[keep] * scale)


def _prune_attention(s, t, stream: torch.Tensor, heads: int) -> None:
    t_heads, t_dim = t.heads, t.q.weight.shape[0] // t.heads
    s_dim = s.q.weight.shape[0] // heads
    width = t.q.weight.shape[0]
    per_head = lambda w: w.view(t_heads, t_dim)  # noqa: E731
    k_rows, v_rows = t.kv.weight[:width], t.kv.weight[width:]
    dims = per_head(t.q.weight.abs().sum(1) + k_rows.abs().sum(1) + v_rows.abs().sum(1)
                    + t.out.weight.abs().sum(0))
    kept_heads = top_channels(per_head(t.out.weight.abs().sum(0)).sum(1), heads)
    inner = torch.cat([h * t_dim + top_channels(dims[h], s_dim) for h in kept_heads.tolist()])
    rescale = math.sqrt(s_dim / t_dim)  # scaled_dot_product_attention divides by sqrt(head size)
    s.q.weight.copy_(t.q.weight[inner][:, stream] * rescale)
    s.q.bias.copy_(t.q.bias[inner] * rescale)
    s.kv.weight.copy_(torch.cat([t.kv.weight[inner], t.kv.weight[width + inner]])[:, stream])
    s.kv.bias.copy_(torch.cat([t.kv.bias[inner], t.kv.bias[width + inner]]))
    s.out.weight.copy_(t.out.weight[stream][:, inner])
    s.out.bias.copy_(t.out.bias[stream])


def _prune_block(s, t, stream: torch.Tensor, heads: int) -> None:
    _copy_norm(s.norm1, t.norm1, stream)
    _prune_attention(s.attn, t.attn, stream, heads)
    if t.has_cross:
        _copy_norm(s.norm_cross, t.norm_cross, stream)
        _prune_attention(s.cross_attn, t.cross_attn, stream, heads)
    _copy_norm(s.norm2, t.norm2, stream)
    t_in, t_out = t.ffn[0], t.ffn[2]
    hidden = top_channels(t_in.weight.abs().sum(1) * t_out.weight.abs().sum(0), s.ffn[0].weight.shape[0])
    s.ffn[0].weight.copy_(t_in.weight[hidden][:, stream])
    s.ffn[0].bias.copy_(t_in.bias[hidden])
    s.ffn[2].weight.copy_(t_out.weight[stream][:, hidden])
    s.ffn[2].bias.copy_(t_out.bias[stream])


@torch.no_grad()
def prune_transformer(student: nn.Module, teacher: nn.Module, importance: str = "l1") -> list[torch.Tensor]:
    """A text-transformer or text-decoder student from a teacher of its family."""
    s, t = student.spec, teacher.spec
    s_head, t_head = s.width // s.heads, t.width // t.heads
    smaller = (type(student) is type(teacher) and s.width <= t.width and s.heads <= t.heads and s_head <= t_head
               and len(student.encoder) <= len(teacher.encoder) and len(student.decoder) <= len(teacher.decoder)
               and s.width * s.expansion <= t.width * t.expansion)
    if not smaller or (s.vocab, s.max_len) != (t.vocab, t.max_len):
        raise UserError(f"distill.student.init: prune needs a {t.arch} student no wider, deeper or with more or "
                        "larger heads than the teacher, with its vocabulary and max_len; use init: scratch")
    encoder = strongest_blocks(teacher.encoder, len(student.encoder), lambda b: _writes(b).sum()) if len(student.encoder) else []
    decoder = strongest_blocks(teacher.decoder, len(student.decoder), lambda b: _writes(b).sum())
    score = teacher.embed.weight.abs().sum(0) + sum(_writes(b) for b in [*encoder, *decoder])
    stream = top_channels(score, s.width)
    # embed x sqrt(width) enters the stream and dec_norm(x) @ embed.T leaves it: rescale both ends
    ratio = math.sqrt(t.width / s.width)
    student.embed.weight.copy_(teacher.embed.weight[:, stream] * ratio)
    student.codes.copy_(teacher.codes[:, stream])
    for s_block, t_block in zip([*student.encoder, *student.decoder], [*encoder, *decoder]):
        _prune_block(s_block, t_block, stream, s.heads)
    if hasattr(teacher, "enc_norm"):
        _copy_norm(student.enc_norm, teacher.enc_norm, stream)
    _copy_norm(student.dec_norm, teacher.dec_norm, stream, 1 / ratio)
    return [stream]

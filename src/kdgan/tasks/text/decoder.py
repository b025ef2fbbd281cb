"""A decoder-only Transformer language model for unconditional text (task.name: lm, #19): the
encoder-decoder's decoder stack without cross-attention (kdgan.tasks.text.transformer).

    model(z)                  -> sentences (B, max_len) sampled ancestrally with the cache, BOS
                                 first, padded after EOS: z (B, max_len) holds one uniform number
                                 per position, which picks that position's token by inverting the
                                 cumulative distribution at temperature spec.temperature, so the
                                 same z gives the same sentence (a latent code, as for images)
    model(z, tgt_in)          -> GeneratorOutput under teacher forcing, as the encoder-decoder's
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from kdgan.losses.terms import GeneratorOutput
from kdgan.tasks.text.tokenizer import BOS, EOS, PAD
from kdgan.tasks.text.transformer import TokenModel


class DecoderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: Literal["text-decoder"] = "text-decoder"
    width: int = Field(256, ge=8)
    heads: int = Field(4, ge=1)
    layers: int = Field(3, ge=1)
    expansion: int = Field(4, ge=1)
    vocab: int = Field(8000, ge=8)
    max_len: int = Field(64, ge=4)
    dropout: float = Field(0.1, ge=0, lt=1)
    temperature: float = Field(1.0, gt=0)  # sampling: < 1 sharper and less diverse, > 1 flatter
    tokenizer: str = Field("", repr=False)

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")
        return self


class TextDecoder(TokenModel):
    feature_taps = ("dec_norm",)  # the last hidden states, whatever the depth

    @property
    def attention_taps(self) -> tuple[str, ...]:
        """Attention transfer's default: the last layer's (causal) self-attention maps."""
        return (f"decoder.{len(self.decoder) - 1}.attn.maps",)

    def __init__(self, spec: DecoderSpec):
        super().__init__(spec, 0, spec.layers)

    def teacher_forced(self, tgt_in: torch.Tensor) -> torch.Tensor:
        x = self.embed_at(tgt_in)
        for block in self.decoder:
            x = block(x, causal=True)
        return self.project(x)

    def forward(self, z: torch.Tensor, tgt_in: torch.Tensor | None = None):
        if tgt_in is None:
            return self.sample(z)
        logits = self.teacher_forced(tgt_in)
        return GeneratorOutput(logits.argmax(-1), logits, {"mask": tgt_in != PAD})

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        n, length = z.shape[0], self.spec.max_len
        caches = [{} for _ in self.decoder]
        out = torch.full((n, length), PAD, dtype=torch.long, device=z.device)
        out[:, 0] = BOS
        done = torch.zeros(n, dtype=torch.bool, device=z.device)
        for t in range(length - 1):
            nxt = inverse_cdf(self.step(out[:, t: t + 1], t, None, None, caches), z[:, t: t + 1], self.spec.temperature)
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            out[:, t + 1] = nxt
            done |= nxt == EOS
            if bool(done.all()):
                break
        return out


def inverse_cdf(log_probs: torch.Tensor, u: torch.Tensor, temperature: float) -> torch.Tensor:
    """The token (B,) whose cumulative probability at `temperature` first reaches u (B, 1)."""
    probs = (log_probs / temperature).softmax(-1)
    return (probs.cumsum(-1) < u).sum(-1).clamp_(max=probs.shape[-1] - 1)

"""What lets a GAN train a token generator (#19): the discriminator reads a sequence as a
distribution over the vocabulary at each position (one-hot for real text), multiplying it
with an embedding matrix, so a relaxed sample of the generator's logits (Gumbel-softmax,
RelGAN) reaches the discriminator with a gradient back to those logits.

    relax(logits, tau, noise)  -> (B, T, V) Gumbel-softmax sample; hard=True: one-hot forward,
                                  soft gradient (straight-through)
    TokenDiscriminator(x, src) -> per-position logits and feature maps; x is (B, T, V) or ids
                                  (B, T); src (B, S), optional: the source sentence's ids, whose
                                  mean embedding is added at every position (a conditional D
                                  judges whether x is a translation *of src*, not just text)
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from kdgan.losses import DiscriminatorOutput


def relax(logits: torch.Tensor, tau: float, noise: torch.Generator, hard: bool = False) -> torch.Tensor:
    """softmax((logits + Gumbel noise) / tau). The noise is drawn on the CPU from `noise` (the
    loop's checkpointed generator), so a resumed run draws what an uninterrupted one would."""
    uniform = torch.rand(logits.shape, generator=noise).clamp_(1e-10, 1 - 1e-7).to(logits.device)
    soft = ((logits - torch.log(-torch.log(uniform))) / tau).softmax(-1)
    if not hard:
        return soft
    one_hot = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
    return one_hot - soft.detach() + soft


class TokenDiscriminatorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: Literal["token-cnn"] = "token-cnn"
    width: int = Field(128, ge=4)
    vocab: int = Field(8000, ge=8)


class TokenDiscriminator(nn.Module):
    def __init__(self, spec: TokenDiscriminatorSpec):
        super().__init__()
        self.spec = spec
        w = spec.width
        self.embed = nn.Linear(spec.vocab, w, bias=False)  # embedding x distribution
        self.source = nn.Embedding(spec.vocab, w, padding_idx=0)
        self.convs = nn.ModuleList([nn.Conv1d(w, w, 3, padding=1), nn.Conv1d(w, w, 5, padding=2)])
        self.post = nn.Conv1d(w, 1, 1)

    def forward(self, x: torch.Tensor, src: torch.Tensor | None = None) -> DiscriminatorOutput:
        if not x.is_floating_point():  # token ids
            x = F.one_hot(x, self.spec.vocab).float()
        h, features = self.embed(x), []
        if src is not None:
            tokens = (src != 0).sum(1, keepdim=True).clamp(min=1)
            h = h + (self.source(src).sum(1) / tokens)[:, None]
        h = h.transpose(1, 2)
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
            features.append(h)
        return DiscriminatorOutput([self.post(h).flatten(1)], features)

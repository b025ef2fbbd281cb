"""What every token-generating task shares (#19): the settings of token training, the task's
own loss terms, what the discriminator sees of a token generator's output, and batching.

    TokenTraining    the `task` settings of maximum likelihood and of the adversarial phase
    token_terms      the generator's task terms: `nll` (token cross-entropy) and, with
                     adversarial: reinforce, `g_reinforce` (SeqGAN's score-function gradient)
    token_view       the discriminator's view of a GeneratorOutput: a Gumbel-softmax relaxation
                     of its logits (RelGAN) or tokens drawn from them, padding shown as padding
    decoder_input    BOS w1 .. wn from BOS w1 .. wn EOS (padded): what a decoder reads
    one_line         a generated text as one line of a text or TSV file
    token_nll        a generator's mean negative log-likelihood per target token
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from kdgan.losses.terms import LossTerm, StepContext, generator_output
from kdgan.schema import Strict
from kdgan.tasks.text.discriminator import relax
from kdgan.tasks.text.tokenizer import EOS, PAD


class TokenTraining(Strict):
    vocab_size: int = Field(8000, ge=300)  # the tokenizer's (byte-level BPE: at least its 256 bytes + specials)
    nll_weight: float = Field(1.0, ge=0)  # token cross-entropy to the training targets
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    # how the discriminator's judgement reaches the generator's discrete tokens: gumbel (a
    # Gumbel-softmax relaxation of the logits, RelGAN) or reinforce (sampled tokens scored by the
    # discriminator, the score-function gradient of SeqGAN: the task's g_reinforce term)
    adversarial: Literal["gumbel", "reinforce"] = "gumbel"
    gumbel_tau: float = Field(1.0, gt=0)  # temperature of the relaxation the discriminator sees
    gumbel_hard: bool = False  # straight-through: one-hot forward, soft gradient
    reinforce_weight: float = Field(1.0, ge=0)  # adversarial: reinforce: the weight of g_reinforce


class TokenNLL(LossTerm):
    """Cross-entropy of the generator's logits to the target tokens, padding left out."""

    name = "nll"

    def __init__(self, weight: float = 1.0, label_smoothing: float = 0.0):
        super().__init__(weight)
        self.label_smoothing = label_smoothing

    def compute(self, ctx: StepContext) -> torch.Tensor:
        return F.cross_entropy(ctx.g_logits.flatten(0, 1).float(), ctx.batch.real.flatten(), ignore_index=PAD,
                               label_smoothing=self.label_smoothing)


class ScoreFunction(LossTerm):
    """SeqGAN's score-function (REINFORCE) gradient, position by position: each position's
    sampled token (the one-hot the discriminator judged, ctx.view) is rewarded with the
    discriminator's probability that it is real there, less the batch's mean reward (a baseline
    that lowers the variance), and the generator raises the log-probability of the tokens whose
    reward is above it. No gradient flows through the discriminator: it needs none."""

    name, adversarial = "g_reinforce", True

    def compute(self, ctx: StepContext) -> torch.Tensor:
        from kdgan.losses.adversarial import logits_of

        mask = ctx.g_extras["mask"]
        reward = torch.stack([torch.sigmoid(h.detach().float()) for h in logits_of(ctx.fake_logits)]).mean(0)
        advantage = reward - reward[mask].mean()
        sampled = ctx.view.argmax(-1)
        log_p = ctx.g_logits.float().log_softmax(-1).gather(-1, sampled[..., None])[..., 0]
        return -(advantage * log_p)[mask].mean()


def pad_batch(rows: list[list[int]], width: int | None = None) -> torch.Tensor:
    width = width or max(len(r) for r in rows)
    return torch.tensor([r + [PAD] * (width - len(r)) for r in rows], dtype=torch.long)


def token_terms(settings: TokenTraining) -> list[LossTerm]:
    terms = [TokenNLL(settings.nll_weight, settings.label_smoothing)] if settings.nll_weight > 0 else []
    if settings.adversarial == "reinforce":
        terms.append(ScoreFunction(settings.reinforce_weight))
    return terms


def token_view(output, settings: TokenTraining, noise: torch.Generator) -> torch.Tensor:
    """A teacher-forced output's distributions as the discriminator sees them (B, T, vocab); a
    decoded output (no logits) as its ids."""
    if output.logits is None:
        return output.sample
    logits = output.logits.float()
    if settings.adversarial == "reinforce":  # tokens drawn from the generator's distribution: no gradient
        uniform = torch.rand(logits.shape[:-1], generator=noise).to(logits.device)[..., None]
        drawn = (logits.softmax(-1).detach().cumsum(-1) < uniform).sum(-1).clamp_(max=logits.shape[-1] - 1)
        view = F.one_hot(drawn, logits.shape[-1]).to(logits.dtype)
    else:
        view = relax(logits, settings.gumbel_tau, noise, hard=settings.gumbel_hard)
    pad = F.one_hot(torch.tensor(PAD, device=view.device), view.shape[-1]).to(view.dtype)
    return torch.where(output.extras["mask"][..., None], view, pad)


def decoder_input(tgt: torch.Tensor) -> torch.Tensor:
    """The decoder reads BOS w1 .. wn and predicts w1 .. wn EOS: each row without its last
    position, and its EOS (read by no one) as padding."""
    return tgt[:, :-1].masked_fill(tgt[:, :-1] == EOS, PAD)


def one_line(text: str) -> str:
    """`text` with control characters, tabs and line or paragraph separators as spaces: an
    undertrained model's byte tokens can decode to any of them, and each output must stay one
    line (one row of a samples TSV, one line of a translated file)."""
    return "".join(" " if unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp") else c
                   for c in text)


def token_nll(generator, batches) -> float:
    """Mean negative log-likelihood per target token (EOS included) under teacher forcing, over
    `batches` of (the generator's other inputs, targets BOS ... EOS padded)."""
    total, count = 0.0, 0
    with torch.no_grad():
        for inputs, tgt in batches:
            logits = generator_output(generator(*inputs, decoder_input(tgt))).logits.float()
            total += float(F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=PAD,
                                           reduction="sum"))
            count += int((tgt[:, 1:] != PAD).sum())
    return total / max(1, count)


def write_table(path: Path, headers: list[str], rows: list[list[str]]) -> Path:
    """PATH.tsv: the headers, then a row per input, each text on one line (a run's samples)."""
    out = path.with_suffix(".tsv")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join("\t".join(one_line(c) for c in row) for row in [headers, *rows]) + "\n", encoding="utf-8")
    return out

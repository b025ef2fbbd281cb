"""Adversarial training of a token generator (#19): the Gumbel-softmax relaxation carries the
discriminator's gradient back to the generator's logits, its hard form is one-hot, its draws
come from the given generator, and ids and one-hots are judged alike."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdgan.losses.adversarial import generator_loss
from kdgan.tasks.text.discriminator import TokenDiscriminator, TokenDiscriminatorSpec, relax


def test_the_relaxation_passes_the_discriminators_gradient_to_the_logits():
    torch.manual_seed(0)
    D = TokenDiscriminator(TokenDiscriminatorSpec(width=8, vocab=12))
    logits = torch.randn(2, 5, 12, requires_grad=True)
    for hard in (False, True):
        logits.grad = None
        generator_loss("nonsaturating", D(relax(logits, 0.5, torch.Generator().manual_seed(1), hard))).backward()
        assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_hard_samples_are_one_hot_and_draws_follow_the_generator():
    logits = torch.randn(3, 4, 10)
    hard = relax(logits, 1.0, torch.Generator().manual_seed(7), hard=True)
    assert torch.equal(hard.sum(-1), torch.ones(3, 4)) and set(hard.unique().tolist()) == {0.0, 1.0}
    a, b = (relax(logits, 1.0, torch.Generator().manual_seed(7)) for _ in range(2))
    assert torch.equal(a, b) and torch.allclose(a.sum(-1), torch.ones(3, 4))
    # a very low temperature picks the largest perturbed logit, i.e. the hard sample
    assert torch.equal(relax(logits, 1e-4, torch.Generator().manual_seed(7)).argmax(-1), hard.argmax(-1))


def test_ids_and_their_one_hots_are_judged_alike():
    torch.manual_seed(0)
    D = TokenDiscriminator(TokenDiscriminatorSpec(width=8, vocab=12))
    ids = torch.randint(12, (2, 6))
    assert torch.allclose(D(ids).logits[0], D(F.one_hot(ids, 12).float()).logits[0])

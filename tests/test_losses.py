"""Every adversarial loss and penalty against a computation by hand on small tensors."""

import math

import pytest
import torch

from kdgan.losses import discriminator_loss, generator_loss, gradient_penalty, r1_penalty

R = torch.tensor([2.0, -1.0, 0.5])  # D(x_real)
F_ = torch.tensor([-3.0, 0.0, 1.5])  # D(G(z))


def sig(x):
    return 1 / (1 + math.exp(-x))


def mean(xs):
    return sum(xs) / len(xs)


HAND = {
    # name: (D loss on real, D loss on fake, G loss), from the formulas in adversarial.py
    "bce": (mean([-math.log(sig(r)) for r in R.tolist()]),
            mean([-math.log(1 - sig(f)) for f in F_.tolist()]),
            mean([-math.log(sig(f)) for f in F_.tolist()])),
    "nonsaturating": (mean([math.log1p(math.exp(-r)) for r in R.tolist()]),
                      mean([math.log1p(math.exp(f)) for f in F_.tolist()]),
                      mean([math.log1p(math.exp(-f)) for f in F_.tolist()])),
    "hinge": (mean([max(0, 1 - r) for r in R.tolist()]),
              mean([max(0, 1 + f) for f in F_.tolist()]),
              -mean(F_.tolist())),
    "lsgan": (mean([0.5 * (r - 1) ** 2 for r in R.tolist()]),
              mean([0.5 * f ** 2 for f in F_.tolist()]),
              mean([0.5 * (f - 1) ** 2 for f in F_.tolist()])),
    "wgan-gp": (-mean(R.tolist()), mean(F_.tolist()), -mean(F_.tolist())),
}


@pytest.mark.parametrize("name", list(HAND))
def test_adversarial_loss_by_hand(name):
    on_real, on_fake = discriminator_loss(name, R, F_)
    want_real, want_fake, want_g = HAND[name]
    assert on_real.item() == pytest.approx(want_real, rel=1e-6)
    assert on_fake.item() == pytest.approx(want_fake, rel=1e-6)
    assert generator_loss(name, F_).item() == pytest.approx(want_g, rel=1e-6)


def test_bce_is_the_seeds_bceloss_on_sigmoid():
    seed_criterion = torch.nn.BCELoss()
    s = torch.sigmoid(F_)
    assert generator_loss("bce", F_) == seed_criterion(s, torch.ones_like(s))


def test_bce_saturates_where_nonsaturating_does_not():
    far = torch.tensor([-200.0], requires_grad=True)
    generator_loss("bce", far).backward()
    assert far.grad.abs().item() == 0  # sigmoid rounded to 0: BCELoss's clamp kills the gradient
    far.grad = None
    generator_loss("nonsaturating", far).backward()
    assert far.grad.item() == pytest.approx(-1.0)


class Linear:
    """D(x) = <w, x> + label offset: its input gradient is w for every sample."""

    def __init__(self, w):
        self.w = w

    def __call__(self, x, y=None):
        out = (x * self.w).flatten(1).sum(1)
        return out + (0 if y is None else y.float())


def test_r1_penalty_by_hand():
    w = torch.tensor([[[[3.0, 4.0]]]])  # ||w||^2 = 25
    real = torch.randn(5, 1, 1, 2)
    assert r1_penalty(Linear(w), real).item() == pytest.approx(25.0)
    assert r1_penalty(Linear(w), real, (torch.arange(5),)).item() == pytest.approx(25.0)


def test_gradient_penalty_by_hand():
    w = torch.tensor([[[[3.0, 4.0]]]])  # ||w|| = 5 -> (5 - 1)^2 = 16 wherever it is evaluated
    real, fake = torch.randn(4, 1, 1, 2), torch.randn(4, 1, 1, 2)
    gp = gradient_penalty(Linear(w), real, fake, generator=torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx(16.0, rel=1e-5)


def test_gradient_penalty_is_taken_between_real_and_fake():
    """D(x) = ||x||^2 / 2 has gradient x, so the penalty reads ||x_hat|| at the mixed point:
    a linear D (constant gradient) cannot tell where it was evaluated, this one can. The
    mixing weights are one U(0, 1) per sample from the given generator."""

    def quadratic(x):
        return 0.5 * x.pow(2).flatten(1).sum(1)

    real, fake = torch.randn(6, 1, 2, 2), 3 * torch.randn(6, 1, 2, 2)
    gp = gradient_penalty(quadratic, real, fake, generator=torch.Generator().manual_seed(7))
    alpha = torch.rand(6, generator=torch.Generator().manual_seed(7))
    norms = [float((a * r + (1 - a) * f).norm()) for a, r, f in zip(alpha, real, fake)]
    assert gp.item() == pytest.approx(sum((n - 1) ** 2 for n in norms) / 6, rel=1e-5)
    at_real = sum((float(r.norm()) - 1) ** 2 for r in real) / 6
    assert abs(gp.item() - at_real) > 0.1  # not the penalty at the real samples


def test_penalties_are_differentiable_in_d_weights():
    w = torch.tensor([[[[0.6, 0.8]]]], requires_grad=True)
    gp = gradient_penalty(Linear(w), torch.randn(3, 1, 1, 2), torch.randn(3, 1, 1, 2))
    (grad,) = torch.autograd.grad(gp, w)
    assert torch.allclose(grad, torch.zeros_like(grad), atol=1e-5)  # ||w|| = 1 is the minimum

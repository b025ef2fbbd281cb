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

    g = torch.Generator().manual_seed(3)  # not the global generator: other tests move it
    real, fake = torch.randn(6, 1, 2, 2, generator=g), 3 * torch.randn(6, 1, 2, 2, generator=g)
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


# -- discriminators with several heads (HiFi-GAN's multi-period / multi-scale) -------------


def test_adversarial_losses_sum_over_heads():
    from kdgan.losses import DiscriminatorOutput

    r = [torch.tensor([0.5, 2.0]), torch.tensor([[1.0, -1.0], [0.0, 3.0]])]  # heads of any shape
    f = [torch.tensor([-1.0, 0.5]), torch.tensor([[0.2, 0.0], [-2.0, 1.0]])]
    on_real, on_fake = discriminator_loss("lsgan", DiscriminatorOutput(r), DiscriminatorOutput(f))
    assert on_real.item() == pytest.approx(sum(0.5 * ((x - 1) ** 2).mean().item() for x in r))
    assert on_fake.item() == pytest.approx(sum(0.5 * (x**2).mean().item() for x in f))
    assert generator_loss("hinge", DiscriminatorOutput(f)).item() == pytest.approx(-sum(x.mean().item() for x in f))
    one = discriminator_loss("lsgan", r[0], f[0])  # a plain tensor is one head
    assert one[0].item() == pytest.approx(0.5 * ((r[0] - 1) ** 2).mean().item())


def test_discriminator_kl_averages_heads_and_both_halves():
    from kdgan.losses import DiscriminatorOutput
    from kdgan.losses.distill import DiscriminatorKL, bernoulli_kl
    from kdgan.losses.terms import StepContext

    g = torch.Generator().manual_seed(0)
    heads = lambda: DiscriminatorOutput([torch.randn(4, generator=g), torch.randn(4, 3, generator=g)])  # noqa: E731
    s_real, s_fake, t_real, t_fake = heads(), heads(), heads(), heads()
    ctx = StepContext("d", None, None, s_fake, None, None, s_real,
                      extra={"teacher_real_logits": t_real, "teacher_fake_logits": t_fake})
    want = sum(bernoulli_kl(t, s, 2.0).item() for ts, ss in ((t_real, s_real), (t_fake, s_fake))
               for t, s in zip(ts.logits, ss.logits)) / 4
    assert DiscriminatorKL(temperature=2.0)(ctx).item() == pytest.approx(want, rel=1e-6)


def test_teacher_feature_matching_averages_l1_over_the_teacher_discriminators_maps():
    from kdgan.errors import UserError
    from kdgan.losses import DiscriminatorOutput
    from kdgan.losses.distill import TeacherFeatureMatching
    from kdgan.losses.terms import StepContext

    on_student = DiscriminatorOutput([torch.zeros(2)], [torch.tensor([[1.0, 2.0]]), torch.tensor([[[0.0, 4.0]]])])
    on_teacher = DiscriminatorOutput([torch.zeros(2)], [torch.tensor([[1.0, 0.0]]), torch.tensor([[[1.0, 1.0]]])])
    ctx = StepContext("g", None, None, None, None, None,
                      extra={"teacher_d_on_fake": on_student, "teacher_d_on_teacher": on_teacher})
    # map 1: (|1-1| + |2-0|) / 2 = 1; map 2: (|0-1| + |4-1|) / 2 = 2; their mean 1.5
    assert TeacherFeatureMatching()(ctx).item() == pytest.approx(1.5)
    ctx.extra = {"teacher_d_on_fake": torch.zeros(2), "teacher_d_on_teacher": torch.zeros(2)}
    with pytest.raises(UserError, match="teacher_fm needs a teacher discriminator that returns its feature maps"):
        TeacherFeatureMatching()(ctx)


def test_penalties_take_every_head_and_any_sample_shape():
    """1-D samples (B, 1, T) and a D with two heads, D_1(x) = ||x||^2 / 2 and D_2(x) = 3 sum(x):
    the gradient of their sum is x + 3, so R1 reads ||x + 3||^2 and the gradient penalty
    ||x_hat + 3|| at one mixing weight per sample."""
    from kdgan.losses import DiscriminatorOutput

    def two_heads(x):
        return DiscriminatorOutput([0.5 * x.pow(2).flatten(1).sum(1), 3 * x.flatten(1).sum(1)])

    real, fake = torch.randn(5, 1, 7), torch.randn(5, 1, 7)
    assert r1_penalty(two_heads, real).item() == pytest.approx(float((real + 3).pow(2).flatten(1).sum(1).mean()),
                                                               rel=1e-5)
    gp = gradient_penalty(two_heads, real, fake, generator=torch.Generator().manual_seed(3))
    alpha = torch.rand(5, generator=torch.Generator().manual_seed(3))
    norms = [float((a * r + (1 - a) * f + 3).norm()) for a, r, f in zip(alpha, real, fake)]
    assert gp.item() == pytest.approx(sum((n - 1) ** 2 for n in norms) / 5, rel=1e-5)


def test_feature_matching_is_l1_between_real_and_fake_feature_maps():
    from types import SimpleNamespace

    from kdgan.losses import DiscriminatorOutput
    from kdgan.losses.terms import FeatureMatching, StepContext

    real = torch.randn(3, 1, 8)

    def d(x):  # two feature maps: x itself and x doubled
        return DiscriminatorOutput([x.sum((1, 2))], [x, 2 * x])

    fake = torch.randn(3, 1, 8)
    ctx = StepContext("g", SimpleNamespace(real=real, d_inputs=()), fake, d(fake), d, None)
    want = ((fake - real).abs().mean() + (2 * fake - 2 * real).abs().mean()) / 2
    assert FeatureMatching()(ctx).item() == pytest.approx(want.item(), rel=1e-6)

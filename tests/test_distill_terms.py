"""Distillation loss terms against hand computations on small tensors."""

import math

import pytest
import torch

from kdgan.errors import UserError
import torch.nn.functional as F
from torch import nn

from kdgan.data.sampling import StepBatch
from kdgan.distill.features import (
    DiscriminatorPerceptual,
    FeatureDistill,
    attention_loss,
    kernel_alignment_loss,
    relation_loss,
)
from kdgan.losses.distill import DiscriminatorKL, OutputKL, OutputL1, OutputL2, TeacherCritic, bernoulli_kl
from kdgan.losses.terms import Objective, StepContext


def ctx(fake, phase="g", **extra):
    batch = StepBatch(torch.zeros(1), (), ())
    return StepContext(phase, batch, fake, extra.pop("fake_logits", torch.zeros(1)), None, None,
                       extra.pop("real_logits", None), extra)


S = torch.tensor([[[[0.5, -1.0], [0.0, 1.0]]]])  # (1, 1, 2, 2)
T = torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]]])


def test_l1_l2_by_hand():
    assert OutputL1()(ctx(S, teacher_out=T)).item() == pytest.approx((0.5 + 0 + 0.5 + 1) / 4)
    assert OutputL2()(ctx(S, teacher_out=T)).item() == pytest.approx((0.25 + 0 + 0.25 + 1) / 4)


def kl_by_hand(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def softmax(xs):
    e = [math.exp(x) for x in xs]
    return [v / sum(e) for v in e]


def test_kl_over_pixels_by_hand():
    s, t = S.flatten().tolist(), T.flatten().tolist()
    want = kl_by_hand(softmax(t), softmax(s))  # one channel: one distribution over 4 pixels
    assert OutputKL(dim="pixels")(ctx(S, teacher_out=T)).item() == pytest.approx(want, rel=1e-5)
    tau = 2.0
    want_tau = tau**2 * kl_by_hand(softmax([x / tau for x in t]), softmax([x / tau for x in s]))
    got = OutputKL(dim="pixels", temperature=tau)(ctx(S, teacher_out=T)).item()
    assert got == pytest.approx(want_tau, rel=1e-5)
    elementwise = OutputKL(dim="pixels", reduction="elementwise")(ctx(S, teacher_out=T)).item()
    assert elementwise == pytest.approx(want / 4, rel=1e-5)


def test_kl_over_logits_is_the_seeds_formula_on_teacher_logits():
    """dim: logits reads the generators' own distributions (GeneratorOutput.logits), here
    (B, positions, vocabulary), not their samples."""
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(2, 3, 7, generator=g), torch.randn(2, 3, 7, generator=g)
    c = ctx(torch.zeros(2, 3), teacher_logits=t)
    c.g_logits = s
    by_hand = sum(kl_by_hand(softmax((t[b, p] / 2).tolist()), softmax((s[b, p] / 2).tolist()))
                  for b in range(2) for p in range(3)) / 6 * 4  # mean KL per position, times tau^2
    assert OutputKL(dim="logits", temperature=2.0)(c).item() == pytest.approx(by_hand, rel=1e-5)
    seed = nn.KLDivLoss()(F.log_softmax(s, dim=-1), F.softmax(t, dim=-1))
    assert torch.allclose(OutputKL(dim="logits", reduction="elementwise")(c), seed, rtol=1e-6)
    # a token generator marks its padding: only the positions that hold a token count
    c.g_extras = {"mask": torch.tensor([[True, True, False], [True, False, False]])}
    kept = [(0, 0), (0, 1), (1, 0)]
    by_hand = sum(kl_by_hand(softmax((t[b, p] / 2).tolist()), softmax((s[b, p] / 2).tolist())) for b, p in kept) / 3 * 4
    assert OutputKL(dim="logits", temperature=2.0)(c).item() == pytest.approx(by_hand, rel=1e-5)
    c.g_logits = None
    with pytest.raises(UserError, match="dim: logits needs generators that return logits"):
        OutputKL(dim="logits")(c)


def test_kl_over_channels_is_the_seeds_formula():
    torch.manual_seed(0)
    s, t = torch.randn(4, 3, 5, 5), torch.randn(4, 3, 5, 5)
    seed = nn.KLDivLoss()(F.log_softmax(s, dim=1), F.softmax(t, dim=1))
    ours = OutputKL(dim="channels", reduction="elementwise")(ctx(s, teacher_out=t))
    assert torch.allclose(ours, seed, rtol=1e-6)
    # 'distribution' is the true per-pixel KL: the seed's value times the channel count
    per_pixel = OutputKL(dim="channels")(ctx(s, teacher_out=t))
    assert torch.allclose(per_pixel, seed * 3, rtol=1e-5)


def test_kl_over_channels_is_zero_for_grey_images():
    s, t = torch.randn(4, 1, 5, 5), torch.randn(4, 1, 5, 5)
    assert OutputKL(dim="channels")(ctx(s, teacher_out=t)).item() == 0


def test_discriminator_kl_by_hand():
    def bern_kl(lt, ls):
        pt, ps = 1 / (1 + math.exp(-lt)), 1 / (1 + math.exp(-ls))
        return pt * math.log(pt / ps) + (1 - pt) * math.log((1 - pt) / (1 - ps))

    t_real, s_real = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 0.5])
    t_fake, s_fake = torch.tensor([-3.0, 0.0]), torch.tensor([1.0, -2.0])
    want = 0.5 * (
        (bern_kl(2, 0.5) + bern_kl(-1, 0.5)) / 2 + (bern_kl(-3, 1) + bern_kl(0, -2)) / 2
    )
    c = ctx(None, "d", real_logits=s_real, fake_logits=s_fake,
            teacher_real_logits=t_real, teacher_fake_logits=t_fake)
    assert DiscriminatorKL()(c).item() == pytest.approx(want, rel=1e-5)
    assert bernoulli_kl(torch.tensor([40.0]), torch.tensor([40.0]), 1.0).item() == pytest.approx(0, abs=1e-7)


def test_teacher_critic_is_the_adversarial_loss_on_teacher_logits():
    logits = torch.tensor([1.0, -2.0])
    c = ctx(None, teacher_d_on_fake=logits)
    assert TeacherCritic("hinge")(c).item() == pytest.approx(0.5)
    assert TeacherCritic("nonsaturating")(c).item() == pytest.approx(
        (math.log1p(math.exp(-1)) + math.log1p(math.exp(2))) / 2)


def test_kernel_alignment_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert kernel_alignment_loss(a, a).item() == pytest.approx(0, abs=1e-6)
    assert kernel_alignment_loss(a, 3 * a).item() == pytest.approx(0, abs=1e-6)  # scale-free
    b = torch.tensor([[1.0], [-1.0], [0.0]])
    ac, bc = a - a.mean(0), b - b.mean(0)
    ka, kb = ac @ ac.T, bc @ bc.T
    want = 1 - (ka * kb).sum() / (ka.norm() * kb.norm())
    assert kernel_alignment_loss(a, b).item() == pytest.approx(want.item(), rel=1e-5)


def test_relation_loss_by_hand():
    fs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    ft = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    c = 1 / math.sqrt(2)
    sim_s = [[0, c], [0, c], [c, c]]  # each row: similarities to the other two samples
    sim_t = [[1, 0], [1, 0], [0, 0]]
    want = sum(kl_by_hand(softmax(t), softmax(s)) for s, t in zip(sim_s, sim_t)) / 3
    assert relation_loss(fs, ft, 1.0).item() == pytest.approx(want, rel=1e-5)


def test_attention_transfer_by_hand():
    # one sample, two queries over three keys; the student has 2 heads, the teacher 1
    student = torch.tensor([[[[0.5, 0.5, 0.0], [0.2, 0.2, 0.6]], [[0.1, 0.9, 0.0], [0.2, 0.4, 0.4]]]])
    teacher = torch.tensor([[[[0.0, 1.0, 0.0], [0.25, 0.25, 0.5]]]])
    mean_s = [[0.3, 0.7, 0.0], [0.2, 0.3, 0.5]]  # the heads averaged by hand
    kl = lambda p, q: sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)  # noqa: E731 (0 log 0 = 0)
    want = (kl([0.0, 1.0, 0.0], mean_s[0]) + kl([0.25, 0.25, 0.5], mean_s[1])) / 2
    assert attention_loss(student, teacher).item() == pytest.approx(want, rel=1e-5)
    assert attention_loss(teacher, teacher).item() == pytest.approx(0, abs=1e-7)
    with pytest.raises(ValueError, match="do not pair up"):
        attention_loss(student, teacher[..., :2])


def test_feature_mse_adapters_map_student_to_teacher_channels():
    term = FeatureDistill([("a", "x"), ("b", "y")], "mse", shapes=[((4, 4, 4), (16, 4, 4)), ((2, 8, 8), (8, 8, 8))])
    assert [tuple(m.weight.shape) for m in term.adapters] == [(16, 4, 1, 1), (8, 2, 1, 1)]
    fs = {"a": torch.randn(3, 4, 4, 4), "b": torch.randn(3, 2, 8, 8)}
    ft = {"x": torch.randn(3, 16, 4, 4), "y": torch.randn(3, 8, 8, 8)}
    got = term(ctx(None, student_features=fs, teacher_features=ft))
    want = (F.mse_loss(term.adapters[0](fs["a"]), ft["x"]) + F.mse_loss(term.adapters[1](fs["b"]), ft["y"])) / 2
    assert torch.allclose(got, want)
    got.backward()
    assert term.adapters[0].weight.grad is not None  # adapters learn with the student


def test_feature_mse_adapter_for_flat_teacher_features():
    term = FeatureDistill([("a", "x")], "mse", shapes=[((2, 4, 4), (10,))])
    assert isinstance(term.adapters[0][1], nn.Linear) and term.adapters[0][1].weight.shape == (10, 32)
    value = term(ctx(None, student_features={"a": torch.randn(3, 2, 4, 4)}, teacher_features={"x": torch.randn(3, 10)}))
    assert value.shape == ()


def test_feature_mse_adapters_for_signals_and_sequences():
    """(C, T) maps get a 1x1 Conv1d and a linear resize of T; channels_last features (T, C),
    a transformer's, a Linear on C applied at every position."""
    conv = FeatureDistill([("a", "x")], "mse", shapes=[((4, 16), (8, 32))])
    assert isinstance(conv.adapters[0], nn.Conv1d) and tuple(conv.adapters[0].weight.shape) == (8, 4, 1)
    fs, ft = torch.randn(3, 4, 16), torch.randn(3, 8, 32)
    mapped = F.interpolate(conv.adapters[0](fs), size=32, mode="linear", align_corners=False)
    assert torch.allclose(conv(ctx(None, student_features={"a": fs}, teacher_features={"x": ft})),
                          F.mse_loss(mapped, ft))
    seq = FeatureDistill([("a", "x")], "mse", shapes=[((5, 6), (5, 12))], layout="channels_last")
    fs, ft = torch.randn(3, 5, 6), torch.randn(3, 5, 12)
    linear = seq.adapters[0]
    assert isinstance(linear, nn.Linear) and tuple(linear.weight.shape) == (12, 6)
    want = F.mse_loss(fs @ linear.weight.T + linear.bias, ft)  # each position mapped on its own
    assert torch.allclose(seq(ctx(None, student_features={"a": fs}, teacher_features={"x": ft})), want)


def test_perceptual_by_hand():
    fake = {"l0": torch.ones(2, 3), "l1": torch.zeros(2, 2)}
    teacher = {"l0": torch.zeros(2, 3), "l1": torch.full((2, 2), 0.5)}
    c = ctx(None, d_features_fake=fake, d_features_teacher=teacher)
    assert DiscriminatorPerceptual()(c).item() == pytest.approx((1.0 + 0.5) / 2)


def test_objective_weights_and_formula():
    obj = Objective("L_G", [OutputL1(2.0), OutputL2(0.5)])
    total, values = obj(ctx(S, teacher_out=T))
    assert total.item() == pytest.approx(2 * values["l1"].item() + 0.5 * values["l2"].item())
    assert obj.formula() == "L_G = 2*l1 + 0.5*l2"

"""Distillation through the loop: the efficient step, any nn.Module teacher, taps, students."""

import copy
import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from conftest import ROOT, set_args
from kdgan.config import load_config
from kdgan.pretrained import SHIPPED
from kdgan.distill import Taps, Teacher, build_distill_trainer
from kdgan.distill.seed_reference import seed_step
from kdgan.distill.students import prune_init
from kdgan.errors import UserError
from kdgan.nets import GeneratorSpec, build_generator

# recipes that name their teacher (folder_distill.yaml takes the user's; test_readme runs it)
# the recipes whose teacher ships with kdgan (the others distil a run the user trains first, as
# lm_distill.yaml says; their own tests train a tiny teacher)
RECIPES = sorted(p for p in (ROOT / "configs").glob("*.yaml")
                 if ("distill" in p.name or "seed" in p.name) and load_config(p).distill.teacher in SHIPPED)


def tiny(**extra):
    base = {
        "data.name": "digits", "data.resolution": 16, "data.channels": 3,
        "model.latent_dim": 8, "model.generator.width": 4, "model.discriminator.width": 4,
        "train.batch_size": 6, "train.steps": 4, "log.log_every": 2, "log.sample_every": 4,
        "log.checkpoint_every": 2, "log.num_samples": 4, "log.progress": False, "log.tensorboard": False,
        "distill.student.width_multiplier": None, "distill.discriminator.width_multiplier": None,
    }
    base.update(extra)
    return [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in base.items()]


class UserTeacher(nn.Module):
    """Not a kdgan network: an MLP generator, z (B, 8) -> (B, 3, 16, 16)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 32 * 4 * 4), nn.ReLU())
        self.up = nn.Sequential(nn.Upsample(scale_factor=4), nn.Conv2d(32, 3, 3, padding=1), nn.Tanh())

    def forward(self, z):
        return self.up(self.body(z).view(-1, 32, 4, 4))


def seed_like_config():
    return load_config(None, tiny(**{
        "train.loss.name": "bce", "train.ema_decay": 0.0,
        "distill.terms": "[{name: kl, dim: channels, reduction: elementwise, weight: 0.7}]",
    }))


def test_efficient_step_equals_the_seeds_literal_step():
    cfg = seed_like_config()
    teacher = Teacher(UserTeacher())
    trainer = build_distill_trainer(cfg, teacher)
    # lr 0: the weights stay put, so each update's gradients can be compared afterwards
    for opt in (trainer.opt_g, trainer.opt_d):
        for group in opt.param_groups:
            group["lr"] = 0.0
    student, disc = copy.deepcopy(trainer.generator), copy.deepcopy(trainer.discriminator)
    noise = torch.Generator().set_state(trainer.noise.get_state())
    batch = trainer.task.batch(trainer.sampler.indices(0), noise)
    (z,) = batch.g_inputs

    values = trainer.train_step()
    ref = seed_step(student, disc, teacher.generator,
                    torch.optim.SGD(student.parameters(), lr=0.0), torch.optim.SGD(disc.parameters(), lr=0.0),
                    batch.real, z, z, alpha=0.7)

    assert torch.allclose(values["d_adv"], ref["loss_d"], rtol=1e-5)
    assert torch.allclose(values["g_adv"], ref["loss_adv"], rtol=1e-5)
    assert torch.allclose(values["kl"], ref["loss_distill"], rtol=1e-5)
    for ours, theirs in zip(trainer.discriminator.parameters(), ref["d_grads"]):
        assert torch.allclose(ours.grad, theirs, rtol=1e-4, atol=1e-7)
    for ours, theirs in zip(trainer.generator.parameters(), student.parameters()):
        assert torch.allclose(ours.grad, theirs.grad, rtol=1e-4, atol=1e-7)
    # The equality above holds because both steps see one latent draw: the seed draws a second
    # z for its G step, kdgan reuses the D step's samples (one student forward per step). With
    # two draws the G losses differ, so the comparison above is not vacuous.
    other = torch.randn(z.shape, generator=torch.Generator().manual_seed(123))
    two_draws = seed_step(copy.deepcopy(student), copy.deepcopy(disc), teacher.generator,
                          torch.optim.SGD(student.parameters(), lr=0.0), torch.optim.SGD(disc.parameters(), lr=0.0),
                          batch.real, z, other, alpha=0.7)
    assert torch.allclose(two_draws["loss_d"], ref["loss_d"])
    assert not torch.allclose(two_draws["loss_distill"], ref["loss_distill"], rtol=1e-3)


def test_one_student_and_one_teacher_forward_per_step():
    cfg = load_config(None, tiny(**{"distill.terms": "[{name: l1}, {name: feature, loss: kernel, taps: [[stages.0, body.1]]}]"}))
    teacher = Teacher(UserTeacher())
    trainer = build_distill_trainer(cfg, teacher)
    calls = {"student": 0, "teacher": 0}
    trainer.generator.register_forward_hook(lambda *a: calls.__setitem__("student", calls["student"] + 1))
    teacher.generator.register_forward_hook(lambda *a: calls.__setitem__("teacher", calls["teacher"] + 1))
    trainer.train_step()
    assert calls == {"student": 1, "teacher": 1}  # the seed's loop: 3 and 2
    assert not teacher.generator.training
    assert all(p.grad is None and not p.requires_grad for p in teacher.generator.parameters())


def test_user_defined_teacher_and_discriminator_through_the_loop(tmp_path):
    class UserCritic(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.LeakyReLU(0.2))
            self.score = nn.Linear(8 * 8 * 8, 1)

        def forward(self, x):
            return self.score(self.features(x).flatten(1)).squeeze(1)

    cfg = load_config(None, tiny(**{"distill.terms": (
        "[{name: l1, weight: 5}, {name: feature, taps: [[stages.0, body.3]]}, "
        "{name: perceptual, layers: [features]}, {name: g_teacher_adv}, {name: d_kl}]")}))
    trainer = build_distill_trainer(cfg, Teacher(UserTeacher(), UserCritic()))
    trainer.fit(tmp_path)
    last = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])
    assert {"l1", "feature_mse", "perceptual", "g_teacher_adv", "d_kl"} <= set(last)
    # the adapter (student stage 0, 8 ch at 8x8 -> teacher body.3, 512 features) is saved
    tensors = load_file(next((tmp_path / "checkpoints").glob("*.safetensors")))
    assert any(k.startswith("g_objective.") and "adapters" in k for k in tensors)


def test_a_teacher_returning_a_tuple_gives_its_first_element(tmp_path):
    """(images, features), as many codebases return: the images are distilled; any other
    output is one line saying what the forward must return."""

    class TupleTeacher(UserTeacher):
        def forward(self, z):
            h = self.body(z)
            return self.up(h.view(-1, 32, 4, 4)), h

    class DictTeacher(UserTeacher):
        def forward(self, z):
            return {"images": super().forward(z)}

    cfg = load_config(None, tiny(**{"distill.terms": "[{name: l1, weight: 5}]"}))
    trainer = build_distill_trainer(cfg, Teacher(TupleTeacher()))
    trainer.fit(tmp_path)
    assert "l1" in json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])
    with pytest.raises(UserError, match=r"returned a dict; its forward must return the samples \(images \(B, C, H, W\), "
                                        r"audio \(B, 1, T\), ...\), or a tuple/list whose first element is them"):
        build_distill_trainer(cfg, Teacher(DictTeacher()))


def test_progress_shows_the_distillation_terms(tmp_path, capsys):
    """stderr that is not a terminal gets plain lines (no carriage-return bar) naming every
    term of L_G and L_D; a terminal gets them in the bar's postfix."""
    import io
    import sys

    from kdgan.train.runlog import RunLog

    cfg = load_config(None, tiny(**{"log.progress": True, "distill.terms": "[{name: l1}, {name: l2}]"}))
    build_distill_trainer(cfg, Teacher(UserTeacher())).fit(tmp_path / "plain")
    err = capsys.readouterr().err
    assert "\r" not in err
    last = [line for line in err.splitlines() if line.startswith("step 4/4")]
    assert len(last) == 1 and all(f" {term} " in last[0] for term in ("d_adv", "g_adv", "l1", "l2")), err

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    import unittest.mock

    with unittest.mock.patch.object(sys, "stderr", screen):
        log = RunLog(tmp_path / "tty", 0, 10, progress=True, tensorboard=False, terms=["d_adv", "g_adv", "l1"])
        log.accumulate({"d_adv": torch.tensor(1.0), "g_adv": torch.tensor(2.0), "l1": torch.tensor(0.25),
                        "d_real_logit": torch.tensor(0.5)})
        log.advance()
        log.flush(1)
        log.close()
    assert "d_adv=1.000, g_adv=2.000, l1=0.250" in screen.getvalue()
    assert "d_real_logit" not in screen.getvalue()


def test_feature_taps_stay_off_the_ema_and_leave_the_networks_after_fit(tmp_path):
    """The EMA copy does not carry the student's hooks (its forwards would overwrite what the
    taps recorded of the student), and a user's teacher leaves fit() without kdgan's hooks;
    a second fit hooks them again."""
    cfg = load_config(None, tiny(**{"distill.terms": "[{name: l1}, {name: feature, taps: [[stages.0, body.3]]}]"}))
    teacher = UserTeacher()
    trainer = build_distill_trainer(cfg, Teacher(teacher))
    taps = trainer.providers[0].student_taps
    trainer.generator(torch.randn(2, 8))
    recorded = taps.outputs["stages.0"]
    trainer.ema.model(torch.randn(3, 8))
    assert taps.outputs["stages.0"] is recorded
    trainer.fit(tmp_path)
    hooked = lambda net: [n for n, m in net.named_modules() if m._forward_hooks]  # noqa: E731
    assert hooked(teacher) == [] and hooked(trainer.generator) == [] and hooked(trainer.ema.model) == []
    trainer.settings.steps += 2
    trainer.fit(tmp_path)
    last = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 6 and last["feature_mse"] > 0 and hooked(teacher) == []


def test_wrong_tap_path_fails_clearly():
    cfg = load_config(None, tiny(**{"distill.terms": "[{name: feature, taps: [[stages.9, body.1]]}]"}))
    with pytest.raises(UserError, match=r"distill.terms.0.taps: the student has no module 'stages.9'; some of its modules: stem, stem.conv"):
        build_distill_trainer(cfg, Teacher(UserTeacher()))
    with pytest.raises(UserError, match="the teacher has no module 'body.x'"):
        Taps(UserTeacher(), ["body.x"], "teacher", "distill.terms.0.taps")


def test_teacher_of_the_wrong_shape_fails_clearly():
    cfg = load_config(None, tiny(**{"data.channels": 1, "distill.terms": "[{name: l1}]"}))
    with pytest.raises(UserError, match=r"teacher generates \(3, 16, 16\) but data gives \(1, 16, 16\)"):
        build_distill_trainer(cfg, Teacher(UserTeacher()))


def test_lpips_without_its_weights_fails_clearly(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty hub cache
    cfg = load_config(None, tiny(**{"distill.terms": "[{name: perceptual, network: lpips}]"}))
    with pytest.raises(UserError, match=r"distill.terms.0.network: lpips (is not installed|needs AlexNet weights)"):
        build_distill_trainer(cfg, Teacher(UserTeacher()))


def test_terms_needing_a_teacher_discriminator_say_so():
    cfg = load_config(None, tiny(**{"distill.terms": "[{name: d_kl}]"}))
    with pytest.raises(UserError, match="distill.terms.0: d_kl needs the teacher's discriminator"):
        build_distill_trainer(cfg, Teacher(UserTeacher()))


def test_prune_init_keeps_the_most_important_channels():
    spec = GeneratorSpec(arch="dcgan", width=8, latent_dim=6, resolution=16, channels=1)
    teacher = build_generator(spec)
    with torch.no_grad():
        for block in [teacher.stem, *teacher.stages]:
            block.norm.bn.weight.copy_(torch.linspace(-1, 2, block.norm.bn.weight.numel()))
            block.norm.bn.running_mean.normal_()
    same = build_generator(spec)
    prune_init(same, teacher)  # full width: an exact copy
    same.eval(), teacher.eval()
    z = torch.randn(3, 6)
    assert torch.allclose(same(z), teacher(z))
    small = build_generator(spec.model_copy(update={"width": 2}))
    kept = prune_init(small, teacher, "bn")
    # stem has 16 teacher channels (gamma rising linearly): the 4 largest are the last 4
    assert kept[0].tolist() == [12, 13, 14, 15]
    assert torch.equal(small.stem.conv.weight, teacher.stem.conv.weight[:, 12:16])
    assert torch.equal(small.stages[0].conv.weight, teacher.stages[0].conv.weight[12:16][:, kept[1]])


def test_prune_init_subpixel_student_takes_the_teachers_first_blocks():
    teacher = build_generator(GeneratorSpec(arch="dcgan", width=8, latent_dim=6, resolution=32, channels=1))
    # the head's least-squares fit draws labels for a class-conditional pair
    conditional = build_generator(GeneratorSpec(arch="dcgan", width=8, latent_dim=6, resolution=32, channels=1,
                                                num_classes=3))
    student = build_generator(GeneratorSpec(arch="dcgan-subpixel", width=2, latent_dim=6, resolution=32, channels=1,
                                            num_classes=3))
    prune_init(student, conditional)
    assert student.eval()(torch.randn(2, 6), torch.tensor([0, 2])).shape == (2, 1, 32, 32)
    with torch.no_grad():
        for block in [teacher.stem, *teacher.stages]:
            block.norm.bn.weight.uniform_(0.1, 2.0)
            block.norm.bn.running_mean.normal_()
    teacher.eval()
    # full width: the stem (as a matrix product) and the 8x8 block reproduce the teacher's
    same = build_generator(GeneratorSpec(arch="dcgan-subpixel", width=8, latent_dim=6, resolution=32, channels=1))
    kept = prune_init(same, teacher)
    assert len(kept) == 2
    z = torch.randn(3, 6)
    same.eval()
    assert torch.allclose(same.stem(z), teacher.stem(z[:, :, None, None]), atol=1e-6)
    assert torch.allclose(same.stages[0](same.stem(z)), teacher.stages[0](teacher.stem(z[:, :, None, None])),
                          atol=1e-6)
    small = build_generator(GeneratorSpec(arch="dcgan-subpixel", width=2, latent_dim=6, resolution=32, channels=1))
    kept = prune_init(small, teacher, "bn")
    want = teacher.stem.norm.bn.weight.abs().topk(8).indices.sort().values
    assert torch.equal(kept[0], want)
    assert torch.allclose(small.eval().stem(z), teacher.stem(z[:, :, None, None])[:, want], atol=1e-6)


@pytest.mark.parametrize("classes", [0, 3])
@pytest.mark.parametrize("importance", ["bn", "l1"])
def test_prune_init_resnet(classes, importance):
    spec = GeneratorSpec(arch="resnet", width=8, latent_dim=6, resolution=16, channels=1, num_classes=classes)
    torch.manual_seed(0)
    teacher = build_generator(spec)
    with torch.no_grad():
        for m in teacher.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_()
                if m.affine:
                    m.weight.uniform_(0.1, 2.0)
    args = (torch.randn(3, 6), torch.tensor([0, 1, 2])) if classes else (torch.randn(3, 6),)
    same = build_generator(spec)
    prune_init(same, teacher, importance)  # full width: an exact copy
    assert torch.allclose(same.eval()(*args), teacher.eval()(*args), atol=1e-6)
    small = build_generator(spec.model_copy(update={"width": 2}))
    keeps = prune_init(small, teacher, importance)
    assert [len(k) for k in keeps] == [4, 2, 2]  # 4x4 map (2*width), then width per stage
    if importance == "bn" and not classes:
        assert torch.equal(keeps[0], teacher.stages[0].norm1.bn.weight.abs().topk(4).indices.sort().values)
    assert small.eval()(*args).shape == (3, 1, 16, 16)


def test_prune_init_refuses_other_families():
    t = build_generator(GeneratorSpec(arch="dcgan", width=8, latent_dim=6, resolution=16, channels=1))
    s = build_generator(GeneratorSpec(arch="dcgan-separable", width=2, latent_dim=6, resolution=16, channels=1))
    with pytest.raises(UserError, match="distill.student.init: prune needs teacher and student of the same plain family"):
        prune_init(s, t)
    t = build_generator(GeneratorSpec(arch="resnet", width=8, latent_dim=6, resolution=16, channels=1, spectral_norm=True))
    s = build_generator(GeneratorSpec(arch="resnet", width=2, latent_dim=6, resolution=16, channels=1, spectral_norm=True))
    with pytest.raises(UserError, match="spectral-normalised"):
        prune_init(s, t)


def test_distill_resume_equals_uninterrupted(run_cli, tmp_path):
    teacher_run = tmp_path / "teacher"
    common = tiny(**{"distill.terms": "[{name: l1}, {name: feature}]"})
    plain = [o for o in common if not o.startswith("distill.")]
    code, _, err = run_cli("train", "--config", ROOT / "configs/glyph_teacher.yaml", "--out", teacher_run,
                           *set_args(plain + ["train.steps=2"]))
    assert code == 0, err
    args = ["--config", ROOT / "configs/distill_feature.yaml", "--teacher", teacher_run]
    assert run_cli("distill", *args, "--out", tmp_path / "a", *set_args(common))[0] == 0
    assert run_cli("distill", *args, "--out", tmp_path / "b", *set_args(common + ["train.steps=2"]))[0] == 0
    code, _, err = run_cli("distill", "--out", tmp_path / "b", "--resume", "--set", "train.steps=4")
    assert code == 0, err
    a = load_file(tmp_path / "a/checkpoints/step_0000004.safetensors")
    b = load_file(tmp_path / "b/checkpoints/step_0000004.safetensors")
    assert any(k.startswith("g_objective.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_distill_recipe_runs_from_the_cli(run_cli, tmp_path, recipe):
    """Each recipe as shipped, on the shipped teacher, for a few small-batch steps."""
    out = tmp_path / recipe.stem
    # audio recipes' discriminator terms start after their warm-up: one step of it here
    small = {"vocoder": ["data.segment=2048", "task.sample_seconds=0.5", "train.adversarial_start=1"],
             "enhancement": ["data.segment=2048", "task.sample_seconds=0.5", "train.adversarial_start=1"],
             "conversion": ["data.frames=16", "task.sample_frames=32", "train.adversarial_start=1"],
             "cloning": ["data.frames=16", "task.sample_frames=32", "train.adversarial_start=1"],
             # the shortest verses (67 of at most 5 words for translation): the teacher decodes every
             # training source first
             "seq2seq": ["data.max_words=5", "train.adversarial_start=1"],
             }.get(load_config(recipe).task.name, ["task.crops=64"])
    code, _, err = run_cli("distill", "--config", recipe, "--out", out, "--set", "train.steps=3",
                           "--set", "train.batch_size=8", "--set", "log.progress=false",
                           "--set", "log.log_every=1", "--set", "log.num_samples=8", *set_args(small))
    assert code == 0, err
    log = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    cfg = load_config(recipe)
    names = {t.name for t in cfg.distill.terms}
    logged = set(log[-1])
    assert all(any(k == n or k.startswith(n + "_") for k in logged) for n in names), (names, logged)
    assert all(v == v for v in log[-1].values())
    meta = json.loads(next((out / "checkpoints").glob("*.json")).read_text())
    assert meta["teacher"]["source"] == cfg.distill.teacher


def test_distill_needs_a_distill_section(run_cli, tmp_path):
    code, _, err = run_cli("distill", "--config", ROOT / "configs/glyph_teacher.yaml", "--out", tmp_path / "x")
    assert code == 2 and "distill section" in err
    code, _, err = run_cli("train", "--config", ROOT / "configs/distill_l1.yaml", "--out", tmp_path / "x")
    assert code == 2 and "kdgan distill" in err
    code, _, err = run_cli("distill", "--config", ROOT / "configs/distill_l1.yaml", "--teacher", tmp_path / "none",
                           "--out", tmp_path / "x")
    assert code == 2 and "does not exist" in err and not (tmp_path / "x").exists()


def test_student_blocks_only_for_residual_families(run_cli, tmp_path):
    # the glyph teacher is a dcgan: it has no residual blocks to keep or drop
    code, _, err = run_cli("distill", "--config", ROOT / "configs/distill_l1.yaml", "--out", tmp_path / "x",
                           "--set", "distill.student.blocks=2")
    assert code == 2 and "distill.student.blocks: only sr and resnet-i2i" in err and not (tmp_path / "x").exists()


def test_two_discriminator_updates_per_generator_update(tmp_path):
    cfg = load_config(None, tiny(**{"train.d_steps": 2, "distill.terms": "[{name: l1}]"}))
    trainer = build_distill_trainer(cfg, Teacher(UserTeacher()))
    trainer.fit(tmp_path)
    d_steps = {int(s["step"]) for s in trainer.opt_d.state_dict()["state"].values()}
    g_steps = {int(s["step"]) for s in trainer.opt_g.state_dict()["state"].values()}
    assert d_steps == {8} and g_steps == {4}  # 4 steps of train.steps, each with 2 D updates


def test_relation_feature_loss_by_hand_and_in_a_run(tmp_path):
    """StyleKD's relation term: KL between the teacher's and the student's softmax over each
    sample's cosine similarities to the others; 0 when the two batches relate alike."""
    from kdgan.distill.features import relation_loss

    torch.manual_seed(0)
    fs, ft = torch.randn(5, 7), torch.randn(5, 11)
    assert relation_loss(ft[:, :7] * 3, ft[:, :7], 1.0).item() == pytest.approx(0.0, abs=1e-6)  # scale-free
    assert relation_loss(fs, ft, 1.0).item() > 0
    cfg = load_config(None, tiny(**{"distill.terms": "[{name: feature, loss: relation, taps: [[stages.0, body.3]]}]"}))
    trainer = build_distill_trainer(cfg, Teacher(UserTeacher()))
    trainer.fit(tmp_path)
    last = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])
    assert last["feature_relation"] > 0


def test_student_discriminator_initialised_from_the_teachers(run_cli, tmp_path):
    teacher = tmp_path / "teacher"
    small = ["data.name=digits", "data.resolution=16", "model.latent_dim=8", "model.generator.width=8",
             "model.discriminator.width=8", "train.batch_size=8", "train.steps=2", "log.progress=false"]
    assert run_cli("train", "--config", ROOT / "configs/glyph_teacher.yaml", "--out", teacher, *set_args(small))[0] == 0
    from kdgan.loading import load_gan

    cfg = load_config(ROOT / "configs/distill_l1.yaml", [*small, f"distill.teacher={teacher}",
                                                         "distill.discriminator.width_multiplier=1.0",
                                                         "distill.discriminator.init=teacher"])
    trainer = build_distill_trainer(cfg)
    ours, theirs = trainer.discriminator.state_dict(), load_gan(teacher).discriminator.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    cfg.distill.discriminator.width_multiplier = 0.5
    with pytest.raises(UserError, match="distill.discriminator.init: teacher needs"):
        build_distill_trainer(cfg)


def test_class_conditional_distillation_end_to_end(run_cli, tmp_path):
    """A conditional teacher (ResNet G with conditional BatchNorm, projection D) distilled
    into a conditional student: labels reach both, pruning init included."""
    teacher = tmp_path / "teacher"
    small = ["data.resolution=16", "model.latent_dim=8", "model.generator.width=8", "model.discriminator.width=8",
             "train.batch_size=8", "train.steps=2", "log.progress=false", "log.num_samples=8"]
    code, _, err = run_cli("train", "--config", ROOT / "configs/glyph_cond_teacher.yaml", "--out", teacher,
                           *set_args(small))
    assert code == 0, err
    student = tmp_path / "student"
    code, _, err = run_cli("distill", "--config", ROOT / "configs/distill_prune.yaml", "--teacher", teacher,
                           "--out", student, *set_args([*small, "data.conditional=true", "train.steps=3",
                                                        "distill.student.width_multiplier=0.5"]))
    assert code == 0, err
    meta = json.loads(next((student / "checkpoints").glob("*.json")).read_text())
    assert meta["generator_spec"]["num_classes"] == 62 and meta["generator_spec"]["arch"] == "resnet"
    code, _, err = run_cli("sample", student, "-n", 4, "--out", tmp_path / "s.png")
    assert code == 0, err

"""The seam for new modalities: a task package written outside kdgan (tests/sinusoids_task.py:
1-D signals, a Conv1d generator, a two-headed discriminator returning logits and features,
its own metric and PNG plots) runs every stage through the public API and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import sinusoids_task  # noqa: F401  (registers the task, its families and its metric)
from conftest import ROOT, cli_in_process

TEACHER = """
seed: 0
task: {name: sinusoids}
data: {examples: 256, length: 32}
model:
  latent_dim: 8
  generator: {width: 16}
  discriminator: {width: 8, heads: 2}
train:
  steps: 24
  batch_size: 16
  loss: {name: lsgan, feature_matching: 2.0}
  ema_decay: 0.9
log: {log_every: 6, sample_every: 12, checkpoint_every: 12, num_samples: 8, progress: false, tensorboard: false}
"""

DISTILL = TEACHER.replace("steps: 24", "steps: 12") + """
distill:
  student: {width_multiplier: 0.5, init: prune}
  terms:
    - {name: l1, weight: 1.0}
    - {name: feature, weight: 0.5}
    - {name: d_kl, weight: 0.5}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A teacher trained and a student distilled by the CLI, in this process."""
    root = tmp_path_factory.mktemp("sinusoids")
    (root / "teacher.yaml").write_text(TEACHER)
    (root / "distill.yaml").write_text(DISTILL)
    cli = cli_in_process

    assert cli("train", "--config", root / "teacher.yaml", "--out", root / "teacher") == 0
    assert cli("distill", "--config", root / "distill.yaml", "--teacher", root / "teacher", "--out",
               root / "student") == 0
    return root


def test_train_and_distill_run_the_new_modality(runs):
    teacher, student = runs / "teacher", runs / "student"
    meta = json.loads(sorted((student / "checkpoints").glob("*.json"))[-1].read_text())
    assert meta["generator_spec"] == {"arch": "conv1d", "width": 8, "latent_dim": 8, "length": 32}
    assert meta["teacher"]["generator_spec"]["width"] == 16
    logged = json.loads((student / "log.jsonl").read_text().splitlines()[-1])
    # the two heads' adversarial losses, feature matching and all three distillation terms
    assert {"d_adv", "g_adv", "g_fm", "l1", "feature_mse", "d_kl"} <= set(logged), logged
    assert all(torch.isfinite(torch.tensor(v)) for v in logged.values() if isinstance(v, float))
    for run in (teacher, student):  # the task's own renderer wrote the sample plots
        plots = sorted((run / "samples").glob("*.png"))
        assert plots and plots[-1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = [json.loads(line) for line in (student / "events.jsonl").read_text().splitlines()]
    assert any("teacher_l1" in e for e in events)  # the loop measured fidelity to the teacher


def test_pruning_init_copies_the_teachers_strongest_channels(runs):
    """distill.student.init: prune used the family's declared rule: before any step the
    student's first layer computes exactly the teacher's first layer at its 8 strongest
    channels (by L1 filter norm, chosen here independently), and its output is nearer the
    teacher's than a randomly initialised student's."""
    from kdgan.config import load_config
    from kdgan.distill import build_distill_trainer

    cfg = load_config(runs / "distill.yaml", [f"distill.teacher={runs / 'teacher'}"])
    trainer = build_distill_trainer(cfg)
    z = torch.randn(64, 8, generator=torch.Generator().manual_seed(5))
    teacher_out = trainer.reference(z)
    pruned = trainer.generator.eval()(z)
    random = build_distill_trainer(load_config(runs / "distill.yaml", [
        f"distill.teacher={runs / 'teacher'}", "distill.student.init=scratch"])).generator.eval()(z)
    assert (pruned - teacher_out).abs().mean() < (random - teacher_out).abs().mean()
    teacher = trainer.reference.__self__.generator
    strongest = teacher.stem[0].weight.abs().sum((0, 2)).argsort(descending=True)[:8].sort().values
    x = z[:, :, None]
    assert torch.allclose(trainer.generator.stem(x), teacher.stem(x)[:, strongest], atol=1e-6)


def test_evaluate_compare_sample_and_export(runs, run_cli, tmp_path):
    teacher, student = runs / "teacher", runs / "student"
    for run in (teacher, student):
        code, out, err = run_cli("evaluate", run, "--samples", 128, "--no-profile")
        assert code == 0, err
    result = json.loads((student / "eval.json").read_text())["evaluations"][-1]
    assert result["task"] == "sinusoids" and result["fake_samples"] == 128
    assert 0 <= result["real_vs_real"]["spectral_distance"] < result["spectral_distance"]
    assert result["fidelity"]["l1"] > 0  # the student's distance to its teacher on the same z

    code, _, err = run_cli("evaluate", student, "--metrics", "fid", "--no-profile")
    assert code == 2 and "fid does not apply to task sinusoids; valid: spectral_distance" in err

    code, _, err = run_cli("compare", teacher, student, "--out", tmp_path / "report", "--samples", 8)
    assert code == 0, err
    page = (tmp_path / "report" / "report.html").read_text()
    assert "spectral_distance" in page and "mean log power" in page  # its column and its own note
    assert (tmp_path / "report" / "samples.png").read_bytes()[:4] == b"\x89PNG"

    code, _, err = run_cli("sample", student, "-n", 4, "--out", tmp_path / "s.png")
    assert code == 0 and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG", err
    code, _, err = run_cli("sample", student, "-n", 3, "--out", tmp_path / "signals")
    assert code == 0, err
    values = [float(v) for v in (tmp_path / "signals" / "000002.txt").read_text().split()]
    assert len(values) == 32 and all(-1 <= v <= 1 for v in values)

    onnx = tmp_path / "student.onnx"
    code, out, err = run_cli("export", student, "--format", "onnx", "--out", onnx)
    assert code == 0 and "verified against PyTorch" in out, err
    code, _, err = run_cli("sample", onnx, "-n", 4, "--out", tmp_path / "from_onnx.png")
    assert code == 0, err


def test_onnx_export_matches_the_generator_by_an_independent_run(runs, tmp_path):
    """The exported file run by onnxruntime here, not by export's own verification."""
    import onnxruntime as ort

    from kdgan.deploy import export_onnx
    from kdgan.loading import load_gan

    gan = load_gan(runs / "student")
    export_onnx(gan.generator, gan.generator_spec, tmp_path / "g.onnx")
    z = torch.randn(5, 8, generator=torch.Generator().manual_seed(9))
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: z.numpy()})[0]
    assert got.shape == (5, 1, 32)
    assert torch.allclose(torch.from_numpy(got), gan.generator(z), atol=1e-5)


def test_its_config_sections_are_validated_by_its_own_schemas(run_cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    for change, message in [
        (("length: 32", "lenght: 32"), "config error: data.lenght: unknown key; valid keys: examples, length, components"),
        (("length: 32", "length: 30"), "config error: data.length: the conv1d generator doubles twice"),
        (("heads: 2", "heads: 5"), "config error: model.discriminator.heads: Input should be less than or equal to 3"),
        (("{width: 16}", "{arch: conv2d}"), "config error: model.generator.arch: unknown 'conv2d'; valid: dcgan,"),
        (("{width: 16}", "{arch: dcgan}"), "model.generator.arch: 'dcgan' is a family of image networks; task "
                                           "sinusoids takes signal families: conv1d"),
    ]:
        bad.write_text(TEACHER.replace(*change))
        code, _, err = run_cli("train", "--config", bad, "--out", tmp_path / "run")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_the_kdgan_command_finds_the_package_through_kdgan_plugins(tmp_path):
    """The console path: a fresh process imports the module named in $KDGAN_PLUGINS."""
    config = tmp_path / "teacher.yaml"
    config.write_text(TEACHER)
    env = {**os.environ, "KDGAN_PLUGINS": "sinusoids_task",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "kdgan", "train", "--config", str(config), "--out",
                           str(tmp_path / "r"), "--dry-run"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "name: sinusoids" in proc.stdout and "heads: 2" in proc.stdout, proc.stderr
    env["KDGAN_PLUGINS"] = "no_such_module"
    proc = subprocess.run([sys.executable, "-m", "kdgan", "train", "--config", str(config), "--out",
                           str(tmp_path / "r"), "--dry-run"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "KDGAN_PLUGINS: cannot import 'no_such_module'" in proc.stderr


def test_a_declared_relaxation_trains_a_generator_with_discrete_output():
    """A generator whose sample is argmax one-hot (no gradient) and whose logits ride along
    (GeneratorOutput): through the task's relaxation (softmax of the logits) the
    discriminator's verdict reaches the generator's weights."""
    from kdgan.config import validate
    from kdgan.losses import GeneratorOutput
    from kdgan.train.build import assemble_trainer

    class OneHot(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(8, 4 * 5)

        def forward(self, z):
            logits = self.linear(z).view(-1, 4, 5)  # (B, positions, vocabulary)
            return GeneratorOutput(F.one_hot(logits.argmax(-1), 5).float(), logits)

    class Tokens(sinusoids_task.Sinusoids):
        def __init__(self, cfg):
            super().__init__(cfg)
            self.signals = F.one_hot(torch.randint(5, (len(self.signals), 4), generator=torch.Generator()
                                                   .manual_seed(0)), 5).float()

        def discriminator_view(self, output, noise):
            return torch.softmax(output.logits, -1)

    cfg = validate({"task": {"name": "sinusoids"}, "data": {"examples": 64, "length": 32},
                    "model": {"latent_dim": 8}, "train": {"steps": 1, "batch_size": 8, "ema_decay": 0},
                    "log": {"progress": False, "tensorboard": False}})
    G = OneHot()
    D = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(20, 1))
    trainer = assemble_trainer(cfg, Tokens(cfg), torch.device("cpu"), G, D)
    before = G.linear.weight.clone()
    trainer.train_step()
    assert not torch.equal(before, G.linear.weight)

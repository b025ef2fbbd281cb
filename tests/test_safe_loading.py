"""Loading a file never runs code from it unless the user explicitly opts in."""

import os
import pickle
import warnings

import pytest
import torch

from conftest import ROOT
from kdgan.loading import load_gan
from kdgan.families import read_generator_spec
from kdgan.errors import UserError
from kdgan.nets import GeneratorSpec, build_generator

SPEC = GeneratorSpec(arch="dcgan", width=4, latent_dim=8, resolution=16, channels=1)


class RunsCode:
    """Unpickling this calls os.system: the classic malicious checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "teacher.pt"
    torch.save({"generator_spec": SPEC.model_dump(), "generator": RunsCode(marker)}, evil)
    with pytest.raises(UserError, match="loading it could run code.*--trust-pickle"):
        load_gan(evil)
    assert not marker.exists()  # nothing ran
    with open(tmp_path / "raw.pkl", "wb") as f:  # a plain pickle named .pth: same refusal
        pickle.dump(RunsCode(marker), f)
    (tmp_path / "raw.pkl").rename(tmp_path / "raw.pth")
    with pytest.raises(UserError):
        load_gan(tmp_path / "raw.pth")
    assert not marker.exists()


def test_weights_only_teacher_file_loads(tmp_path):
    g = build_generator(SPEC)
    torch.save({"generator_spec": SPEC.model_dump(), "generator": g.state_dict()}, tmp_path / "t.pt")
    teacher = load_gan(tmp_path / "t.pt")
    assert not teacher.generator.training and teacher.generator_spec == read_generator_spec(SPEC)
    z = torch.randn(2, 8)
    assert torch.equal(teacher.generator(z), g.eval()(z))


def test_full_module_pickle_needs_the_opt_in(tmp_path):
    torch.save(build_generator(SPEC), tmp_path / "module.pt")
    with pytest.raises(UserError, match="--trust-pickle"):
        load_gan(tmp_path / "module.pt")
    assert isinstance(load_gan(tmp_path / "module.pt", trust_pickle=True).generator, torch.nn.Module)


def test_wrong_architecture_names_the_parameter(tmp_path):
    g = build_generator(SPEC.model_copy(update={"width": 8}))
    torch.save({"generator_spec": SPEC.model_dump(), "generator": g.state_dict()}, tmp_path / "t.pt")
    with pytest.raises(UserError, match=r"generator.stem.conv.weight has shape \(8, 16, 4, 4\), the spec's network expects \(8, 8, 4, 4\)"):
        load_gan(tmp_path / "t.pt")


def test_cli_refuses_pickled_teacher_with_exit_2(run_cli, tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"generator_spec": SPEC.model_dump(), "generator": RunsCode(marker)}, tmp_path / "evil.pt")
    code, _, err = run_cli("distill", "--config", ROOT / "configs/distill_l1.yaml", "--teacher", tmp_path / "evil.pt",
                           "--out", tmp_path / "run")
    assert code == 2 and "could run code" in err and not marker.exists() and not (tmp_path / "run").exists()


def test_loading_messages_say_what_the_file_is(tmp_path):
    noise = tmp_path / "random_bytes.pt"
    noise.write_bytes(bytes(range(7, 256)) * 20)
    for trust in (False, True):
        with pytest.raises(UserError, match=r"is not a file written by torch.save \(neither a zip archive nor a "
                                            r"pickle\)") as err:
            load_gan(noise, trust_pickle=trust)
        assert "--trust-pickle" not in str(err.value)
    broken = tmp_path / "broken.pt"  # a pickle's first byte, then garbage
    broken.write_bytes(b"\x80" + bytes(range(200, 256)) * 20)
    with pytest.raises(UserError, match="is damaged or not a torch.save file") as err:
        load_gan(broken)
    assert "--trust-pickle" not in str(err.value)
    with pytest.raises(UserError, match="cannot read .*broken.pt: unsupported pickle protocol") as err:
        load_gan(broken, trust_pickle=True)
    assert "--trust-pickle" not in str(err.value)
    torch.save({"generator_spec": SPEC.model_dump(), "generator": RunsCode(tmp_path / "x")}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match=r"holds a pickled object \(posix.system\)"):  # named whole, not cut
        load_gan(tmp_path / "evil.pt")
    scripted = tmp_path / "scripted.pt"
    with warnings.catch_warnings():  # torch.jit is deprecated upstream; users still have such files
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(build_generator(SPEC).eval(), torch.randn(2, 8)).save(str(scripted))
    with pytest.raises(UserError, match="is a TorchScript file"):
        load_gan(scripted)


def test_sample_names_its_own_argument_and_a_cut_archive(run_cli, tmp_path):
    g = build_generator(SPEC)
    torch.save({"generator_spec": SPEC.model_dump(), "generator": g.state_dict()}, tmp_path / "t.pt")
    data = (tmp_path / "t.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])  # a download or copy that stopped halfway
    code, _, err = run_cli("sample", tmp_path / "cut.pt", "--out", tmp_path / "x.png")
    assert code == 2 and err.startswith("kdgan: SOURCE: ") and "is a damaged zip archive" in err
    assert run_cli("sample", tmp_path / "t.pt", "-n", 4, "--out", tmp_path / "x.png")[0] == 0

"""The README's code blocks run, so the documentation cannot drift from the code.

- Every ```python block is executed in a scratch folder holding the repository's configs and
  a small `my_images/` folder, with tiny step counts added to each `load_config` call.
- Every command line of every ```bash block is checked: `kdgan ...` lines are parsed by the
  real CLI (options, choices, configs that exist), `python benchmarks/...` lines use only
  flags the script accepts, `make X` names a Makefile target.
- The demo's, the image-to-image section's, the own-images section's, the vocoder's, the
  own-text-pairs and the CycleGAN command blocks are run end to end, with tiny step, sample and image counts, in
  the order the README gives them.
- The `$ kdgan ...` example in a plain block prints exactly the line the README shows.
"""

import re
import shlex
import subprocess
import sys

import click
import numpy as np
import soundfile as sf
import pytest
from PIL import Image

from conftest import ROOT

README = (ROOT / "README.md").read_text()
BLOCKS = [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w*)\n(.*?)^```$", README, re.S | re.M)]
TINY_RUN = ["train.steps=4", "train.batch_size=4", "log.log_every=2", "log.sample_every=4",
            "log.checkpoint_every=4", "log.progress=false", "log.tensorboard=false", "log.num_samples=4"]


def command_lines(block: str) -> list[list[str]]:
    """Shell lines of a block as argument lists: continuations joined, comments dropped,
    `a; b` and `a & b` split."""
    lines = []
    for line in block.replace("\\\n", " ").splitlines():
        for part in re.split(r";|&(?!&)", line):
            args = shlex.split(part, comments=True)
            if args and args[0] != "wait":
                lines.append(args)
    return lines


def kdgan_args(args: list[str]) -> list[str] | None:
    """The arguments after `kdgan` (also `.venv/bin/kdgan`, `torchrun ... -m kdgan`), or None."""
    if args[0].endswith("kdgan"):
        return args[1:]
    if "-m" in args and args[args.index("-m") + 1] == "kdgan":
        return args[args.index("-m") + 2 :]
    return None


def parse_with_the_cli(args: list[str]) -> None:
    """Parse like `kdgan ARGS` would, without running: unknown options, bad choices and
    missing arguments raise click's UsageError."""
    from kdgan.cli import cli

    command, ctx = cli, None
    while isinstance(command, click.Group):
        name, *args = args
        assert name in command.commands, f"kdgan has no command {name!r}"
        command = command.commands[name]
    command.make_context(command.name, list(args), parent=ctx)


def bash_blocks() -> list[str]:
    return [text for lang, text in BLOCKS if lang == "bash"]


def test_the_readme_has_the_blocks_this_test_reads():
    assert sum(lang == "python" for lang, _ in BLOCKS) >= 1
    assert any("configs/demo.yaml" in b for b in bash_blocks())
    assert any("configs/sr_distill.yaml" in b for b in bash_blocks())


@pytest.mark.parametrize("block", bash_blocks(), ids=lambda b: b.splitlines()[0][:40])
def test_every_command_line_is_valid(block):
    makefile = (ROOT / "Makefile").read_text()
    for args in command_lines(block):
        if args[0] == "make":
            assert re.search(rf"^{re.escape(args[1])}:", makefile, re.M), f"Makefile has no target {args[1]}"
        elif (rest := kdgan_args(args)) is not None:
            parse_with_the_cli(rest)
            for i, arg in enumerate(rest[:-1]):
                if arg == "--config":
                    assert (ROOT / rest[i + 1]).is_file(), f"README names a missing config {rest[i + 1]}"
        elif args[0] == "python" and args[1].startswith(("benchmarks/", "scripts/")):
            accepted = subprocess.run([sys.executable, args[1], "--help"], cwd=ROOT, capture_output=True, text=True,
                                      check=True).stdout
            for flag in (a.split("=")[0] for a in args[2:] if a.startswith("--")):
                assert re.search(rf"{re.escape(flag)}\b", accepted), f"{args[1]} has no option {flag}"
        else:
            pytest.fail(f"this test does not know how to check: {shlex.join(args)}")


def test_the_error_example_prints_what_the_readme_shows(run_cli, monkeypatch):
    example = next(text for lang, text in BLOCKS if lang == "" and text.startswith("$ kdgan"))
    command, *shown = example.strip().splitlines()
    monkeypatch.chdir(ROOT)
    code, _, err = run_cli(*shlex.split(command)[2:])
    assert code == 2 and err.strip().splitlines() == shown


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One kdgan cache for this file's blocks, as a user's ~/.cache is: the real sets' features
    and real-vs-real scores are computed once (they are keyed by content, so no block sees
    another's results for different inputs)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def scratch(tmp_path, monkeypatch, shared_cache):
    """A working folder like a user's: the configs, and small image folders the README names."""
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    rng = np.random.default_rng(0)
    for folder, count in (("my_images", 8), ("my_pairs/A", 4), ("my_pairs/B", 4), ("my_domains/A", 4),
                          ("my_domains/B", 4)):
        (tmp_path / folder).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (72, 80, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / folder / f"{i}.png")
    glyph = np.zeros((32, 32), dtype=np.uint8)
    glyph[6:26, 14:18] = 255  # a grey 32 px "I" to restyle
    Image.fromarray(glyph).save(tmp_path / "my_glyph.png")
    questions = ["how do I reset my password", "where is my order", "can I change my address", "how do I cancel",
                 "what are your opening hours", "is there a student discount", "how long does delivery take"]
    answers = ["use the link on the sign-in page", "the tracking page shows it", "yes, in your account settings",
               "write to us within 14 days", "nine to five on weekdays", "yes, ten percent", "two to four days"]
    (tmp_path / "my_texts.tsv").write_text("".join(f"{q}\t{a}\n" for _ in range(3) for q, a in zip(questions, answers)),
                                          encoding="utf-8")  # a user's question -> answer pairs
    t = np.arange(16000) / 16000  # one second of a rising tone, as a recording to resynthesise
    sf.write(tmp_path / "speech.wav", (0.3 * np.sin(2 * np.pi * (200 + 100 * t) * t)).astype(np.float32), 16000)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KDGAN_CACHE", str(shared_cache))
    return tmp_path


@pytest.mark.parametrize("index", [i for i, (lang, _) in enumerate(BLOCKS) if lang == "python"])
def test_python_blocks_run(scratch, monkeypatch, index):
    import kdgan.config

    real = kdgan.config.load_config
    monkeypatch.setattr(kdgan.config, "load_config", lambda path, overrides=(): real(path, [*overrides, *TINY_RUN]))
    exec(compile(BLOCKS[index][1], f"README.md block {index}", "exec"), {"__name__": "readme"})


# narrower networks for blocks whose recipes are slow even for 4 steps
SMALLER = {"configs/cyclegan_distill.yaml": ["model.generator.width=8", "model.generator.blocks=1",
                                            "model.discriminator.width=8"]}


# image-generation blocks' evaluations without C2ST, which trains a classifier for 400 steps (a
# minute a call on one CPU thread; tested in test_trust and test_metrics)
WITHOUT_C2ST = {"configs/demo.yaml", "configs/folder_teacher.yaml"}


def shrunk(args: list[str], smaller: list[str] = (), c2st: bool = True) -> list[str]:
    """A documented kdgan command made CI-sized: tiny training runs, few samples and epochs."""
    if args[0] in ("train", "distill"):
        return [*args, *(a for o in (*TINY_RUN, *smaller) for a in ("--set", o))]
    if args[:2] == ["features", "train"]:
        return [*args, "--epochs", "8"]
    if args[0] == "evaluate":
        args = [*args, "--no-profile"]
        if "--samples" in args:
            i = args.index("--samples") + 1
            args[i] = str(min(int(args[i]), 64))
        else:
            args += ["--samples", "64"]
        if not c2st and "--metrics" not in args:
            args += ["--metrics", "fid,kid,pr"]  # IS needs class probabilities: not every extractor has them
    return args


@pytest.mark.parametrize("marker", ["configs/demo.yaml", "configs/sr_distill.yaml", "configs/folder_teacher.yaml",
                                    "configs/vocoder_distill.yaml", "my_texts.tsv", "configs/cyclegan_distill.yaml"])
def test_documented_command_sequences_run(scratch, run_cli, marker):
    block = next(b for b in bash_blocks() if marker in b)
    for args in command_lines(block):
        if args[0] == "python":  # a data script: fewer images
            args = [*args[:2], *(a if prev != "--per-class" else "40" for prev, a in zip(args[1:], args[2:]))]
            subprocess.run([sys.executable, ROOT / args[1], *args[2:]], check=True, capture_output=True)
            continue
        code, out, err = run_cli(*shrunk(kdgan_args(args), SMALLER.get(marker, []), marker not in WITHOUT_C2ST))
        assert code == 0, f"{shlex.join(args)}\n{err}"

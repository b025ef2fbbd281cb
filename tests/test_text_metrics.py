"""Text metrics (#19) against hand values and sacrebleu's own command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kdgan.tasks.text.metrics import bleu, chrf, distinct_n, length_ratio, self_bleu

OUTPUTS = ["Jesus wept.", "In the beginning God made the heavens and the earth.", "The LORD is my shepherd."]
REFERENCES = ["Jesus wept.", "In the beginning God created the heaven and the earth.", "The LORD is my shepherd."]


def test_bleu_and_chrf_match_sacrebleus_command_line(tmp_path):
    (tmp_path / "out.txt").write_text("\n".join(OUTPUTS) + "\n")
    (tmp_path / "ref.txt").write_text("\n".join(REFERENCES) + "\n")
    run = subprocess.run([sys.executable, "-m", "sacrebleu", str(tmp_path / "ref.txt"), "-i", str(tmp_path / "out.txt"),
                          "-m", "bleu", "chrf", "-b", "-w", "6"], capture_output=True, text=True, check=True)
    expected_bleu, expected_chrf = json.loads(run.stdout)  # -b: the bare scores, as a JSON list
    assert bleu(OUTPUTS, REFERENCES) == pytest.approx(expected_bleu, abs=1e-6)
    assert chrf(OUTPUTS, REFERENCES) == pytest.approx(expected_chrf, abs=1e-6)
    assert bleu(REFERENCES, REFERENCES) == pytest.approx(100.0)


def test_diversity_and_length_on_hand_values():
    assert distinct_n(["a b a b"], 1) == 0.5  # 2 distinct of 4 words
    assert distinct_n(["a b a b"], 2) == 2 / 3  # (a b), (b a), (a b)
    assert distinct_n(["a"], 2) == 0.0
    assert length_ratio(["a b", "c"], ["a b c", "d"]) == 0.75
    assert self_bleu(["the same words here", "the same words here"]) == pytest.approx(100.0)
    assert self_bleu(["one two three four", "five six seven eight"]) < 1.0

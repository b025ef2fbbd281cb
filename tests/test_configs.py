from pathlib import Path

import pytest

from kdgan.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_recipes_validate(path):
    cfg = load_config(path)
    assert cfg.train.steps > 0


def test_overrides_parse_yaml_values():
    cfg = load_config(None, ["train.g_optim.betas=[0.0, 0.9]", "data.conditional=true", "train.steps=7"])
    assert cfg.train.g_optim.betas == (0.0, 0.9) and cfg.data.conditional and cfg.train.steps == 7

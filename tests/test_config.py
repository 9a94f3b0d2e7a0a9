"""Run configs: every shipped YAML loads; overrides apply; bad keys and values name themselves."""

from __future__ import annotations

import pathlib

import pytest

from judgejax.config import ConfigFileError, load_config

CONFIGS = sorted((pathlib.Path(__file__).parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load(path):
    config = load_config(path)
    assert config.train.output_dir and config.model.path


def test_overrides_apply_with_yaml_types(tmp_path):
    config = load_config(CONFIGS[0], ["optim.learning_rate=2e-5", "train.steps=7", "data.bucket_lengths=[64,512]",
                                      "dpo.loss_type=ipo", "mesh.fsdp=2"])
    assert config.optim.learning_rate == 2e-5 and config.train.steps == 7
    assert config.data.bucket_lengths == (64, 512) and config.dpo.loss_type == "ipo" and config.mesh.fsdp == 2


@pytest.mark.parametrize("override, message", [
    ("optim.learning_rat=1e-5", r"unknown key optim.learning_rat \(known: learning_rate"),
    ("dpo.loss_type=kto", r"dpo.loss_type='kto'; choose one of \['sigmoid', 'ipo', 'hinge'\]"),
    ("train.steps=many", r"train.steps must be int, got 'many'"),
    ("optim.schedule=step", r"optim.schedule='step'"),
    ("data.max_length=4096", r"no bucket for rows of max_length 4096"),
    ("nonsense", r"expected key=value"),
])
def test_bad_values_name_the_key_and_file(override, message):
    with pytest.raises(ConfigFileError, match=message) as err:
        load_config(CONFIGS[0], [override])
    assert CONFIGS[0].name in str(err.value) or override == "nonsense"

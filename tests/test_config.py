"""Run configs: every shipped YAML loads; overrides apply; bad keys and values name themselves."""

from __future__ import annotations

import pathlib

import pytest

import yaml

from judgejax.config import ConfigFileError
from judgejax.train.config import load_config
from judgejax.pipeline.config import load_pipeline_config
from judgejax.sources.config import load_prepare_config

CONFIGS = sorted((pathlib.Path(__file__).parent.parent / "configs").glob("*.yaml"))
RUN_CONFIG = CONFIGS[0].parent / "smollm2-135m-dpo.yaml"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load(path):
    raw = yaml.safe_load(path.read_text())
    if "base_model" in raw:  # a pipeline config: its sft/dpo sections are checked as run configs too
        config, _ = load_pipeline_config(path)
        assert config.output_dir and config.eval.data
    elif "train" in raw:
        config = load_config(path)
        assert config.train.output_dir and config.model.path
    else:
        assert load_prepare_config(path).max_per_domain


def test_overrides_apply_with_yaml_types(tmp_path):
    config = load_config(RUN_CONFIG, ["optim.learning_rate=2e-5", "train.steps=7", "data.bucket_lengths=[64,512]",
                                      "dpo.loss_type=ipo", "mesh.fsdp=2"])
    assert config.optim.learning_rate == 2e-5 and config.train.steps == 7
    assert config.data.bucket_lengths == (64, 512) and config.dpo.loss_type == "ipo" and config.mesh.fsdp == 2


@pytest.mark.parametrize("override, message", [
    ("optim.learning_rat=1e-5", r"unknown key optim.learning_rat \(known: learning_rate"),
    ("dpo.loss_type=kto", r"dpo.loss_type='kto': Input should be 'sigmoid', 'ipo' or 'hinge'"),
    ("train.steps=many", r"train.steps='many': Input should be a valid integer"),
    ("mesh.data=[1]", r"mesh.data=\[1\]: Input should be a valid integer"),
    ("optim.schedule=step", r"optim.schedule='step'"),
    ("data.max_length=4096", r"no bucket for rows of max_length 4096"),
    ("nonsense", r"expected key=value"),
    ("model.lora.rnk=3", r"unknown key model.lora.rnk \(known: rank, alpha, dropout, targets, rslora, base_quant, block_size\)"),
    ("model.lora.targets=[q,x]", r"model.lora.targets.1='x': Input should be 'q', 'k', 'v', 'o', 'gate', 'up' or 'down'"),
    ("model.lora.rank=0", r"model.lora: rank=0 must be >= 1"),
])
def test_bad_values_name_the_key_and_file(override, message):
    with pytest.raises(ConfigFileError, match=message) as err:
        load_config(RUN_CONFIG, [override])
    assert RUN_CONFIG.name in str(err.value) or override == "nonsense"


def test_pipeline_eval_section_has_the_command_lines_defaults(tmp_path):
    from judgejax.cli import build_parser
    from judgejax.eval.options import JudgeSettings

    raw = yaml.safe_load((CONFIGS[0].parent / "demo-cpu.yaml").read_text())
    raw["eval"] = {"data": raw["eval"]["data"]}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw))
    section = load_pipeline_config(path)[0].eval.judge_settings()
    args = vars(build_parser().parse_args(["eval", "rewardbench", "--model", str(tmp_path), "--out", "o", "--data", "d"]))
    assert section == JudgeSettings().judge_settings() == {name: args[name] for name in section}

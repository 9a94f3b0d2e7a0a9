"""The numerics fields are declared once: the run config's model section hands exactly them to
ModelConfig, which checks them as the section does."""

from __future__ import annotations

import dataclasses

import pytest

from judgejax.config import ConfigFileError, build
from judgejax.model.config import ConfigError, LoraConfig, ModelConfig, Numerics
from judgejax.train.config import ModelSection

HF = {"architectures": ["LlamaForCausalLM"], "vocab_size": 64, "hidden_size": 16, "intermediate_size": 32,
      "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "rms_norm_eps": 1e-6,
      "rope_theta": 10000.0}


def test_the_section_hands_its_numerics_to_the_model_config():
    section = ModelSection("m", compute_dtype="bfloat16", remat="dots", unroll_layers=True, lora=LoraConfig(rank=4))
    assert section.numerics() == {"param_dtype": "float32", "compute_dtype": "bfloat16", "remat": "dots",
                                  "attention": "auto", "unroll_layers": True, "lora": LoraConfig(rank=4)}
    cfg = ModelConfig.from_hf(HF, **section.numerics())
    assert {f.name: getattr(cfg, f.name) for f in dataclasses.fields(Numerics)} == section.numerics()


def test_bad_numerics_are_refused_by_both():
    with pytest.raises(ConfigFileError, match=r"model.remat='some'"):
        build(ModelSection, {"path": "m", "remat": "some"}, "model", "run.yaml")
    with pytest.raises(ConfigError, match=r"remat='some'"):
        ModelConfig.from_hf(HF, remat="some")

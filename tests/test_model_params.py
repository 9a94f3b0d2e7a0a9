"""The model's typed parameter fields are exactly the parameters its config has, initialised as
a random model should be (norms one, biases zero, weights normal(0.02))."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from flax import nnx

from judgejax.model.config import ModelConfig, RopeConfig
from judgejax.model.llm import PARAM_AXES, CausalLM, param_shapes


def config(tie: bool, qkv_bias: bool, o_bias: bool, qk_norm: bool) -> ModelConfig:
    return ModelConfig(
        architecture="LlamaForCausalLM", vocab_size=200, hidden_size=32, intermediate_size=64,
        num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8, rms_norm_eps=1e-6,
        rope=RopeConfig(theta=10000.0), tie_word_embeddings=tie, qkv_bias=qkv_bias, o_bias=o_bias,
        qk_norm=qk_norm,
    )


@pytest.mark.parametrize("tie,qkv_bias,o_bias,qk_norm", list(itertools.product([False, True], repeat=4)))
def test_fields_match_param_shapes(tie, qkv_bias, o_bias, qk_norm):
    cfg = config(tie, qkv_bias, o_bias, qk_norm)
    state = nnx.to_pure_dict(nnx.state(CausalLM(cfg, rngs=nnx.Rngs(0))))
    got = {name: value for group in state.values() for name, value in group.items()}
    want = param_shapes(cfg)
    assert {n: v.shape for n, v in got.items()} == want
    assert set(state["layers"]) == {n for n in want if PARAM_AXES[n][0] == "layers"}
    for name, value in got.items():
        value = np.asarray(value)
        if "norm" in name:
            np.testing.assert_array_equal(value, 1.0)
        elif "bias" in name:
            np.testing.assert_array_equal(value, 0.0)
        else:
            assert abs(value.std() - 0.02) < 0.004, name

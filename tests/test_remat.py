"""Remat policies: the same loss and gradients under every policy, and each policy keeps what it
says for the backward pass (the residuals of `jax.vjp`: fewer under `full`, host memory under
`offload`), so a policy that is ignored fails."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from judgejax.model.build import init_model, model_from_params, params_of
from judgejax.model.config import REMAT_POLICIES, ConfigError, ModelConfig
from judgejax.sharding import MeshConfig, make_mesh

HF = dict(architectures=["Qwen2ForCausalLM"], vocab_size=64, hidden_size=32, intermediate_size=64,
          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
          tie_word_embeddings=False)
B, T = 2, 24


@pytest.fixture(scope="module")
def params():
    mesh = make_mesh(MeshConfig(data=1), jax.devices()[:1])
    return params_of(init_model(ModelConfig.from_hf(HF), mesh, seed=3))


def _loss(policy: str):
    cfg = ModelConfig.from_hf(HF, remat=policy)
    keys = jax.random.split(jax.random.key(1), 2)
    tokens = jax.random.randint(keys[0], (B, T), 0, HF["vocab_size"])
    segments = jnp.asarray(np.repeat([[1, 2], [0, 1]], T // 2, axis=1))  # packed; left-padded
    positions = jnp.broadcast_to(jnp.arange(T), (B, T))
    weights = jax.random.normal(keys[1], (B, T, HF["vocab_size"])) * (segments != 0)[..., None]

    def loss(p):
        logits, _ = model_from_params(cfg, p)(tokens, positions, segments)
        return jnp.sum(logits * weights)

    return loss


def _residuals(policy: str, params) -> list[jax.Array]:
    """The arrays the forward pass keeps for the backward pass (parameters included)."""
    _, vjp = jax.vjp(_loss(policy), params)
    return [x for x in jax.tree.leaves(vjp) if isinstance(x, jax.Array)]


@pytest.mark.parametrize("policy", [p for p in REMAT_POLICIES if p != "none"])
def test_every_policy_gives_the_same_loss_and_gradients(policy, params):
    loss, grads = jax.jit(jax.value_and_grad(_loss(policy)))(params)
    loss_ref, grads_ref = jax.jit(jax.value_and_grad(_loss("none")))(params)
    np.testing.assert_allclose(float(loss), float(loss_ref), rtol=1e-6)
    for g, g_ref in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), rtol=1e-5, atol=1e-5)
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads)) > 1e-2


def test_policies_keep_what_they_say(params):
    kept = {p: sum(x.size for x in _residuals(p, params)) for p in REMAT_POLICIES}
    # none keeps every intermediate; dots and names keep a few per layer; full only layer inputs.
    assert kept["none"] > kept["dots"] > kept["full"]
    assert kept["none"] > kept["names"] > kept["full"]
    assert kept["offload"] == kept["names"]  # the same activations, only elsewhere
    host = [x for x in _residuals("offload", params) if x.sharding.memory_kind == "pinned_host"]
    # q, k, v, attention, gate and up of both layers: B x T x (N + 2K) x H + B x T x N x H + 2 B x T x F.
    assert sum(x.size for x in host) == 2 * B * T * ((4 + 2 * 2) * 8 + 4 * 8 + 2 * 64)
    assert all(x.sharding.memory_kind != "pinned_host" for x in _residuals("names", params))


def test_an_unknown_policy_names_the_value_and_the_choices():
    with pytest.raises(ConfigError, match="remat='selective'; choose one of none, full, dots, names, offload"):
        ModelConfig.from_hf(HF, remat="selective")

"""Fewer KV heads than tensor shards: the K/V projections are replicated over the tensor axis and
attention repeats each KV head (judgejax.sharding.kv_heads_on_mesh); values, gradients and
greedy decoding equal one device's (and transformers')."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

from judgejax.model.build import params_of
from judgejax.model.hf_import import import_hf
from judgejax.sample.sampler import generate
from judgejax.sharding import MeshConfig, kv_heads_on_mesh, make_mesh, shard_batch
from judgejax.train.optimizer import OptimConfig, make_optimizer
from judgejax.train.state import create_state
from judgejax.train.steps import make_sft_step
from tiny_hf import make_tiny_hf

SHAPE = dict(num_attention_heads=4, hidden_size=32, intermediate_size=64, vocab_size=128)


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    """One KV head (MQA)."""
    path = tmp_path_factory.mktemp("mqa")
    return path, make_tiny_hf("qwen2-untied", path, num_key_value_heads=1, **SHAPE)


@pytest.fixture(scope="module")
def hf_gqa(tmp_path_factory):
    """Two KV heads: on 4 tensor shards each is repeated twice, and a wrong order of the copies
    (tiling instead of repeating) would pair query heads with the wrong KV head."""
    path = tmp_path_factory.mktemp("gqa")
    return path, make_tiny_hf("llama", path, num_key_value_heads=2, **SHAPE)


def test_kv_heads_on_mesh():
    assert [kv_heads_on_mesh(k, t) for k, t in [(4, 2), (1, 2), (2, 4), (4, 8), (3, 2)]] == [4, 2, 4, 8, 6]


def sft_batch(rows: int = 8, length: int = 16):
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, SHAPE["vocab_size"], size=(rows, length)).astype(np.int32)
    segments = np.ones_like(tokens)
    segments[::2, 12:] = 0
    return dict(tokens=tokens * segments, targets=np.roll(tokens, -1, axis=1) * segments,
                loss_mask=segments.astype(np.float32),
                positions=np.broadcast_to(np.arange(length, dtype=np.int32), tokens.shape).copy(), segment_ids=segments)


def train_two_steps(path, mesh):
    """Loss, gradient norm and parameters after two SFT steps, under `mesh` (jax.set_mesh)."""
    model = import_hf(path, mesh)
    tx = make_optimizer(OptimConfig(learning_rate=1e-2, warmup_steps=1), 10)
    state = create_state(params_of(model), tx)
    shardings = jax.tree.map(lambda x: x.sharding, state)
    with jax.set_mesh(mesh):
        step = jax.jit(make_sft_step(model.cfg, tx, chunk_size=8), in_shardings=(shardings, None),
                       out_shardings=(shardings, None), donate_argnums=0)
        batch = {k: v[None] for k, v in shard_batch(mesh, sft_batch()).items()}
        metrics = []
        for _ in range(2):
            state, m = step(state, batch)
            metrics.append((float(m["loss"]), float(m["grad_norm"])))
    return metrics, jax.tree.map(np.asarray, state.params), state


def test_one_kv_head_on_two_tensor_shards_equals_one_device(hf):
    path, _ = hf
    one = make_mesh(MeshConfig(data=1), devices=jax.devices()[:1])
    ref_metrics, ref_params, _ = train_two_steps(path, one)
    metrics, params, state = train_two_steps(path, make_mesh(MeshConfig(2, 2, 2)))
    np.testing.assert_allclose(metrics, ref_metrics, rtol=2e-5)
    # Adam moves each weight by ~lr = 1e-2 a step whatever its gradient's size: a wrong gradient
    # shows at that scale, summation order at 1e-5.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4), params, ref_params)
    k = state.params["layers"]["k_ldkh"]  # [layers, embed, kv_heads, head_dim]: the one KV head replicated
    assert k.addressable_shards[0].data.shape[2] == 1
    q = state.params["layers"]["q_ldnh"]  # query heads still split over tensor
    assert q.addressable_shards[0].data.shape[2] == 2


def test_sharded_greedy_decoding_with_repeated_kv_heads_matches_transformers(hf_gqa):
    path, torch_model = hf_gqa
    prompts = [[5, 17, 42, 8, 9, 11, 3], [7, 2], [60, 61, 62, 63, 1]]
    mesh = make_mesh(MeshConfig(1, 2, 4))
    with jax.set_mesh(mesh):
        completions = generate(import_hf(path, mesh), prompts, max_new_tokens=6, stop_ids=[], batch_multiple=2)
    for prompt, completion in zip(prompts, completions):
        with torch.no_grad():
            out = torch_model.generate(torch.tensor([prompt]), max_new_tokens=6, do_sample=False, eos_token_id=None,
                                       pad_token_id=0, attention_mask=torch.ones(1, len(prompt), dtype=torch.long))
        assert completion.tokens == out[0, len(prompt):].tolist()


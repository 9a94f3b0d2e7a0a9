"""The optimizer (global-norm clipping, AdamW with decoupled weight decay on matrices only, a
learning-rate schedule) equals torch's AdamW with clip_grad_norm_, step after step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from judgejax.train.optimizer import OptimConfig, decay_mask, make_optimizer

SHAPES = {"outer": {"embed_vd": (64, 16), "final_norm_d": (16,)},
          "layers": {"q_ldnh": (2, 16, 4, 4), "q_bias_lnh": (2, 4, 4), "attn_norm_ld": (2, 16)}}


def tree(seed: int, dtype, scale: float = 1.0):
    keys = iter(jax.random.split(jax.random.key(seed), 8))
    return {g: {n: (scale * jax.random.normal(next(keys), s)).astype(dtype) for n, s in part.items()}
            for g, part in SHAPES.items()}


def run(tx, params, steps: int, grad_scale: float):
    state = tx.init(params)
    update = jax.jit(tx.update)
    for i in range(steps):
        updates, state = update(tree(100 + i, params["outer"]["embed_vd"].dtype, grad_scale), state, params)
        params = optax.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize("grad_scale", [1.0, 1e-3])  # gradients clipped, not clipped
def test_optimizer_equals_torch_adamw(grad_scale):
    config = OptimConfig(learning_rate=1e-2, schedule="constant", weight_decay=0.1, grad_clip=1.0)
    params = tree(0, jnp.float32)
    got, state = run(make_optimizer(config, 4), params, 4, grad_scale)
    leaves = jax.tree.leaves(params)
    decays = jax.tree.leaves(decay_mask(params))
    assert sum(decays) == 2 and len(decays) == 5  # the embedding and q take weight decay; norms and biases not
    torch_params = [torch.nn.Parameter(torch.tensor(np.asarray(p))) for p in leaves]
    groups = [{"params": [p for p, d in zip(torch_params, decays) if d == decay], "weight_decay": 0.1 * decay}
              for decay in (True, False)]
    opt = torch.optim.AdamW(groups, lr=1e-2, betas=(config.b1, config.b2), eps=config.eps)
    for i in range(4):
        for p, g in zip(torch_params, jax.tree.leaves(tree(100 + i, jnp.float32, grad_scale))):
            p.grad = torch.tensor(np.asarray(g))
        torch.nn.utils.clip_grad_norm_(torch_params, 1.0)
        opt.step()
    for a, b in zip(jax.tree.leaves(got), torch_params):
        np.testing.assert_allclose(np.asarray(a), b.detach().numpy(), rtol=1e-5, atol=1e-6)
    mu = jax.tree.leaves(optax.tree_utils.tree_get(state, "mu"))
    assert all(m.dtype == jnp.float32 for m in mu)

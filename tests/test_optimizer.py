"""The fused AdamW equals optax's chain of global-norm clipping and AdamW, step after step, and
torch's AdamW with gradient clipping."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from judgejax.train.optimizer import OptimConfig, decay_mask, make_optimizer, schedule

SHAPES = {"outer": {"embed_vd": (64, 16), "final_norm_d": (16,)},
          "layers": {"q_ldnh": (2, 16, 4, 4), "q_bias_lnh": (2, 4, 4), "attn_norm_ld": (2, 16)}}


def tree(seed: int, dtype, scale: float = 1.0):
    keys = iter(jax.random.split(jax.random.key(seed), 8))
    return {g: {n: (scale * jax.random.normal(next(keys), s)).astype(dtype) for n, s in part.items()}
            for g, part in SHAPES.items()}


def optax_reference(config: OptimConfig, total_steps: int) -> optax.GradientTransformation:
    adamw = optax.adamw(schedule(config, total_steps), b1=config.b1, b2=config.b2, eps=config.eps,
                        weight_decay=config.weight_decay, mask=decay_mask, mu_dtype=jnp.float32)
    return optax.chain(optax.clip_by_global_norm(config.grad_clip), adamw) if config.grad_clip else adamw


def run(tx, params, steps: int, grad_scale: float):
    state = tx.init(params)
    update = jax.jit(tx.update)
    for i in range(steps):
        updates, state = update(tree(100 + i, params["outer"]["embed_vd"].dtype, grad_scale), state, params)
        params = optax.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("grad_clip, grad_scale", [(1.0, 1.0), (1.0, 1e-3), (0.0, 1.0)])  # clipped, not, off
def test_fused_adamw_equals_optax_chain(dtype, grad_clip, grad_scale):
    config = OptimConfig(learning_rate=1e-2, warmup_steps=2, weight_decay=0.1, grad_clip=grad_clip)
    params = tree(0, dtype)
    got, got_state = run(make_optimizer(config, 6), params, 6, grad_scale)
    want, want_state = run(optax_reference(config, 6), params, 6, grad_scale)
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == jnp.float32 else dict(rtol=1e-2, atol=1e-2)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(np.float32(a), np.float32(b), **tol), got, want)
    adam = want_state[-1][0] if grad_clip else want_state[0]
    for mine, theirs in ((got_state.mu, adam.mu), (got_state.nu, adam.nu)):
        jax.tree.map(lambda a, b: (a.dtype == b.dtype) or pytest.fail(f"{a.dtype} != {b.dtype}"), mine, theirs)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(np.float32(a), np.float32(b), **tol), mine, theirs)
    assert int(got_state.count) == 6
    moved = [float(jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32)).max())
             for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(params))]
    assert min(moved) > 0  # every parameter was updated


def test_fused_adamw_equals_torch():
    config = OptimConfig(learning_rate=1e-2, schedule="constant", weight_decay=0.0, grad_clip=1.0)
    params = tree(0, jnp.float32)
    got, _ = run(make_optimizer(config, 4), params, 4, 1.0)
    leaves = jax.tree.leaves(params)
    torch_params = [torch.nn.Parameter(torch.tensor(np.asarray(p))) for p in leaves]
    opt = torch.optim.AdamW(torch_params, lr=1e-2, betas=(config.b1, config.b2), eps=config.eps, weight_decay=0.0)
    for i in range(4):
        for p, g in zip(torch_params, jax.tree.leaves(tree(100 + i, jnp.float32))):
            p.grad = torch.tensor(np.asarray(g))
        torch.nn.utils.clip_grad_norm_(torch_params, 1.0)
        opt.step()
    for a, b in zip(jax.tree.leaves(got), torch_params):
        np.testing.assert_allclose(np.asarray(a), b.detach().numpy(), rtol=1e-5, atol=1e-6)

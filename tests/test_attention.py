"""Blocked causal attention is dense attention: same outputs and gradients on packed,
left-padded rows whose length is not a multiple of the block."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from judgejax.model import attention
from judgejax.model.llm import _mask


def packed_rows(T: int):
    """Row 0: three packed segments; row 1: left-padded by 37 slots, one segment."""
    segments = np.zeros((2, T), np.int32)
    segments[0, :90], segments[0, 90:250], segments[0, 250:] = 1, 2, 3
    segments[1, 37:] = 1
    return jnp.asarray(segments)


@pytest.mark.parametrize("block", [64, 128])
def test_blocked_equals_dense_values_and_grads(block):
    T, K, G, H = 300, 2, 3, 16
    keys = jax.random.split(jax.random.key(0), 4)
    q = jax.random.normal(keys[0], (2, T, K, G, H))
    k = jax.random.normal(keys[1], (2, T, K, H))
    v = jax.random.normal(keys[2], (2, T, K, H))
    segments = packed_rows(T)
    slots = jnp.arange(T)
    mask = _mask(slots, slots, segments, segments)
    real = np.asarray(segments != 0)
    weights = jax.random.normal(keys[3], (2, T, K, G, H)) * real[:, :, None, None, None]

    def loss(fn, q, k, v):
        return jnp.sum(fn(q, k, v, mask, 0.25) * weights)

    blocked = lambda *a: attention.causal(*a, block=block)  # noqa: E731
    out_b, out_d = blocked(q, k, v, mask, 0.25), attention.dense(q, k, v, mask, 0.25)
    np.testing.assert_allclose(np.asarray(out_b)[real], np.asarray(out_d)[real], atol=2e-6)
    grads_b = jax.grad(lambda *a: loss(blocked, *a), argnums=(0, 1, 2))(q, k, v)
    grads_d = jax.grad(lambda *a: loss(attention.dense, *a), argnums=(0, 1, 2))(q, k, v)
    for gb, gd in zip(grads_b, grads_d):
        np.testing.assert_allclose(np.asarray(gb), np.asarray(gd), atol=2e-5)
        assert float(jnp.abs(gd).max()) > 1e-3  # the gradients are not trivially zero

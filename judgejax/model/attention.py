"""Grouped-query attention over a causal mask, in query blocks, optionally also over keys
computed earlier (a KV cache, a prefix every row shares).

Query block i only attends to its own keys up to the end of block i: keys after it are masked by
causality, so they are never scored. This skips half of the score matrix and keeps at most a
[batch, heads, block, keys] slab of float32 scores alive instead of [batch, heads, T, T], with
the same softmax over the same unmasked keys as dense attention.

Earlier keys come as separate parts, each scored on its own and joined in one softmax, so a cache
is read where it lies (never copied to append the new keys), and a prefix shared by every row is
stored once for the whole batch instead of once per row. Their keys are stored
[B, K, H, S] and values [B, K, S, H], so that each (row, kv head) is a plain matrix product with
no transposed copy of the cache.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp

BLOCK = 128  # query rows per block; fastest of 128/256/512 on CPU, and a tile size on accelerators
MASK_VALUE = -0.7 * float(jnp.finfo(jnp.float32).max)

# (keys, values, mask): keys [B, K, H, S] and values [B, K, S, H], or [K, H, S] and [K, S, H] when
# every row shares them; mask [B, T, S] (True where allowed) or None when every query may see every key.
Context = tuple[jax.Array, jax.Array, jax.Array | None]


def segment_mask(q_segments_bt, k_segments_bs) -> jax.Array:
    """[B, T, S]: True where query t may see key s by segments alone: the same segment, and never
    segment 0 (padding, empty cache slots). Causality is the caller's."""
    return (q_segments_bt[:, :, None] == k_segments_bs[:, None, :]) & (k_segments_bs[:, None, :] != 0)


def blocks(T: int, block: int = BLOCK) -> list[tuple[int, int]]:
    """(start, stop) of each query block of a T-token sequence; block i sees keys [0, stop)."""
    return [(start, min(start + block, T)) for start in range(0, T, block)] if T > block else [(0, T)]


def _join(per_block: list[jax.Array]) -> jax.Array:
    """Per-query-block results joined along the query axis (axis 3 of [B, K, G, T, ...])."""
    return per_block[0] if len(per_block) == 1 else jnp.concatenate(per_block, axis=3)


def _scores(q_bkgth, k_bkhs, mask_bts):
    scores = jnp.einsum("bkgth,bkhs->bkgts", q_bkgth, k_bkhs, preferred_element_type=jnp.float32)
    return scores if mask_bts is None else jnp.where(mask_bts[:, None, None], scores, MASK_VALUE)


def _weighted(weights_bkgts, v_bksh):
    return jnp.einsum("bkgts,bksh->bkgth", weights_bkgts, v_bksh.astype(weights_bkgts.dtype),
                      preferred_element_type=jnp.float32)


def _per_row(x, rows: int):
    """A shared part's keys or values with the batch axis (broadcast: XLA:CPU multiplies a
    batched operand faster than it folds the rows into the other one)."""
    return x if x.ndim == 4 else jnp.broadcast_to(x, (rows, *x.shape))


def causal(q_btkgh, k_btkh, v_btkh, mask_btt, scale: float, context: Sequence[Context] = (),
           block: int = BLOCK):
    """Softmax attention where query t and key t are the same slot and `mask_btt` (True where
    allowed) is causal: it never allows a key after its query. Each query also sees the `context`
    parts in full (their masks cut to the query block). Query rows whose keys are all masked
    (padding) get an unspecified output.

    Queries, keys and values are put head-major once ([B, K, G, T, H], [B, K, S, H]), so each
    block is plain batched matrix products; the softmax is normalised after the weighted sum
    (one pass less over the scores). Without context (training), the backward pass is the
    flash-attention one: it keeps the output and each row's log-sum-exp, not the probabilities,
    and recomputes each block's scores."""
    if not context:
        return _self_causal(q_btkgh, k_btkh, v_btkh, mask_btt, scale, block)
    return _forward(q_btkgh, k_btkh, v_btkh, mask_btt, scale, context, block)[0]


def _head_major(q_btkgh, k_btkh, v_btkh, scale: float):
    return (q_btkgh * scale).transpose(0, 2, 3, 1, 4), k_btkh.transpose(0, 2, 3, 1), v_btkh.transpose(0, 2, 1, 3)


def _forward(q_btkgh, k_btkh, v_btkh, mask_btt, scale: float, context: Sequence[Context], block: int):
    """The attention output [B, T, K, G, H] and each query's log-sum-exp of its scores [B, K, G, T]."""
    q_bkgth, k_bkhs, v_bksh = _head_major(q_btkgh, k_btkh, v_btkh, scale)
    outs, lses = [], []
    for start, stop in blocks(q_btkgh.shape[1], block):
        q = q_bkgth[:, :, :, start:stop]
        parts = [(_per_row(k, q.shape[0]), _per_row(v, q.shape[0]), None if m is None else m[:, start:stop])
                 for k, v, m in context]
        parts.append((k_bkhs[..., :stop], v_bksh[:, :, :stop], mask_btt[:, start:stop, :stop]))
        scores = [_scores(q, k, m) for k, _, m in parts]
        # Any shift gives the same softmax: no gradient flows through the maximum.
        top = jax.lax.stop_gradient(functools.reduce(jnp.maximum, [s.max(axis=-1, keepdims=True) for s in scores]))
        weights = [jnp.exp(s - top) for s in scores]
        total = sum(w.sum(axis=-1, keepdims=True) for w in weights)
        out = sum(_weighted(w.astype(q.dtype), v) for w, (_, v, _) in zip(weights, parts))
        outs.append((out / total).astype(q.dtype))
        lses.append((top + jnp.log(total))[..., 0])
    return _join(outs).transpose(0, 3, 1, 2, 4), _join(lses)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _self_causal(q_btkgh, k_btkh, v_btkh, mask_btt, scale: float, block: int):
    return _forward(q_btkgh, k_btkh, v_btkh, mask_btt, scale, (), block)[0]


def _self_causal_fwd(q_btkgh, k_btkh, v_btkh, mask_btt, scale: float, block: int):
    out_btkgh, lse_bkgt = _forward(q_btkgh, k_btkh, v_btkh, mask_btt, scale, (), block)
    return out_btkgh, (q_btkgh, k_btkh, v_btkh, mask_btt, out_btkgh, lse_bkgt)


def _self_causal_bwd(scale: float, block: int, residuals, d_out_btkgh):
    """Per query block: the probabilities from the recomputed scores and the saved log-sum-exp,
    then dV += P^T dO, dS = P * (dO V^T - rowsum(dO * O)), dQ = dS K, dK += dS^T Q."""
    # The barrier keeps XLA from merging the recomputed scores with the forward's (which would keep them alive).
    q_btkgh, k_btkh, v_btkh, mask_btt, out_btkgh, lse_bkgt = jax.lax.optimization_barrier(residuals)
    dtype = q_btkgh.dtype
    q_bkgth, k_bkhs, v_bksh = _head_major(q_btkgh, k_btkh, v_btkh, scale)
    d_out_bkgth = d_out_btkgh.astype(dtype).transpose(0, 2, 3, 1, 4)
    delta_bkgt = jnp.einsum("btkgh,btkgh->bkgt", d_out_btkgh.astype(jnp.float32), out_btkgh.astype(jnp.float32))
    d_k_bkhs = jnp.zeros(k_bkhs.shape, jnp.float32)
    d_v_bksh = jnp.zeros(v_bksh.shape, jnp.float32)
    d_qs = []
    for start, stop in blocks(q_btkgh.shape[1], block):
        q, d_out = q_bkgth[:, :, :, start:stop], d_out_bkgth[:, :, :, start:stop]
        k, v = k_bkhs[..., :stop], v_bksh[:, :, :stop]
        probs = jnp.exp(_scores(q, k, mask_btt[:, start:stop, :stop]) - lse_bkgt[..., start:stop, None])
        d_v_bksh = d_v_bksh.at[:, :, :stop].add(
            jnp.einsum("bkgts,bkgth->bksh", probs.astype(dtype), d_out, preferred_element_type=jnp.float32))
        d_probs = jnp.einsum("bkgth,bksh->bkgts", d_out, v, preferred_element_type=jnp.float32)
        d_scores = (probs * (d_probs - delta_bkgt[..., start:stop, None])).astype(dtype)
        d_qs.append(jnp.einsum("bkgts,bkhs->bkgth", d_scores, k, preferred_element_type=jnp.float32))
        d_k_bkhs = d_k_bkhs.at[..., :stop].add(
            jnp.einsum("bkgts,bkgth->bkhs", d_scores, q, preferred_element_type=jnp.float32))
    return ((_join(d_qs) * scale).transpose(0, 3, 1, 2, 4).astype(dtype),
            d_k_bkhs.transpose(0, 3, 1, 2).astype(k_btkh.dtype), d_v_bksh.transpose(0, 2, 1, 3).astype(v_btkh.dtype),
            None)


_self_causal.defvjp(_self_causal_fwd, _self_causal_bwd)

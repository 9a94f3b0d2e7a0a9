"""Per-token log-probabilities from final hidden states, chunked over the sequence axis.

The full [B, T, V] float32 logits are never built: the sequence is cut into chunks and only one
[B, chunk, V] block of logits is alive at a time, in the forward pass and in the backward pass
too, which recomputes each chunk's logits (a sequence of one chunk keeps its logits instead) and
turns them into both gradients in one pass (a custom VJP: autodiff of the log-softmax takes more
passes over the logits).
"""
import functools

import jax
import jax.numpy as jnp

from judgejax.model.llm import mask_padded_vocab


def token_logprobs(
    hidden_btd: jax.Array,
    unembed_dv: jax.Array,
    targets_bt: jax.Array,
    *,
    chunk_size: int = 1024,
    compute_dtype: jnp.dtype = jnp.float32,
    vocab_size: int | None = None,
) -> jax.Array:
    """Float32 log p(targets_bt[b, t] | hidden_btd[b, t]) for every position, shape [B, T].

    Logits are `hidden @ unembed` in `compute_dtype` (bf16 allowed) with float32 accumulation; the
    log-softmax runs in float32. The caller aligns positions: for a causal LM, pass the hidden
    states of positions 0..T-2 and the token ids of positions 1..T-1. A target outside [0, V)
    gives NaN, so padding positions must hold a valid id (e.g. the pad token) and be masked out
    with `sequence_logps`, which ignores masked positions even when they are NaN. With
    `vocab_size`, the unembedding's columns past it (vocabulary padding) get probability 0.
    """
    if hidden_btd.ndim != 3 or unembed_dv.ndim != 2 or targets_bt.ndim != 2:
        raise ValueError(
            "token_logprobs expects hidden [B, T, D], unembed [D, V], targets [B, T]; got "
            f"{hidden_btd.shape}, {unembed_dv.shape}, {targets_bt.shape}"
        )
    batch, seq_len, dim = hidden_btd.shape
    if unembed_dv.shape[0] != dim or targets_bt.shape != (batch, seq_len):
        raise ValueError(
            f"token_logprobs shape mismatch: hidden {hidden_btd.shape}, unembed {unembed_dv.shape}, "
            f"targets {targets_bt.shape}"
        )
    if chunk_size < 1:
        raise ValueError(f"token_logprobs: chunk_size must be >= 1, got {chunk_size}")
    vocab = unembed_dv.shape[1] if vocab_size is None else vocab_size
    chunk = min(chunk_size, seq_len)
    num_chunks = -(-seq_len // chunk)
    pad = num_chunks * chunk - seq_len
    hidden_btd = jnp.pad(hidden_btd, ((0, 0), (0, pad), (0, 0)))
    targets_bt = jnp.pad(targets_bt, ((0, 0), (0, pad)))
    # [B, N*C, ...] -> [N, B, C, ...]: lax.map walks the leading chunk axis.
    hidden_nbcd = hidden_btd.reshape(batch, num_chunks, chunk, dim).swapaxes(0, 1)
    targets_nbc = targets_bt.reshape(batch, num_chunks, chunk).swapaxes(0, 1)
    logps_nbc = _chunked_logprobs(hidden_nbcd, unembed_dv.astype(compute_dtype), targets_nbc, vocab)
    return logps_nbc.swapaxes(0, 1).reshape(batch, num_chunks * chunk)[:, :seq_len]


def _rows(hidden_bcd: jax.Array, dtype) -> jax.Array:
    """A chunk's hidden states as the rows [B*C, D] of 2-D matmuls (XLA:CPU runs those faster
    than the same products as 3-D einsums)."""
    return hidden_bcd.reshape(-1, hidden_bcd.shape[-1]).astype(dtype)


def _logits(hidden_bcd: jax.Array, unembed_dv: jax.Array, vocab: int) -> jax.Array:
    """Float32 logits [B*C, V] of a chunk, -inf past `vocab`."""
    rows_xd = _rows(hidden_bcd, unembed_dv.dtype)
    return mask_padded_vocab(jnp.matmul(rows_xd, unembed_dv, preferred_element_type=jnp.float32), vocab)


def _valid(targets_bc: jax.Array, vocab: int) -> jax.Array:
    return (targets_bc >= 0) & (targets_bc < vocab)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _chunked_logprobs(hidden_nbcd, unembed_dv, targets_nbc, vocab: int) -> jax.Array:
    """log p(target) [N, B, C] for each chunk of hidden states [N, B, C, D] (NaN where the
    target is outside [0, vocab))."""
    return _forward(hidden_nbcd, unembed_dv, targets_nbc, vocab)[0]


def _chunk_logprobs(logits_xv, targets_bc, vocab: int):
    """log p(target) [B, C] (NaN for an invalid target) and the log-sum-exp [B, C] of a chunk."""
    lse_x = jax.nn.logsumexp(logits_xv, axis=-1)
    target_x = jnp.take_along_axis(logits_xv, targets_bc.reshape(-1, 1), axis=-1, mode="clip")[:, 0]
    logps_bc = (target_x - lse_x).reshape(targets_bc.shape)
    return jnp.where(_valid(targets_bc, vocab), logps_bc, jnp.nan), lse_x.reshape(targets_bc.shape)


def _forward(hidden_nbcd, unembed_dv, targets_nbc, vocab: int):
    if hidden_nbcd.shape[0] == 1:
        # One chunk: its logits are alive whole in the forward pass anyway, and kept for the
        # backward pass (which starts with them) they add nothing to the step's peak.
        logits_xv = _logits(hidden_nbcd[0], unembed_dv, vocab)
        logps_bc, lse_bc = _chunk_logprobs(logits_xv, targets_nbc[0], vocab)
        return logps_bc[None], (hidden_nbcd, unembed_dv, targets_nbc, lse_bc[None], logits_xv)
    logps_nbc, lse_nbc = jax.lax.map(
        lambda xs: _chunk_logprobs(_logits(xs[0], unembed_dv, vocab), xs[1], vocab), (hidden_nbcd, targets_nbc))
    return logps_nbc, (hidden_nbcd, unembed_dv, targets_nbc, lse_nbc, None)


def _backward(vocab: int, residuals, cotangent_nbc):
    """d logp(y) / d logits = onehot(y) - softmax: each chunk's logits are recomputed (one
    matmul; a single chunk's are kept) and turned into both gradients in one pass, the
    unembedding's summed over chunks in float32."""
    # As jax.checkpoint does: the barrier keeps XLA from merging the backward's gathers of a
    # sharded unembedding with the forward's, which would keep the gathered table alive in between.
    hidden_nbcd, unembed_dv, targets_nbc, lse_nbc, kept_logits_xv = jax.lax.optimization_barrier(residuals)

    def chunk(d_unembed_dv, xs):
        hidden_bcd, targets_bc, lse_bc, cotangent_bc = xs
        g_x1 = jnp.where(_valid(targets_bc, vocab), cotangent_bc, 0.0).reshape(-1, 1)
        logits_xv = _logits(hidden_bcd, unembed_dv, vocab) if kept_logits_xv is None else kept_logits_xv
        onehot_xv = jnp.arange(logits_xv.shape[-1]) == targets_bc.reshape(-1, 1)
        d_logits_xv = (jnp.where(onehot_xv, g_x1, 0.0) - g_x1 * jnp.exp(logits_xv - lse_bc.reshape(-1, 1)))
        d_logits_xv = d_logits_xv.astype(unembed_dv.dtype)
        d_hidden_xd = jnp.einsum("xv,dv->xd", d_logits_xv, unembed_dv, preferred_element_type=jnp.float32)
        d_unembed_dv += jnp.matmul(_rows(hidden_bcd, unembed_dv.dtype).T, d_logits_xv,
                                   preferred_element_type=jnp.float32)
        return d_unembed_dv, d_hidden_xd.reshape(hidden_bcd.shape).astype(hidden_bcd.dtype)

    zeros_dv = jnp.zeros(unembed_dv.shape, jnp.float32)
    d_unembed_dv, d_hidden_nbcd = jax.lax.scan(chunk, zeros_dv, (hidden_nbcd, targets_nbc, lse_nbc, cotangent_nbc))
    return d_hidden_nbcd, d_unembed_dv.astype(unembed_dv.dtype), None


_chunked_logprobs.defvjp(_forward, _backward)


def sequence_logps(token_logps_bt: jax.Array, mask_bt: jax.Array) -> jax.Array:
    """Sum of the per-token log-probs over the positions where `mask_bt` is true: float32 [B]."""
    if token_logps_bt.shape != mask_bt.shape:
        raise ValueError(
            f"sequence_logps: token_logps {token_logps_bt.shape} and mask {mask_bt.shape} differ in shape"
        )
    kept_bt = jnp.where(mask_bt.astype(bool), token_logps_bt.astype(jnp.float32), 0.0)
    return kept_bt.sum(axis=-1)

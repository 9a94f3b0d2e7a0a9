"""Per-token log-probabilities from final hidden states, chunked over the sequence axis.

The full [B, T, V] float32 logits are never built: the sequence is cut into chunks and only one
[B, chunk, V] block of logits is alive at a time, in the forward pass and (through
`jax.checkpoint`, which recomputes each chunk's logits) in the backward pass too.
"""
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
    unembed_dv = unembed_dv.astype(compute_dtype)

    @jax.checkpoint
    def chunk_logprobs(xs: tuple[jax.Array, jax.Array]) -> jax.Array:
        hidden_bcd, targets_bc = xs
        logits_bcv = jnp.einsum(
            "bcd,dv->bcv",
            hidden_bcd.astype(compute_dtype),
            unembed_dv,
            preferred_element_type=jnp.float32,
        )
        logits_bcv = mask_padded_vocab(logits_bcv, vocab)
        target_logits_bc = jnp.take_along_axis(logits_bcv, targets_bc[..., None], axis=-1, mode="clip")[..., 0]
        logps_bc = target_logits_bc - jax.nn.logsumexp(logits_bcv, axis=-1)
        valid_bc = (targets_bc >= 0) & (targets_bc < vocab)
        return jnp.where(valid_bc, logps_bc, jnp.nan)

    logps_nbc = jax.lax.map(chunk_logprobs, (hidden_nbcd, targets_nbc))
    return logps_nbc.swapaxes(0, 1).reshape(batch, num_chunks * chunk)[:, :seq_len]


def sequence_logps(token_logps_bt: jax.Array, mask_bt: jax.Array) -> jax.Array:
    """Sum of the per-token log-probs over the positions where `mask_bt` is true: float32 [B]."""
    if token_logps_bt.shape != mask_bt.shape:
        raise ValueError(
            f"sequence_logps: token_logps {token_logps_bt.shape} and mask {mask_bt.shape} differ in shape"
        )
    kept_bt = jnp.where(mask_bt.astype(bool), token_logps_bt.astype(jnp.float32), 0.0)
    return kept_bt.sum(axis=-1)

"""Chunked token log-probs: values vs a float64 numpy log-softmax, gradients vs the unchunked
computation, and compiled temporary memory far below the full [B, T, V] float32 logits."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from judgejax.model.logprobs import sequence_logps, token_logprobs

B, T, D, V = 3, 37, 16, 50  # T is not a multiple of the chunk sizes tested


def _inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(B, T, D)).astype(np.float32)
    unembed = (rng.normal(size=(D, V)) / np.sqrt(D) * 3).astype(np.float32)
    targets = rng.integers(0, V, size=(B, T)).astype(np.int32)
    return hidden, unembed, targets


def _numpy_token_logprobs(hidden: np.ndarray, unembed: np.ndarray, targets: np.ndarray) -> np.ndarray:
    logits = hidden.astype(np.float64) @ unembed.astype(np.float64)
    top = logits.max(-1, keepdims=True)
    log_softmax = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
    return np.take_along_axis(log_softmax, targets[..., None], -1)[..., 0]


def _unchunked_token_logprobs(hidden: jax.Array, unembed: jax.Array, targets: jax.Array) -> jax.Array:
    log_softmax = jax.nn.log_softmax(jnp.einsum("btd,dv->btv", hidden, unembed), axis=-1)
    return jnp.take_along_axis(log_softmax, targets[..., None], -1)[..., 0]


@pytest.mark.parametrize("chunk_size", [1, 8, 16, 1024])
def test_matches_float64_reference(chunk_size: int) -> None:
    hidden, unembed, targets = _inputs()
    got = jax.jit(lambda h, w, t: token_logprobs(h, w, t, chunk_size=chunk_size))(hidden, unembed, targets)
    assert got.shape == (B, T) and got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), _numpy_token_logprobs(hidden, unembed, targets), rtol=1e-5, atol=1e-5)


def test_bf16_compute_accumulates_in_float32() -> None:
    hidden, unembed, targets = _inputs(1)
    bf16 = lambda x: np.asarray(jnp.asarray(x, jnp.bfloat16).astype(jnp.float32))  # noqa: E731
    got = token_logprobs(jnp.asarray(hidden), jnp.asarray(unembed), targets, chunk_size=8, compute_dtype=jnp.bfloat16)
    assert got.dtype == jnp.float32
    # Same products on bf16-rounded operands in float64: only float32 accumulation error remains.
    want = _numpy_token_logprobs(bf16(hidden), bf16(unembed), targets)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    # And the rounding is real: the float32 result differs from the bf16 one.
    assert np.abs(_numpy_token_logprobs(hidden, unembed, targets) - want).max() > 1e-3


@pytest.mark.parametrize("chunk_size", [8, 1024])  # recomputed chunks; one chunk, its logits kept
def test_gradients_match_unchunked(chunk_size: int) -> None:
    hidden, unembed, targets = _inputs(2)
    cotangent = np.random.default_rng(3).normal(size=(B, T)).astype(np.float32)

    def chunked(h, w):
        return (token_logprobs(h, w, targets, chunk_size=chunk_size) * cotangent).sum()

    def unchunked(h, w):
        return (_unchunked_token_logprobs(h, w, targets) * cotangent).sum()

    got = jax.jit(jax.grad(chunked, argnums=(0, 1)))(hidden, unembed)
    want = jax.jit(jax.grad(unchunked, argnums=(0, 1)))(hidden, unembed)
    for g, w in zip(got, want):
        assert np.abs(np.asarray(w)).max() > 1e-2
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-5)


def test_gradients_with_padded_vocabulary_and_invalid_targets_match_autodiff() -> None:
    """The custom backward pass against autodiff of the plain log-softmax over the real columns:
    padded columns get no gradient, masked positions (invalid ids) none either."""
    hidden, unembed, targets = _inputs(6)
    vocab = V - 7
    mask = np.random.default_rng(7).random((B, T)) < 0.7
    targets = np.where(mask, targets % vocab, -100)
    cotangent = np.random.default_rng(8).normal(size=(B, T)).astype(np.float32)

    def chunked(h, w):
        token = token_logprobs(h, w, targets, chunk_size=T, vocab_size=vocab)
        return (sequence_logps(token * cotangent, mask)).sum()

    def reference(h, w):
        return (_unchunked_token_logprobs(h, w[:, :vocab], np.where(mask, targets, 0)) * cotangent * mask).sum()

    got = jax.jit(jax.grad(chunked, argnums=(0, 1)))(hidden, unembed)
    want = jax.jit(jax.grad(reference, argnums=(0, 1)))(hidden, unembed)
    np.testing.assert_allclose(np.asarray(got[0]), np.asarray(want[0]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want[1]), rtol=1e-4, atol=1e-5)
    assert np.abs(np.asarray(want[1])[:, :vocab]).max() > 1e-2 and not np.asarray(got[1])[:, vocab:].any()


def test_bf16_gradients_follow_the_float32_ones() -> None:
    hidden, unembed, targets = _inputs(9)
    cotangent = np.random.default_rng(10).normal(size=(B, T)).astype(np.float32)

    def loss(dtype):
        return lambda h, w: (token_logprobs(h, w, targets, chunk_size=8, compute_dtype=dtype) * cotangent).sum()

    got = jax.grad(loss(jnp.bfloat16), argnums=(0, 1))(jnp.asarray(hidden), jnp.asarray(unembed))
    want = jax.grad(loss(jnp.float32), argnums=(0, 1))(jnp.asarray(hidden), jnp.asarray(unembed))
    for g, w in zip(got, want):
        assert g.dtype == jnp.float32  # the gradient of a float32 input, whatever the compute dtype
        scale = np.abs(np.asarray(w)).max()
        assert np.abs(np.asarray(g) - np.asarray(w)).max() < 3e-2 * scale


def test_sequence_logps_sums_masked_tokens_and_ignores_invalid_targets() -> None:
    hidden, unembed, targets = _inputs(4)
    mask = np.random.default_rng(5).random((B, T)) < 0.6
    targets = np.where(mask, targets, -100)  # padding carries an invalid id
    token = token_logprobs(hidden, unembed, targets, chunk_size=8)
    assert np.isnan(np.asarray(token)[~mask]).all()  # an unmasked invalid id would be loud
    got = sequence_logps(token, mask)
    ref = _numpy_token_logprobs(hidden, unembed, np.where(mask, targets, 0))
    np.testing.assert_allclose(np.asarray(got), (ref * mask).sum(-1), rtol=1e-5, atol=1e-4)
    grad = jax.grad(lambda h: sequence_logps(token_logprobs(h, unembed, targets, chunk_size=8), mask).sum())(hidden)
    assert np.isfinite(np.asarray(grad)).all()


def test_bad_shapes_are_rejected() -> None:
    hidden, unembed, targets = _inputs()
    with pytest.raises(ValueError, match="shape mismatch"):
        token_logprobs(hidden, unembed[:-1], targets)
    with pytest.raises(ValueError, match="differ in shape"):
        sequence_logps(jnp.zeros((B, T)), jnp.ones((B, T + 1), bool))


def test_compiled_temp_memory_is_far_below_full_logits() -> None:
    b, t, d, v = 2, 512, 64, 32768
    full_logits_bytes = b * t * v * 4
    args = (
        jax.ShapeDtypeStruct((b, t, d), jnp.float32),
        jax.ShapeDtypeStruct((d, v), jnp.float32),
        jax.ShapeDtypeStruct((b, t), jnp.int32),
    )

    def temp_bytes(fn) -> int:
        return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes

    def chunked(h, w, y):
        return token_logprobs(h, w, y, chunk_size=64).sum()

    def unchunked(h, w, y):
        return _unchunked_token_logprobs(h, w, y).sum()

    # The measurement sees the logits when they are materialised ...
    assert temp_bytes(unchunked) >= full_logits_bytes
    assert temp_bytes(jax.grad(unchunked, argnums=(0, 1))) >= full_logits_bytes
    # ... and the chunked version holds a few [B, 64, V] blocks, forward and backward.
    assert temp_bytes(chunked) < full_logits_bytes / 4
    assert temp_bytes(jax.grad(chunked, argnums=(0, 1))) < full_logits_bytes / 2

"""Rotary position embedding in Hugging Face's rotate-half layout (no weight permutation)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from judgejax.model.config import RopeConfig


def inverse_frequencies(rope: RopeConfig, head_dim: int) -> np.ndarray:
    """Per-pair inverse frequencies [head_dim // 2], float32, as transformers computes them."""
    exponents = np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / head_dim
    inv_freq = (1.0 / (rope.theta**exponents)).astype(np.float32)
    if rope.kind == "default":
        return inv_freq
    # Llama-3.x: long wavelengths are slowed by `factor`, a smooth ramp between the two cut-offs.
    old_len = rope.original_max_position_embeddings
    low_freq_wavelen = old_len / rope.low_freq_factor
    high_freq_wavelen = old_len / rope.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = np.where(wavelen > low_freq_wavelen, inv_freq / rope.factor, inv_freq)
    smooth = (old_len / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor)
    smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled
    medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return np.where(medium, smoothed, scaled).astype(np.float32)


def apply_rope(x_btnh: jax.Array, positions_bt: jax.Array, inv_freq_h: np.ndarray) -> jax.Array:
    """Rotate query or key heads by their positions; angles in float32."""
    angles_bth = positions_bt.astype(jnp.float32)[..., None] * jnp.asarray(inv_freq_h)
    angles_bth = jnp.concatenate([angles_bth, angles_bth], axis=-1)
    cos = jnp.cos(angles_bth)[:, :, None, :].astype(x_btnh.dtype)
    sin = jnp.sin(angles_bth)[:, :, None, :].astype(x_btnh.dtype)
    half = x_btnh.shape[-1] // 2
    rotated = jnp.concatenate([-x_btnh[..., half:], x_btnh[..., :half]], axis=-1)
    return x_btnh * cos + rotated * sin

"""Block-wise quantisation of a frozen base's projections (QLoRA): each run of `block` values along
a weight's last axis shares one float32 absmax scale; a value is stored as a uint8 code, the
nearest of the 16 NF4 levels (QLoRA's normal-float codebook, as bitsandbytes publishes it) or a
symmetric int8 step of absmax / 127. The code array has the weight's shape and axes (one byte a
value: NF4 codes are not packed two to a byte); the scales have the weight's axes with the last one
`block` times shorter. Dequantised inside the projection, one layer at a time."""

from __future__ import annotations

import jax
import jax.numpy as jnp

# bitsandbytes' `get_4bit_type("nf4")`: quantiles of N(0, 1) scaled to [-1, 1], zero exact.
NF4 = (-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
       -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
       0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
       0.7229568362236023, 1.0)
KINDS = ("nf4", "int8")


def _blocks(w: jax.Array, block: int) -> jax.Array:
    return w.reshape(*w.shape[:-1], w.shape[-1] // block, block)


def quantize(w: jax.Array, kind: str, block: int) -> tuple[jax.Array, jax.Array]:
    """(uint8 codes shaped as w, float32 scales [..., last / block])."""
    blocks = _blocks(w.astype(jnp.float32), block)
    scale = jnp.max(jnp.abs(blocks), axis=-1)
    normed = blocks / jnp.where(scale == 0, 1.0, scale)[..., None]
    if kind == "nf4":
        codes = jnp.argmin(jnp.abs(normed[..., None] - jnp.asarray(NF4, jnp.float32)), axis=-1)
    else:
        codes = jnp.round(normed * 127.0).astype(jnp.int32) + 127
    return codes.astype(jnp.uint8).reshape(w.shape), scale


def dequantize(codes: jax.Array, scale: jax.Array, kind: str, dtype) -> jax.Array:
    """The weight in `dtype` from its codes and block scales."""
    block = codes.shape[-1] // scale.shape[-1]
    if kind == "nf4":
        values = jnp.asarray(NF4, jnp.float32)[codes.astype(jnp.int32)]
    else:
        values = (codes.astype(jnp.float32) - 127.0) / 127.0
    return (_blocks(values, block) * scale[..., None]).reshape(codes.shape).astype(dtype)

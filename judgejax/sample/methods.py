"""Token selection rules: small frozen dataclasses, each a pure function of the logits."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Greedy:
    def __call__(self, logits_bv: jax.Array, key: jax.Array) -> jax.Array:
        return jnp.argmax(logits_bv, axis=-1).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class Sample:
    """Temperature sampling, optionally restricted to the top-k tokens and/or the top-p mass."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature={self.temperature}: must be > 0 (use Greedy for 0)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p}: must be in (0, 1]")
        if self.top_k < 0:
            raise ValueError(f"top_k={self.top_k}: must be >= 0 (0 = off)")

    def __call__(self, logits_bv: jax.Array, key: jax.Array) -> jax.Array:
        logits = logits_bv.astype(jnp.float32) / self.temperature
        if self.top_k:
            kth = jax.lax.top_k(logits, self.top_k)[0][:, -1:]
            logits = jnp.where(logits < kth, -jnp.inf, logits)
        if self.top_p < 1.0:
            sorted_desc = jnp.sort(logits, axis=-1)[:, ::-1]
            probs = jax.nn.softmax(sorted_desc, axis=-1)
            mass_before = jnp.cumsum(probs, axis=-1) - probs
            # The smallest logit still inside the nucleus; the top token is always kept.
            kept = jnp.where(mass_before < self.top_p, sorted_desc, jnp.inf)
            cutoff = jnp.min(kept, axis=-1, keepdims=True)
            logits = jnp.where(logits < cutoff, -jnp.inf, logits)
        return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


def method_from_config(temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0) -> Greedy | Sample:
    if temperature == 0.0:
        return Greedy()
    return Sample(temperature=temperature, top_k=top_k, top_p=top_p)

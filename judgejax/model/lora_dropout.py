"""LoRA dropout, as PEFT's `lora_dropout`: while training, an adapter's input x is dropped with
probability p and the rest scaled by 1 / (1 - p) before A (y = W x + scale B A dropout(x)); the
base matmul sees x whole. Every decoder layer and every adapted projection draws its own mask, as
each PEFT LoRA module has its own dropout: the train step folds the step number and the
micro-batch into one key, `layer_keys` gives each layer its key, `mask` each projection's."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from judgejax.model.config import LORA_TARGETS, ModelConfig

_SEED = 0  # the stream every run's dropout draws from; a key per step is folded from it


def step_key(cfg: ModelConfig, step: jax.Array, micro: jax.Array) -> jax.Array | None:
    """The key of micro-batch `micro` of train step `step`, or None when `cfg` has no dropout."""
    if cfg.lora is None or cfg.lora.dropout == 0.0:
        return None
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(_SEED), step), micro)


def layer_keys(key: jax.Array, num_layers: int) -> jax.Array:
    """One key per decoder layer, [L]: what the scan over the layers hands each one."""
    return jax.random.split(key, num_layers)


def mask(layer_key: jax.Array, name: str, shape: tuple[int, ...], rate: float, dtype) -> jax.Array:
    """The multiplier of projection `name`'s (a parameter table name, `q_ldnh`...) adapter input in
    one layer: 0 where dropped, 1 / (1 - rate) where kept."""
    key = jax.random.fold_in(layer_key, LORA_TARGETS.index(name.split("_")[0]))
    keep = jax.random.bernoulli(key, 1.0 - rate, shape)
    return jnp.where(keep, 1.0 / (1.0 - rate), 0.0).astype(dtype)

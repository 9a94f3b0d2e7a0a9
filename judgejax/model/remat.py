"""Remat policies: what a decoder layer's forward pass keeps for its backward pass.

- `none`: everything the backward pass needs (no recomputation, most memory);
- `full`: only the layer's input; the whole layer is recomputed;
- `dots`: the outputs of the weight matmuls (dots without batch dimensions: q/k/v, attention
  out-projection, gate/up); norms, RoPE and attention itself are recomputed;
- `names`: the activations the layer tags with `tag` (SAVED_NAMES: q, k, v after RoPE, the
  attention output, gate, up); the rest is recomputed;
- `offload`: those same activations, copied to host memory in the forward pass and back in the
  backward pass instead of kept on the device (runs on CPU too, where both are the same RAM).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from jax.ad_checkpoint import checkpoint_name

from judgejax.model.config import REMAT_POLICIES, ConfigError

SAVED_NAMES = ("q", "k", "v", "attention", "gate", "up")


def tag(x: jax.Array, name: str) -> jax.Array:
    """Mark activation `x` as one of SAVED_NAMES (a no-op outside the named policies)."""
    return checkpoint_name(x, name)


def _policy(name: str):
    policies = jax.checkpoint_policies
    if name == "full":
        return policies.nothing_saveable
    if name == "dots":
        return policies.dots_with_no_batch_dims_saveable
    if name == "names":
        return policies.save_only_these_names(*SAVED_NAMES)
    return policies.save_and_offload_only_these_names(
        names_which_can_be_saved=(), names_which_can_be_offloaded=SAVED_NAMES,
        offload_src="device", offload_dst="pinned_host")


def apply(layer: Callable, policy: str) -> Callable:
    """`layer` under remat `policy` (one of REMAT_POLICIES)."""
    if policy not in REMAT_POLICIES:
        raise ConfigError(f"remat={policy!r}; choose one of {', '.join(REMAT_POLICIES)}")
    if policy == "none":
        return layer
    return jax.checkpoint(layer, prevent_cse=False, policy=_policy(policy))

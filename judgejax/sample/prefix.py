"""Prompt prefixes shared by a whole batch, computed once.

Judge prompts start with the same tokens (the chat template's system turn and the template's
instructions): pair-v2's take about 190 of SmolLM2's tokens. The tokens every prompt of a batch
starts with are run through the model once, for one row, and every row attends to those keys and
values (`sampler.prefill(prefix=...)`); each row prefills only the rest of its prompt. The last
prefix is kept, so batch after batch of one template reuses it.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from judgejax.model.llm import PREFIX_K_AXES, PREFIX_V_AXES, CausalLM, SharedPrefix
from judgejax.sharding import constrain

# Prefix lengths are rounded down to a multiple of this (few compiled shapes).
MULTIPLE = 16


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _shared_prefix(graphdef, state, tokens_bp) -> SharedPrefix:
    """The keys and values of the prefix `tokens_bp` holds in every row (as many identical rows as
    the data axes split); row 0's are kept."""
    model: CausalLM = nnx.merge(graphdef, state)
    positions_bp = jnp.broadcast_to(jnp.arange(tokens_bp.shape[1]), tokens_bp.shape)
    _, (k_lbpkh, v_lbpkh) = model.keys_values(tokens_bp, positions_bp, jnp.ones_like(tokens_bp))
    return SharedPrefix(constrain(k_lbpkh[:, 0].transpose(0, 2, 3, 1), PREFIX_K_AXES),
                        constrain(v_lbpkh[:, 0].transpose(0, 2, 1, 3), PREFIX_V_AXES))


def shared_length(prompts: Sequence[Sequence[int]], multiple: int = MULTIPLE) -> int:
    """How many leading tokens every prompt shares, rounded down to a multiple of `multiple`
    and leaving at least one token of every prompt (whose last position must be computed); 0 for
    a single prompt (nothing to share, and its length would be one more compiled shape)."""
    if len(prompts) < 2:
        return 0
    common = len(os.path.commonprefix([list(p) for p in prompts]))
    common = min(common, min(len(p) for p in prompts) - 1)
    return max(common, 0) // multiple * multiple


class PrefixCache:
    """Splits a batch of prompts into the prefix they share and their own rests, with the
    prefix's keys and values; keeps the last prefix computed. `share=False` never shares
    (every prompt is prefilled whole)."""

    def __init__(self, model: CausalLM, batch_multiple: int = 1, share: bool = True):
        self.model, self.batch_multiple, self.share = model, batch_multiple, share
        self.tokens: tuple[int, ...] = ()  # the prefix kept (empty: none yet)
        self._prefix: SharedPrefix | None = None

    def split(self, prompts: Sequence[Sequence[int]]) -> tuple[SharedPrefix | None, list[list[int]]]:
        length = shared_length(prompts) if self.share else 0
        if length == 0:
            return None, [list(p) for p in prompts]
        tokens = tuple(prompts[0][:length])
        if tokens != self.tokens:
            rows = np.broadcast_to(np.asarray(tokens, np.int32), (self.batch_multiple, length))
            graphdef, state = nnx.split(self.model)
            self._prefix = _shared_prefix(graphdef, state, rows)
            self.tokens = tokens
        return self._prefix, [list(p[length:]) for p in prompts]

"""Batched generation: one jitted prefill over left-padded prompts, then a `lax.while_loop`
decode over the per-layer KV cache until every row stops, reaches max_new_tokens, or the cache
is full. Each row reports why it finished. The tokens every prompt starts with are computed once
for the batch (`judgejax.sample.prefix`)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from judgejax.model.llm import CausalLM, SharedPrefix
from judgejax.sample.methods import Greedy, Sample
from judgejax.sample.prefix import PrefixCache
from judgejax.sharding import batch_sharding

FINISH_REASONS = ("running", "stop", "length", "cache_full")
RUNNING, STOP, LENGTH, CACHE_FULL = range(4)
# Prompt lengths compiled for: powers of two up to 256, then multiples of 128 and 512 (tile-sized
# on accelerators), so a prompt wastes at most a quarter of its bucket on padding.
DEFAULT_BUCKETS = (32, 64, 128, 192, 256, 384, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048,
                   2560, 3072, 3584, 4096)


@dataclasses.dataclass(frozen=True)
class Completion:
    tokens: list[int]  # generated tokens, the stop token included when finish_reason == "stop"
    finish_reason: str  # "stop", "length" or "cache_full"
    logprobs: list[float] | None  # log p(token) under the model (untempered), if asked for


def bucket_length(n: int, buckets: Sequence[int]) -> int:
    for b in sorted(buckets):
        if n <= b:
            return b
    raise ValueError(f"prompt of {n} tokens exceeds the largest bucket {max(buckets)}")


def left_pad(prompts: Sequence[Sequence[int]], length: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Tokens and segment ids (1 real, 0 pad) [rows, length]; rows beyond the prompts are
    one-token fillers dropped after generation."""
    tokens = np.zeros((rows, length), np.int32)
    segments = np.zeros((rows, length), np.int32)
    for i in range(rows):
        prompt = prompts[i] if i < len(prompts) else [0]
        tokens[i, length - len(prompt):] = prompt
        segments[i, length - len(prompt):] = 1
    return tokens, segments


def prompt_positions(segments_bp, prefix: SharedPrefix | None):
    """Positions of left-padded prompt rows that follow `prefix` (if any)."""
    offset = 0 if prefix is None else prefix.length
    return jnp.maximum(jnp.cumsum(segments_bp, axis=1) - 1, 0) + offset


@functools.partial(jax.jit, static_argnames=("graphdef", "method", "max_new_tokens", "capacity", "stop_ids"))
def _generate(graphdef, state, prefix: SharedPrefix | None, tokens_bp, segments_bp, key, *, method, max_new_tokens,
              capacity, stop_ids):
    model: CausalLM = nnx.merge(graphdef, state)
    batch = tokens_bp.shape[0]
    stops = jnp.asarray(stop_ids, jnp.int32)
    positions_bp = prompt_positions(segments_bp, prefix)
    # Prefill: only the last position's logits are needed, never [batch, prompt, vocab].
    hidden_btd, cache = model.prefill(tokens_bp, positions_bp, segments_bp, capacity, prefix)
    last_logits_bv = model.logits(hidden_btd[:, -1:])[:, 0]

    def pick(logits_bv, step):
        token = method(logits_bv, jax.random.fold_in(key, step))
        logprob = jnp.take_along_axis(jax.nn.log_softmax(logits_bv), token[:, None], axis=-1)[:, 0]
        return token, logprob

    def record(c, token, logprob):
        """Write each running row's new token, then mark the rows that stop here."""
        running = c["reason"] == RUNNING
        out = c["out"].at[:, c["step"]].set(jnp.where(running, token, -1))
        out_logprobs = c["out_logprobs"].at[:, c["step"]].set(jnp.where(running, logprob, 0.0))
        step = c["step"] + 1
        reason = jnp.where(running & jnp.isin(token, stops), STOP, c["reason"])
        reason = jnp.where((reason == RUNNING) & (step >= max_new_tokens), LENGTH, reason)
        reason = jnp.where((reason == RUNNING) & (c["cache"].index >= capacity), CACHE_FULL, reason)
        return c | dict(step=step, token=token, reason=reason, out=out, out_logprobs=out_logprobs)

    # The loop decodes only while a row runs (no conditional inside it, which would copy the cache).
    carry = record(dict(
        step=jnp.zeros((), jnp.int32),
        position=positions_bp[:, -1] + 1,
        cache=cache,
        reason=jnp.full((batch,), RUNNING, jnp.int32),
        out=jnp.full((batch, max_new_tokens), -1, jnp.int32),
        out_logprobs=jnp.zeros((batch, max_new_tokens), jnp.float32),
    ), *pick(last_logits_bv, 0))

    def body(c):
        segments = jnp.ones((batch, 1), jnp.int32)
        logits, cache = model(c["token"][:, None], c["position"][:, None], segments, c["cache"])
        token, logprob = pick(logits[:, 0], c["step"])
        return record(c | dict(position=c["position"] + 1, cache=cache), token, logprob)

    final = jax.lax.while_loop(lambda c: jnp.any(c["reason"] == RUNNING), body, carry)
    return final["out"], final["out_logprobs"], final["reason"]


def generate(
    model: CausalLM,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    method: Greedy | Sample = Greedy(),
    seed: int = 0,
    buckets: Sequence[int] = DEFAULT_BUCKETS,
    max_cache_len: int | None = None,
    batch_multiple: int = 1,
    return_logprobs: bool = False,
    prefixes: PrefixCache | None = None,
) -> list[Completion]:
    """Generate for token-id prompts. The tokens all prompts start with are computed once
    (through `prefixes`, which keeps the last prefix for later calls; default: a new one); the
    rest of each prompt is left-padded to the smallest bucket that fits (few recompilations); the
    batch is padded to a multiple of `batch_multiple` (the number of data-parallel shards). The
    cache holds prompt + max_new_tokens slots, capped at `max_cache_len`: a row that runs out of
    cache finishes with reason "cache_full"."""
    if not prompts:
        return []
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens}: must be >= 1")
    empty = [i for i, p in enumerate(prompts) if len(p) == 0]
    if empty:
        raise ValueError(f"prompt {empty[0]} is empty")
    prefix, rests = (prefixes or PrefixCache(model, batch_multiple)).split(prompts)
    shared = 0 if prefix is None else prefix.length
    length = bucket_length(max(len(p) for p in rests), buckets)
    capacity = length + max_new_tokens
    if max_cache_len is not None:
        if max_cache_len <= shared + length:
            raise ValueError(f"max_cache_len={max_cache_len} leaves no room after a {shared + length}-token prompt "
                             f"({shared} shared, a {length}-token bucket)")
        capacity = min(capacity, max_cache_len - shared)
    rows = -(-len(prompts) // batch_multiple) * batch_multiple
    tokens, segments = left_pad(rests, length, rows)
    mesh = model.outer.embed_vd[...].sharding.mesh
    if isinstance(mesh, jax.sharding.Mesh) and rows % (mesh.shape["data"] * mesh.shape["fsdp"]) == 0:
        tokens, segments = (jax.device_put(x, batch_sharding(mesh, 2)) for x in (tokens, segments))
    graphdef, state = nnx.split(model)
    out, out_logprobs, reason = jax.device_get(_generate(
        graphdef, state, prefix, tokens, segments, jax.random.key(seed),
        method=method, max_new_tokens=max_new_tokens, capacity=capacity, stop_ids=tuple(stop_ids),
    ))
    completions = []
    for i in range(len(prompts)):
        n = int((out[i] >= 0).sum())
        completions.append(Completion(
            tokens=out[i, :n].tolist(),
            finish_reason=FINISH_REASONS[int(reason[i])],
            logprobs=out_logprobs[i, :n].tolist() if return_logprobs else None,
        ))
    return completions

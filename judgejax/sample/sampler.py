"""Batched generation: one jitted prefill, then a `lax.while_loop` decode over the per-layer KV
cache until every row stops, reaches max_new_tokens, or the cache is full. Each row reports why it
finished. The loop runs `decode_chunk` steps between its stop checks: on a GPU each check is a
device-to-host sync, so chunks keep the device busy; a row that finishes inside a chunk keeps its
output as of that step (later steps are masked). The tokens every prompt starts with are computed once for the batch
(`judgejax.sample.prefix`) and the rest of the prompts are prefilled packed into rows
(`judgejax.sample.packing`). Given a memory budget (on CPU, where the devices are this host's
memory), a batch whose compiled program XLA plans beyond it is generated in two halves, down to
one prompt per data shard (`judgejax.budget`)."""

from __future__ import annotations

import dataclasses
import functools
import sys
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from judgejax.budget import MemoryBudgetError, gb, planned_bytes
from judgejax.model.llm import CACHE_K_AXES, CACHE_V_AXES, CausalLM, KVCache, SharedPrefix, cache_layout
from judgejax.sample.buckets import DEFAULT_BUCKETS
from judgejax.sample.methods import Greedy, Sample
from judgejax.sample.packing import PackedPrompts, pack_prompts
from judgejax.sample.prefix import PrefixCache
from judgejax.sharding import constrain, shard_batch

FINISH_REASONS = ("running", "stop", "length", "cache_full")
DECODE_CHUNK = 16  # decode steps between stop checks off the CPU (on the CPU a check costs nothing: 1)
RUNNING, STOP, LENGTH, CACHE_FULL = range(4)
PROGRAMS_KEPT = 8  # compiled programs kept for budgeted calls (jit does not reuse those compiled through `lower`)
_programs: dict[tuple, jax.stages.Compiled] = {}


@dataclasses.dataclass(frozen=True)
class Completion:
    tokens: list[int]  # generated tokens, the stop token included when finish_reason == "stop"
    finish_reason: str  # "stop", "length" or "cache_full"
    logprobs: list[float] | None  # log p(token) under the model (untempered), if asked for


def pack_batch(prefixes: PrefixCache, prompts: Sequence[Sequence[int]], *, shards: int, buckets: Sequence[int],
               pack: bool = True) -> tuple[SharedPrefix | None, PackedPrompts]:
    """The prefix `prompts` share (if any) and the rest of each packed for the prefill, the
    batch padded with fillers to a multiple of `shards` rows."""
    prefix, rests = prefixes.split(prompts)
    rows = -(-len(prompts) // shards) * shards
    return prefix, pack_prompts(rests, batch_rows=rows, shards=shards, buckets=buckets,
                                offset=0 if prefix is None else prefix.length, pack=pack)


def device_arrays(model: CausalLM, packed: PackedPrompts) -> dict[str, jax.Array]:
    """A packed batch on the model's mesh, rows split over the data axes (`pack_batch`'s `shards`
    must be a multiple of the mesh's data x fsdp size)."""
    mesh = model.outer.embed_vd[...].sharding.mesh
    rows = shard_batch(mesh, {"tokens": packed.tokens, "positions": packed.positions, "segments": packed.segments})
    return rows | {"row": packed.row, "end": packed.end, "length": packed.lengths,
                   "next_position": packed.next_positions}


def prefill(model: CausalLM, packed: dict, capacity: int, prefix: SharedPrefix | None):
    """Prefill the prompts of a packed batch from `device_arrays` (`judgejax.sample.packing`):
    prompt b is the `length[b]` tokens of row `row[b]` that end before slot `end[b]`, one segment,
    after `prefix` if given. Returns the final-normed activations at each prompt's last token
    [B, D] and a cache of `capacity` slots holding each prompt left-padded to the rows' length R
    (the next slot to write is R)."""
    row_b, end_b, length_b = packed["row"], packed["end"], packed["length"]
    R = packed["tokens"].shape[1]
    h_rtd, (k_lrtkh, v_lrtkh) = model.keys_values(packed["tokens"], packed["positions"], packed["segments"], prefix)
    slot_s = jnp.arange(R)
    source_bs = jnp.clip(end_b[:, None] - R + slot_s, 0, R - 1)
    filled_bs = slot_s >= R - length_b[:, None]

    def left_padded(x_lrtkh):  # each prompt's keys or values, right-aligned in R slots: [L, B, R, K, H]
        # one layer at a time: a gather across rows that are sharded moves the whole operand
        # to every device, so bound it to one layer's
        def layer(x_rtkh):
            return constrain(jnp.where(filled_bs[:, :, None, None], x_rtkh[row_b[:, None], source_bs], 0),
                             ("batch", "seq", "kv_heads", "head_dim"))

        return jax.lax.map(layer, x_lrtkh)

    k_lbkht, v_lbkth = cache_layout(left_padded(k_lrtkh), left_padded(v_lrtkh))
    empty = (0, capacity - R)
    cache = KVCache(
        constrain(jnp.pad(k_lbkht, ((0, 0),) * 4 + (empty,)), CACHE_K_AXES),
        constrain(jnp.pad(v_lbkth, ((0, 0),) * 3 + (empty, (0, 0))), CACHE_V_AXES),
        jnp.pad(filled_bs.astype(jnp.int32), ((0, 0), empty)),
        jnp.asarray(R, jnp.int32),
        prefix,
    )
    return h_rtd[row_b, end_b - 1], cache


@functools.partial(jax.jit, static_argnames=("graphdef", "method", "max_new_tokens", "capacity", "stop_ids", "chunk"))
def _generate(graphdef, state, prefix: SharedPrefix | None, packed: dict, key, *, method, max_new_tokens, capacity,
              stop_ids, chunk):
    model: CausalLM = nnx.merge(graphdef, state)
    batch = packed["row"].shape[0]
    stops = jnp.asarray(stop_ids, jnp.int32)
    # Prefill: only the last position's logits are needed, never [batch, prompt, vocab].
    hidden_bd, cache = prefill(model, packed, capacity, prefix)
    last_logits_bv = model.logits(hidden_bd[:, None])[:, 0]

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
        position=packed["next_position"],
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

    def chunk_body(c):
        return jax.lax.fori_loop(0, chunk, lambda _, c: body(c), c) if chunk > 1 else body(c)

    final = jax.lax.while_loop(lambda c: jnp.any(c["reason"] == RUNNING), chunk_body, carry)
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
    pack: bool = True,
    decode_chunk: int | None = None,
    memory_budget: int | None = None,
) -> list[Completion]:
    """Generate for token-id prompts. The tokens all prompts start with are computed once
    (through `prefixes`, which keeps the last prefix for later calls; default: a new one); the
    rest of each prompt is prefilled packed into rows (`pack=False`: a row each) as long as the
    smallest bucket that fits the longest (few recompilations); the batch is padded to a multiple
    of `batch_multiple` (the number of data-parallel shards). The cache holds prompt +
    max_new_tokens slots, capped at `max_cache_len`: a row that runs out of cache finishes with
    reason "cache_full". `decode_chunk`: decode steps between stop checks (default: 1 on CPU, where
    a check costs nothing, 16 elsewhere). `memory_budget` (bytes): split a batch whose program XLA
    plans beyond it (a `MemoryBudgetError` when one prompt per data shard does not fit)."""
    if not prompts:
        return []
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens}: must be >= 1")
    if decode_chunk is None:
        decode_chunk = 1 if jax.default_backend() == "cpu" else DECODE_CHUNK
    if decode_chunk < 1:
        raise ValueError(f"decode_chunk={decode_chunk}: must be >= 1")
    empty = [i for i, p in enumerate(prompts) if len(p) == 0]
    if empty:
        raise ValueError(f"prompt {empty[0]} is empty")
    prefix, packed = pack_batch(prefixes or PrefixCache(model, batch_multiple), prompts, shards=batch_multiple,
                                buckets=buckets, pack=pack)
    shared, length = (0 if prefix is None else prefix.length), packed.tokens.shape[1]
    capacity = length + max_new_tokens
    if max_cache_len is not None:
        if max_cache_len <= shared + length:
            raise ValueError(f"max_cache_len={max_cache_len} leaves no room after a {shared + length}-token prompt "
                             f"({shared} shared, a {length}-token bucket)")
        capacity = min(capacity, max_cache_len - shared)
    graphdef, state = nnx.split(model)
    args = (state, prefix, device_arrays(model, packed), jax.random.key(seed))
    static = dict(method=method, max_new_tokens=max_new_tokens, capacity=capacity, stop_ids=tuple(stop_ids),
                  chunk=min(decode_chunk, max_new_tokens))
    if memory_budget is None:
        outputs = _generate(graphdef, *args, **static)
    else:
        program = _program(graphdef, args, static)
        planned = planned_bytes(program)[0]
        if planned > memory_budget:
            what = (f"{len(prompts)} prompt(s) of up to {shared + length} tokens and {max_new_tokens} new tokens: "
                    f"XLA's plan needs {gb(planned)}, more than the budget of {gb(memory_budget)}")
            if len(prompts) <= batch_multiple:
                raise MemoryBudgetError(f"sampler: {what}; lower max_new_tokens or the prompts' length, or raise "
                                        "the memory budget")
            half = -(-(len(prompts) // 2) // batch_multiple) * batch_multiple
            print(f"sampler: {what}; generating them as {half} and {len(prompts) - half}", file=sys.stderr)
            again = functools.partial(
                generate, model, max_new_tokens=max_new_tokens, stop_ids=stop_ids, method=method, seed=seed,
                buckets=buckets, max_cache_len=max_cache_len, batch_multiple=batch_multiple,
                return_logprobs=return_logprobs, prefixes=prefixes, pack=pack, decode_chunk=decode_chunk,
                memory_budget=memory_budget)
            return again(prompts[:half]) + again(prompts[half:])
        outputs = program(*args)
    out, out_logprobs, reason = jax.device_get(outputs)
    completions = []
    for i in range(len(prompts)):
        n = int((out[i] >= 0).sum())
        completions.append(Completion(
            tokens=out[i, :n].tolist(),
            finish_reason=FINISH_REASONS[int(reason[i])],
            logprobs=out_logprobs[i, :n].tolist() if return_logprobs else None,
        ))
    return completions


def _program(graphdef, args: tuple, static: dict) -> jax.stages.Compiled:
    """`_generate` compiled for these arguments' shapes, dtypes and shardings (kept: the last
    PROGRAMS_KEPT), so a budgeted batch is compiled once to read its plan and to run."""
    leaves, tree = jax.tree.flatten(args)
    key = (graphdef, tuple(sorted(static.items())), tree,
           tuple((x.shape, x.dtype, getattr(x, "sharding", None)) for x in leaves))
    if key not in _programs:
        if len(_programs) >= PROGRAMS_KEPT:
            _programs.pop(next(iter(_programs)))
        _programs[key] = _generate.lower(graphdef, *args, **static).compile()
    return _programs[key]

"""The programs a run executes, built from shapes alone (no weights, no data) for a mesh: the SFT
step, the DPO(+NLL) step and its reference pass, and the sampler (prefill, then the decode loop),
each with its inputs' shapes and shardings and the planner's bytes per chip beside it, ready to
lower for the mesh's devices (a TPU slice's, in judgejax.plan.compile).

The batch is what the loop feeds the step: [grad_accum, rows, T] with T the largest bucket
(`data.max_length` rounded up), rows split over (data, fsdp). The reference pass scores one
micro-batch of pairs. The sampler generates for `sample_rows` prompts of half the sampling length
(one row each) and decodes the other half, in chunks of DECODE_CHUNK steps between stop checks,
as it does on an accelerator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from judgejax.data.batching import bucket_length
from judgejax.model import lora
from judgejax.model.build import abstract_params, flatten, graphdef_of, nest, param_shardings
from judgejax.model.config import ModelConfig
from judgejax.plan.memory import MemoryPlan, Stage
from judgejax.sample.methods import Greedy
from judgejax.sample.sampler import DECODE_CHUNK, _generate
from judgejax.sharding import BATCH, data_parallel_size
from judgejax.train.config import RunConfig
from judgejax.train.optimizer import make_optimizer
from judgejax.train.state import abstract_state, jit_train_step, shardings_of
from judgejax.train.steps import SEQ_FIELDS, make_dpo_step, make_reference_logps, make_sft_step


@dataclasses.dataclass(frozen=True)
class Program:
    name: str
    planned: int  # the planner's bytes per chip (judgejax.plan.memory)
    lower: Callable[[], jax.stages.Lowered]  # lowers it; call under jax.set_mesh(mesh)


def _array(mesh: Mesh, shape: tuple[int, ...], dtype, spec: P) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(shape, jnp.dtype(dtype), sharding=NamedSharding(mesh, spec))


def _sequences(mesh: Mesh, lead: tuple[int, ...], rows: int, length: int, prefixes: tuple[str, ...]) -> dict:
    """Abstract SEQ_FIELDS [*lead, rows, length] for each prefix, rows split over (data, fsdp)."""
    spec = P(*[None] * len(lead), BATCH, None)
    return {prefix + f: _array(mesh, (*lead, rows, length), "float32" if f == "loss_mask" else "int32", spec)
            for prefix in prefixes for f in SEQ_FIELDS}


def training_programs(cfg: ModelConfig, config: RunConfig, mesh: Mesh, stage: Stage,
                      plan: MemoryPlan) -> list[Program]:
    """The train step of `stage` (and, for DPO, the reference pass over one micro-batch)."""
    tx = make_optimizer(config.optim, 1)
    state = abstract_state(cfg, mesh, tx)
    accum = config.train.grad_accum
    rows = config.data.global_batch_size // accum
    length = bucket_length(config.data.max_length, config.data.bucket_lengths)
    chunk = config.train.logprob_chunk
    step = jit_train_step(make_sft_step(cfg, tx, chunk) if stage == "sft" else
                          make_dpo_step(cfg, tx, config.dpo, chunk), shardings_of(state), mesh)
    # LoRA: the frozen base in the compute dtype beside the adapters' state; it is the DPO reference
    frozen = None
    if cfg.lora:  # as the run holds it: compute dtype, QLoRA's codes and scales
        base = abstract_params(lora.base_config(cfg), mesh)
        shapes, shardings = jax.eval_shape(lambda base: lora.frozen_base(cfg, base, mesh), base), param_shardings(cfg, mesh)
        frozen = nest({n: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=shardings[n]) for n, x in flatten(shapes).items()})
    if stage == "sft":
        batch = _sequences(mesh, (accum,), rows, length, ("",))
        return [Program("SFT step", plan.training, lambda: step.lower(state, batch, frozen))]
    pairs = _sequences(mesh, (accum,), rows, length, ("chosen_", "rejected_"))
    pairs |= {k: _array(mesh, (accum, rows), "float32", P(None, BATCH)) for k in ("ref_chosen_logps",
                                                                                   "ref_rejected_logps")}
    micro = _sequences(mesh, (), rows, length, ("chosen_", "rejected_"))
    reference = jax.jit(make_reference_logps(cfg, chunk))
    reference_params = state.params if frozen is None else lora.join(state.params, frozen)
    return [Program("DPO+NLL step", plan.training, lambda: step.lower(state, pairs, frozen)),
            Program("DPO reference pass", plan.scoring, lambda: reference.lower(reference_params, micro))]


def sampler_program(cfg: ModelConfig, mesh: Mesh, plan: MemoryPlan) -> Program:
    """The sampler's one program: prefill of `plan.sample_rows` x the data shards' prompts, then
    the decode loop to `plan.sample_len` tokens."""
    rows = plan.sample_rows * data_parallel_size(mesh)
    prompt = plan.sample_prompt
    replicated = P()
    packed = {k: _array(mesh, (rows, prompt), "int32", P(BATCH, None)) for k in ("tokens", "positions", "segments")}
    packed |= {k: _array(mesh, (rows,), "int32", replicated) for k in ("row", "end", "length", "next_position")}
    key = jax.eval_shape(lambda: jax.random.key(0))
    key = jax.ShapeDtypeStruct(key.shape, key.dtype, sharding=NamedSharding(mesh, replicated))
    if cfg.lora:  # a LoRA run's judge samples merged, in the compute dtype (as the planner sizes it)
        cfg = lora.base_config(cfg).replace(param_dtype=cfg.compute_dtype)
    params = abstract_params(cfg, mesh)
    new_tokens = plan.sample_len - prompt

    def lower():
        return _generate.lower(graphdef_of(cfg), params, None, packed, key, method=Greedy(),
                               max_new_tokens=new_tokens, capacity=plan.sample_len, stop_ids=(0,),
                               chunk=min(DECODE_CHUNK, new_tokens))

    return Program(f"sampler ({rows} x {prompt} prefill + {new_tokens} decode)", plan.sampling, lower)

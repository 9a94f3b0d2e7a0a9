"""Everything a training run builds before its first step: the data, the model config and
optimizer, the jitted step with its micro-batches sized to the memory budget (on CPU), the train
state (restored or fresh) and, for DPO, the reference log-probs."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
from typing import Callable

import grain
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P

from judgejax.budget import budget_bytes
from judgejax.data.load import load_preference_examples, load_sft_examples
from judgejax.data.pipeline import preference_dataset, sft_dataset
from judgejax.host import release_heap, rss
from judgejax.model import lora
from judgejax.model.build import params_of
from judgejax.model.checkpoint import ASSETS, RUN_CHECKPOINTS, assets_dir, copy_assets, load_model
from judgejax.model.config import ModelConfig
from judgejax.sharding import BATCH, data_parallel_size
from judgejax.tokenizer import load_tokenizer
from judgejax.train.batches import global_batch, seq_batch_keys
from judgejax.train.checkpoints import TrainCheckpoints
from judgejax.train.config import RunConfig, to_dict
from judgejax.train.memory import accum_options, choose_accum
from judgejax.train.optimizer import make_optimizer
from judgejax.train.reference import compute_reference_logps, load_or_compute
from judgejax.train.state import TrainState, abstract_state, create_state, jit_train_step, shardings_of
from judgejax.train.steps import make_dpo_step, make_reference_logps, make_sft_step

REFERENCE_KEYS = ("ref_chosen_logps", "ref_rejected_logps")


def log(message: str) -> None:
    if jax.process_index() == 0:
        print(message, file=sys.stderr, flush=True)


@dataclasses.dataclass
class Training:
    """A run ready for its first step (`start`: the step it resumes after)."""

    dataset: grain.MapDataset
    total_steps: int
    start: int
    data_state: dict | None
    state: TrainState
    step: Callable  # (state, batch) -> (state, metrics), compiled, the state donated (LoRA's base bound)
    accum: int  # micro-batches per step
    heap_limit: int | None  # CPU: resident bytes past which the loop hands freed memory back (train/memory.py)
    add_reference: Callable[[dict], dict] | None  # DPO: adds the reference log-probs to a local batch
    checkpoints: TrainCheckpoints


def set_up(config: RunConfig, stage: str, mesh, out: pathlib.Path) -> Training:
    source_assets = assets_dir(config.model.path)
    tokenizer = load_tokenizer(source_assets)
    if jax.process_index() == 0:
        copy_assets(source_assets, out / ASSETS)
        (out / f"{stage}_config.json").write_text(json.dumps(to_dict(config), indent=2) + "\n")

    load = load_sft_examples if stage == "sft" else load_preference_examples
    examples, stats = load(config.data, tokenizer)
    log(f"data {config.data.path}: {stats.summary()}")
    make_dataset = sft_dataset if stage == "sft" else preference_dataset
    dataset = make_dataset(examples, config.data, jax.process_index(), jax.process_count())
    total_steps = config.train.steps or len(dataset)
    if total_steps > len(dataset):
        raise ValueError(f"train.steps={total_steps} but the data gives {len(dataset)} steps over "
                         f"{config.data.epochs} epoch(s); raise data.epochs")

    cfg = ModelConfig.from_hf_dir(source_assets, **config.model.numerics())
    base_cfg = lora.base_config(cfg)  # the model loaded from model.path; with LoRA, the frozen base
    tx = make_optimizer(config.optim, total_steps)
    chunk = config.train.logprob_chunk
    step_fn = make_sft_step(cfg, tx, chunk) if stage == "sft" else make_dpo_step(cfg, tx, config.dpo, chunk)
    abstract = abstract_state(cfg, mesh, tx)
    jitted = jit_train_step(step_fn, shardings_of(abstract), mesh)
    frozen = None
    if cfg.lora:  # the base is needed to probe the step's memory, to resume and to start
        base = params_of(load_model(config.model.path, mesh, **base_cfg.numerics()))
        base_id = {"path": str(pathlib.Path(config.model.path).absolute()), "fingerprint": lora.fingerprint(base),
                   "lora": dataclasses.asdict(cfg.lora)}
        frozen = lora.frozen_base(cfg, base, mesh)
        abstract_frozen = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), frozen)
    accum, planned, probed = micro_batches(
        config, stage, mesh, dataset[0],
        lambda batch: jitted.lower(abstract, batch, abstract_frozen if cfg.lora else None).compile())

    checkpoints = TrainCheckpoints(out / RUN_CHECKPOINTS, keep=config.train.keep, base=base_id if cfg.lora else None)
    restored = checkpoints.restore_latest(abstract)
    initial = None
    if restored:
        start, state, data_state = restored
        log(f"resuming from step {start} ({checkpoints.directory / str(start)})")
    else:
        start, data_state = 0, None
        initial = (lora.fresh_adapters(cfg, mesh) if cfg.lora else
                   params_of(load_model(config.model.path, mesh, **base_cfg.numerics())))
    add_reference = None
    if stage == "dpo":
        # The reference is the model the run started from (the SFT judge in the recipe): with LoRA
        # the frozen base with zero adapters (their start), in the run's config.
        if cfg.lora:
            reference = lambda: lora.reference_params(initial if initial is not None else state.params, frozen)  # noqa: E731
        elif initial is not None:
            reference = lambda: initial  # noqa: E731
        else:
            reference = lambda: params_of(load_model(config.model.path, mesh, **base_cfg.numerics()))  # noqa: E731
        add_reference = _reference_adder(config, cfg if cfg.lora else base_cfg, examples, mesh, out, reference,
                                         accum, donated=not cfg.lora)
    if initial is not None:
        state = create_state(initial, tx)  # donated by the first step
    # What loading, the probe compiles and the reference pass freed goes back to the system: kept
    # (host.py's tunables), it scatters free holes that the steps' temporaries do not reuse.
    release_heap()
    # XLA's plan counts the state; what else the process holds comes on top
    held = sum(x.nbytes for x in jax.tree.leaves((state, frozen)))
    heap_limit = None if planned is None else planned + (rss() or 0) - held
    step = reusing(probed, jitted, frozen)
    return Training(dataset, total_steps, start, data_state, state, step, accum, heap_limit, add_reference,
                    checkpoints)


def reusing(probed: tuple[dict, jax.stages.Compiled] | None, jitted: Callable, frozen) -> Callable:
    """The train step (state, batch) -> (state, metrics): the probe's compiled program for batches
    of the shapes it was compiled for (jit would compile it again: it does not reuse a program
    compiled through `lower`), the jitted step for the other bucket lengths."""
    if probed is None:
        return lambda state, batch: jitted(state, batch, frozen)
    shapes, compiled = probed

    def step(state, batch):
        if {k: v.shape for k, v in batch.items()} == shapes:
            return compiled(state, batch, frozen)
        return jitted(state, batch, frozen)

    return step


def micro_batches(config: RunConfig, stage: str, mesh, local: dict[str, np.ndarray],
                  compile_for: Callable[[dict], jax.stages.Compiled]
                  ) -> tuple[int, int | None, tuple[dict, jax.stages.Compiled] | None]:
    """Micro-batches per step, the bytes XLA plans for such a step and that step's compiled
    program with the batch shapes it takes: on CPU the fewest (at least train.grad_accum) whose
    compiled step, at the longest batch the data can form, fits train.memory_budget (see
    train/memory.py); elsewhere train.grad_accum, no plan and no program."""
    if jax.default_backend() != "cpu":
        return config.train.grad_accum, None, None
    rows = config.data.global_batch_size
    length = min(b for b in config.data.bucket_lengths if b >= config.data.max_length)
    budget, source = budget_bytes(config.train.memory_budget)
    fields = {k: v for k, v in local.items() if k in seq_batch_keys(local)}
    if stage == "dpo":
        fields.update({k: np.zeros(len(local["row_index"]), np.float32) for k in REFERENCE_KEYS})

    programs: dict[int, jax.stages.Compiled] = {}

    def compile_accum(accum: int) -> jax.stages.Compiled:
        batch = {k: jax.ShapeDtypeStruct(shape(accum, v), v.dtype,
                                         sharding=NamedSharding(mesh, P(None, BATCH, *[None] * (v.ndim - 1))))
                 for k, v in fields.items()}
        programs[accum] = compile_for(batch)
        return programs[accum]

    def shape(accum: int, v: np.ndarray) -> tuple[int, ...]:
        return (accum, rows // accum, *((length,) if v.ndim == 2 else ()))

    options = accum_options(rows, config.train.grad_accum, data_parallel_size(mesh))
    accum, planned = choose_accum(compile_accum, rows, options, budget, source,
                                  f"{stage} step ({rows} rows of up to {length} tokens)", log)
    return accum, planned, ({k: shape(accum, v) for k, v in fields.items()}, programs[accum])


def _reference_adder(config: RunConfig, cfg: ModelConfig, examples, mesh, out: pathlib.Path,
                     reference: Callable[[], dict], accum: int, donated: bool) -> Callable[[dict], dict]:
    """A function adding ref_chosen_logps / ref_rejected_logps [rows] to a local batch: looked
    up in the precomputed table (default), or computed by a frozen in-memory copy. Either pass
    runs the train step's micro-batches (a forward only: less memory than the step that fits).
    `donated`: the reference's arrays are the policy's, which the steps donate (then copied)."""
    chunk = config.train.logprob_chunk
    if config.dpo.reference == "precomputed":
        table = load_or_compute(
            out / "reference_logps.npz", len(examples),
            lambda: compute_reference_logps(cfg, reference(), examples, config.data, mesh, chunk, accum),
        )

        def lookup(local):
            index = np.maximum(local["row_index"], 0)
            return {**local, REFERENCE_KEYS[0]: table["chosen"][index], REFERENCE_KEYS[1]: table["rejected"][index]}

        return lookup

    frozen = jax.tree.map(jnp.copy, reference()) if donated else reference()
    ref = jax.jit(make_reference_logps(cfg, chunk))

    def compute(local):
        batch = global_batch(mesh, {k: local[k] for k in seq_batch_keys(local)}, accum)
        rows = len(local["row_index"]) // accum
        mine = slice(jax.process_index() * rows, (jax.process_index() + 1) * rows)
        micro = [ref(frozen, jax.tree.map(lambda x: x[i], batch)) for i in range(accum)]
        c, r = (np.concatenate([np.asarray(multihost_utils.process_allgather(m[j], tiled=True))[mine] for m in micro])
                for j in (0, 1))
        return {**local, REFERENCE_KEYS[0]: c, REFERENCE_KEYS[1]: r}

    return compute

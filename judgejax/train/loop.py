"""The training loop shared by `judgejax sft` and `judgejax dpo`: data, resume, jitted steps
with explicit shardings and donated state, checkpoints (periodic, final, on SIGTERM), metrics."""

from __future__ import annotations

import json
import pathlib
import signal
import sys
import time
from typing import Callable, Literal, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P
from tqdm import tqdm

from judgejax.train.config import RunConfig, to_dict
from judgejax.data.load import load_preference_examples, load_sft_examples
from judgejax.data.pipeline import batch_iterator, preference_dataset, sft_dataset
from judgejax.model.build import params_of
from judgejax.model.checkpoint import ASSETS, RUN_CHECKPOINTS, assets_dir, copy_assets, load_model
from judgejax.model.config import ModelConfig
from judgejax.sharding import data_parallel_size, make_mesh
from judgejax.tokenizer import load_tokenizer
from judgejax.train.batches import global_batch, seq_batch_keys
from judgejax.train.checkpoints import TrainCheckpoints
from judgejax.train.metrics_log import MetricsLog
from judgejax.train.optimizer import make_optimizer, schedule
from judgejax.train.reference import compute_reference_logps, load_or_compute
from judgejax.train.state import abstract_state, create_state, shardings_of
from judgejax.train.steps import make_dpo_step, make_reference_logps, make_sft_step

Stage = Literal["sft", "dpo"]
StepCallback = Callable[[int, dict[str, float]], None]


class Preempted(RuntimeError):
    """Training stopped early on SIGTERM after saving a checkpoint; rerunning resumes it."""


class _Preemption:
    """Turns SIGTERM (TPU preemption notice) into a flag the loop checks after each step."""

    def __init__(self) -> None:
        self.requested = False
        self.previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def agreed(self) -> bool:
        """True on every process once any process got SIGTERM, so all save the same step."""
        if jax.process_count() == 1:
            return self.requested
        return bool(multihost_utils.process_allgather(np.array(self.requested)).any())

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self.previous)


def _log(message: str) -> None:
    if jax.process_index() == 0:
        print(message, file=sys.stderr, flush=True)


def run(config: RunConfig, stage: Stage, callbacks: Sequence[StepCallback] = ()) -> pathlib.Path:
    """Train until `train.steps` (or one pass over the data's epochs); returns the output dir,
    which `load_model` and `judgejax export` accept (its latest checkpoint's parameters)."""
    out = pathlib.Path(config.train.output_dir)
    mesh = make_mesh(config.mesh)
    ways = data_parallel_size(mesh)
    batch, accum = config.data.global_batch_size, config.train.grad_accum
    if batch % accum or (batch // accum) % ways:
        raise ValueError(f"data.global_batch_size={batch} / train.grad_accum={accum} must give micro-batches whose "
                         f"rows divide over data x fsdp = {ways} devices of mesh {dict(mesh.shape)}")
    with jax.set_mesh(mesh):  # the model's sharding constraints apply inside the jitted steps
        return _run(config, stage, callbacks, mesh, out)


def _run(config: RunConfig, stage: Stage, callbacks: Sequence[StepCallback], mesh, out: pathlib.Path) -> pathlib.Path:
    source_assets = assets_dir(config.model.path)
    tokenizer = load_tokenizer(source_assets)
    if jax.process_index() == 0:
        copy_assets(source_assets, out / ASSETS)
        (out / f"{stage}_config.json").write_text(json.dumps(to_dict(config), indent=2) + "\n")

    load = load_sft_examples if stage == "sft" else load_preference_examples
    examples, stats = load(config.data, tokenizer)
    _log(f"data {config.data.path}: {stats.summary()}")
    make_dataset = sft_dataset if stage == "sft" else preference_dataset
    dataset = make_dataset(examples, config.data, jax.process_index(), jax.process_count())
    total_steps = config.train.steps or len(dataset)
    if total_steps > len(dataset):
        raise ValueError(f"train.steps={total_steps} but the data gives {len(dataset)} steps over "
                         f"{config.data.epochs} epoch(s); raise data.epochs")

    overrides = dict(param_dtype=config.model.param_dtype, compute_dtype=config.model.compute_dtype,
                     remat=config.model.remat, attention=config.model.attention,
                     unroll_layers=config.model.unroll_layers)
    cfg = ModelConfig.from_hf_dir(source_assets, **overrides)
    tx = make_optimizer(config.optim, total_steps)
    checkpoints = TrainCheckpoints(out / RUN_CHECKPOINTS, keep=config.train.keep)
    restored = checkpoints.restore_latest(abstract_state(cfg, mesh, tx))
    initial = None
    if restored:
        start, state, data_state = restored
        _log(f"resuming from step {start} ({checkpoints.directory / str(start)})")
    else:
        start, data_state = 0, None
        initial = params_of(load_model(config.model.path, mesh, **overrides))

    chunk = config.train.logprob_chunk
    add_reference = None
    if stage == "sft":
        step_fn = make_sft_step(cfg, tx, chunk)
    else:
        step_fn = make_dpo_step(cfg, tx, config.dpo, chunk)
        # The reference is the model the run started from (the SFT judge in the recipe).
        reference = (lambda: initial) if initial is not None else (
            lambda: params_of(load_model(config.model.path, mesh, **overrides)))
        add_reference = _reference_adder(config, cfg, examples, mesh, out, reference)
    if initial is not None:
        state = create_state(initial, tx)  # donated by the first step
        del initial

    state_shardings = shardings_of(state)
    jitted = jax.jit(step_fn, in_shardings=(state_shardings, None),
                     out_shardings=(state_shardings, NamedSharding(mesh, P())), donate_argnums=0)
    metrics_log = MetricsLog(out, resume_step=start)
    iterator = batch_iterator(dataset, data_state)
    preemption = _Preemption()
    accum = config.train.grad_accum
    lr = schedule(config.optim, total_steps)
    step = start
    pending: list[tuple[int, dict, int]] = []  # (step, metrics still on the device, tokens)
    interval_began = time.perf_counter()

    def fetch() -> None:
        """Bring the pending steps' metrics to the host (the one wait on the device), log them and
        run the callbacks. tokens_per_second is the interval's: its tokens over its wall time."""
        nonlocal interval_began
        fetched = jax.device_get([metrics for _, metrics, _ in pending])
        seconds = time.perf_counter() - interval_began
        tokens_per_second = sum(tokens for _, _, tokens in pending) / seconds
        for (done, _, _), metrics in zip(pending, fetched):
            metrics = {k: float(v) for k, v in metrics.items()}
            metrics.update(tokens_per_second=tokens_per_second, learning_rate=float(lr(done - 1)))
            metrics_log.write(done, metrics)
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}", tok_s=f"{tokens_per_second:.0f}")
            for callback in callbacks:
                callback(done, metrics)
        pending.clear()
        interval_began = time.perf_counter()

    try:
        bar = tqdm(total=total_steps, initial=start, desc=stage, disable=jax.process_index() != 0)
        while step < total_steps:
            local = next(iterator)
            if add_reference:
                local = add_reference(local)
            batch = global_batch(mesh, {k: local[k] for k in seq_batch_keys(local)}, accum)
            state, metrics = jitted(state, batch)
            step += 1
            tokens = sum(int((local[k] > 0).sum()) for k in local if k.endswith("segment_ids")) * jax.process_count()
            pending.append((step, metrics, tokens))
            save = step % config.train.save_every == 0 or step == total_steps
            if save or step % config.train.log_every == 0:
                fetch()
            preempted = preemption.agreed()
            if preempted and pending:
                fetch()
            if save or preempted:
                checkpoints.save(step, state, iterator.get_state(), to_dict(config))
            if preempted:
                break
        bar.close()
    finally:
        preemption.restore()
        checkpoints.close()
    if step < total_steps:
        metrics_log.close(f"{stage}: {config.model.path} (stopped at step {step})")
        raise Preempted(f"SIGTERM: saved step {step} of {total_steps} in {checkpoints.directory}; "
                        "rerun the same command to resume")
    curve = metrics_log.close(f"{stage}: {config.model.path}")
    _log(f"{stage} finished at step {step}; checkpoints in {checkpoints.directory}"
         + (f"; loss curve {curve}" if curve else ""))
    return out


def _reference_adder(config: RunConfig, cfg: ModelConfig, examples, mesh, out: pathlib.Path,
                     reference: Callable[[], dict]) -> Callable[[dict], dict]:
    """A function adding ref_chosen_logps / ref_rejected_logps [rows] to a local batch: looked
    up in the precomputed table (default), or computed by a frozen in-memory copy."""
    chunk = config.train.logprob_chunk
    if config.dpo.reference == "precomputed":
        table = load_or_compute(
            out / "reference_logps.npz", len(examples),
            lambda: compute_reference_logps(cfg, reference(), examples, config.data, mesh, chunk),
        )

        def lookup(local):
            index = np.maximum(local["row_index"], 0)
            return {**local, "ref_chosen_logps": table["chosen"][index], "ref_rejected_logps": table["rejected"][index]}

        return lookup

    frozen = jax.tree.map(jnp.copy, reference())  # the policy's own arrays are donated
    ref = jax.jit(make_reference_logps(cfg, chunk))

    def compute(local):
        batch = global_batch(mesh, {k: local[k] for k in seq_batch_keys(local)}, accum=1)
        c, r = ref(frozen, jax.tree.map(lambda x: x[0], batch))
        rows = len(local["row_index"])
        mine = slice(jax.process_index() * rows, (jax.process_index() + 1) * rows)
        c, r = (np.asarray(multihost_utils.process_allgather(x, tiled=True))[mine] for x in (c, r))
        return {**local, "ref_chosen_logps": c, "ref_rejected_logps": r}

    return compute

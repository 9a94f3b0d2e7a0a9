"""The training loop shared by `judgejax sft` and `judgejax dpo`: the run is set up
(judgejax/train/setup.py: data, resume, the jitted step with explicit shardings and donated
state, micro-batches sized to memory), then stepped, with checkpoints (periodic, final, on
SIGTERM) and metrics fetched every `train.log_every` steps."""

from __future__ import annotations

import pathlib
import signal
import time
from typing import Callable, Literal, Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from tqdm import tqdm

from judgejax.data.pipeline import batch_iterator
from judgejax.host import release_heap, rss
from judgejax.sharding import data_parallel_size, make_mesh
from judgejax.train.batches import global_batch, seq_batch_keys
from judgejax.train.config import RunConfig, to_dict
from judgejax.train.metrics_log import MetricsLog
from judgejax.train.optimizer import schedule
from judgejax.train.setup import Training, log, set_up

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
        training = set_up(config, stage, mesh, out)
        step = _train(training, config, stage, callbacks, mesh, out)
    if step < training.total_steps:
        raise Preempted(f"SIGTERM: saved step {step} of {training.total_steps} in {training.checkpoints.directory}; "
                        "rerun the same command to resume")
    return out


def _train(t: Training, config: RunConfig, stage: Stage, callbacks: Sequence[StepCallback], mesh,
           out: pathlib.Path) -> int:
    """Step from `t.start` to `t.total_steps` (or a SIGTERM); returns the last step done."""
    metrics = _Metrics(MetricsLog(out, resume_step=t.start), schedule(config.optim, t.total_steps), callbacks,
                       tqdm(total=t.total_steps, initial=t.start, desc=stage, disable=jax.process_index() != 0))
    iterator = batch_iterator(t.dataset, t.data_state)
    preemption = _Preemption()
    state, step = t.state, t.start
    on_cpu = jax.default_backend() == "cpu"
    try:
        while step < t.total_steps:
            local = next(iterator)
            if t.add_reference:
                local = t.add_reference(local)
            state, step_metrics = t.step(state, global_batch(mesh, {k: local[k] for k in seq_batch_keys(local)}, t.accum))
            if on_cpu:  # one step at a time, the heap within XLA's plan: see judgejax/train/memory.py
                jax.block_until_ready(step_metrics)
                if t.heap_limit and (rss() or 0) > t.heap_limit:
                    release_heap()
            step += 1
            metrics.add(step, step_metrics, local)
            save = step % config.train.save_every == 0 or step == t.total_steps
            if save or step % config.train.log_every == 0:
                metrics.fetch()
            preempted = preemption.agreed()
            if preempted:
                metrics.fetch()
            if save or preempted:
                t.checkpoints.save(step, state, iterator.get_state(), to_dict(config))
            if preempted:
                break
        metrics.bar.close()
    finally:
        preemption.restore()
        t.checkpoints.close()
    stopped = f" (stopped at step {step})" if step < t.total_steps else ""
    curve = metrics.log.close(f"{stage}: {config.model.path}{stopped}")
    if not stopped:
        log(f"{stage} finished at step {step}; checkpoints in {t.checkpoints.directory}"
            + (f"; loss curve {curve}" if curve else ""))
    return step


class _Metrics:
    """Steps' metrics kept on the device until `fetch` (the one wait on the device) brings them
    to the host, logs them and runs the callbacks. tokens_per_second is the interval's: its
    tokens over its wall time."""

    def __init__(self, metrics_log: MetricsLog, lr: Callable[[int], float], callbacks: Sequence[StepCallback], bar):
        self.log, self.lr, self.callbacks, self.bar = metrics_log, lr, callbacks, bar
        self.pending: list[tuple[int, dict, int]] = []  # (step, metrics still on the device, tokens)
        self.began = time.perf_counter()

    def add(self, step: int, metrics: dict, local: dict[str, np.ndarray]) -> None:
        tokens = sum(int((local[k] > 0).sum()) for k in local if k.endswith("segment_ids")) * jax.process_count()
        self.pending.append((step, metrics, tokens))

    def fetch(self) -> None:
        if not self.pending:
            return
        fetched = jax.device_get([metrics for _, metrics, _ in self.pending])
        tokens_per_second = sum(tokens for _, _, tokens in self.pending) / (time.perf_counter() - self.began)
        for (done, _, _), metrics in zip(self.pending, fetched):
            metrics = {k: float(v) for k, v in metrics.items()}
            metrics.update(tokens_per_second=tokens_per_second, learning_rate=float(self.lr(done - 1)))
            self.log.write(done, metrics)
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{metrics['loss']:.4f}", tok_s=f"{tokens_per_second:.0f}")
            for callback in self.callbacks:
                callback(done, metrics)
        self.pending.clear()
        self.began = time.perf_counter()

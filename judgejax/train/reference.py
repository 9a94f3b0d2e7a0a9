"""Reference log-probs for DPO: one sharded pass of the frozen reference over every pair,
stored beside the run so the reference model need not stay in memory while training."""

from __future__ import annotations

import dataclasses
import pathlib

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh
from tqdm import tqdm

from judgejax.data.config import DataConfig
from judgejax.data.pipeline import batch_iterator, preference_dataset
from judgejax.data.tokenize import PreferenceExample
from judgejax.model.config import ModelConfig
from judgejax.train.batches import global_batch, seq_batch_keys
from judgejax.train.steps import make_reference_logps


def compute_reference_logps(
    cfg: ModelConfig, params, examples: list[PreferenceExample], data: DataConfig, mesh: Mesh, chunk_size: int,
    accum: int = 1,
) -> dict[str, np.ndarray]:
    """Summed completion log-probs of chosen and rejected for every example, by example index;
    each batch of `data.global_batch_size` pairs runs as `accum` micro-batches."""
    one_pass = dataclasses.replace(data, shuffle=False, epochs=1, drop_remainder=False)
    dataset = preference_dataset(examples, one_pass, jax.process_index(), jax.process_count())
    ref = jax.jit(make_reference_logps(cfg, chunk_size))
    chosen = np.zeros(len(examples), np.float32)
    rejected = np.zeros(len(examples), np.float32)
    for local in tqdm(batch_iterator(dataset), total=len(dataset), desc="reference log-probs",
                      disable=jax.process_index() != 0):
        batch = global_batch(mesh, {k: local[k] for k in seq_batch_keys(local)}, accum)
        rows = local["row_index"].reshape(accum, -1)
        for i in range(accum):
            c, r = ref(params, jax.tree.map(lambda x: x[i], batch))
            index = multihost_utils.process_allgather(rows[i], tiled=True)
            c, r = (np.asarray(multihost_utils.process_allgather(x, tiled=True)) for x in (c, r))
            real = index >= 0
            chosen[index[real]] = c[real]
            rejected[index[real]] = r[real]
    return {"chosen": chosen, "rejected": rejected}


def load_or_compute(path: pathlib.Path, count: int, compute) -> dict[str, np.ndarray]:
    """Reuse `path` (npz) when it holds `count` rows; otherwise compute and write it."""
    if path.exists():
        stored = dict(np.load(path))
        if len(stored["chosen"]) == count:
            return stored
        print(f"{path}: holds {len(stored['chosen'])} rows, the data has {count}; recomputing")
    values = compute()
    if jax.process_index() == 0:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **values)
        tmp.rename(path)
    return values

"""grain pipelines of training batches; each process builds only its own slice of every global batch.

A run's batches are planned up front (see `plan.py`) and served by a `grain.MapDataset` indexed by step, so an
iterator's state is the next step (`get_state` / `set_state`, checkpointable), and process p of P gets rows
[p * B/P, (p+1) * B/P) of each global batch of B rows, padded to the length chosen for the whole global batch.
"""
from __future__ import annotations

from typing import Any

import grain
import numpy as np

from judgejax.data.batching import preference_batch, sft_batch
from judgejax.data.config import DataConfig
from judgejax.data.plan import plan_batches
from judgejax.data.tokenize import PreferenceExample, SFTExample

Batch = dict[str, np.ndarray]


def _local_rows(config: DataConfig, process_index: int, process_count: int) -> slice:
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} is outside 0..{process_count - 1}")
    if config.global_batch_size % process_count:
        raise ValueError(f"global_batch_size {config.global_batch_size} does not divide over {process_count} processes")
    local = config.global_batch_size // process_count
    return slice(process_index * local, (process_index + 1) * local)


def sft_dataset(
    examples: list[SFTExample], config: DataConfig, process_index: int = 0, process_count: int = 1
) -> grain.MapDataset:
    """Local SFT batches, one per step (keys in `batching.py`), packed when `config.pack`."""
    plan = plan_batches([len(e.ids) for e in examples], config, pack=config.pack)
    local = _local_rows(config, process_index, process_count)

    def batch(step: int) -> Batch:
        rows = plan.rows[step][local]
        return sft_batch([[examples[i] for i in row] for row in rows], plan.lengths[step])

    return grain.MapDataset.range(len(plan.rows)).map(batch)


def preference_dataset(
    examples: list[PreferenceExample], config: DataConfig, process_index: int = 0, process_count: int = 1
) -> grain.MapDataset:
    """Local preference batches, one per step; row_index is the example's index in `examples` (-1: padding)."""
    if config.pack:
        raise ValueError("data.pack applies to SFT only; preference rows are not packed")
    lengths = [len(e.prompt_ids) + max(len(e.chosen_ids), len(e.rejected_ids)) for e in examples]
    plan = plan_batches(lengths, config, pack=False)
    local = _local_rows(config, process_index, process_count)

    def batch(step: int) -> Batch:
        index = [row[0] if row else -1 for row in plan.rows[step][local]]
        return preference_batch([examples[i] if i >= 0 else None for i in index], index, plan.lengths[step])

    return grain.MapDataset.range(len(plan.rows)).map(batch)


def batch_iterator(dataset: grain.MapDataset, state: dict[str, Any] | None = None) -> grain.DatasetIterator:
    """An iterator over the batches, built one step ahead on a background thread; `state` (from `get_state()`)
    resumes exactly after the last batch consumed when it was saved."""
    iterator = iter(dataset.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=2)))
    if state is not None:
        iterator.set_state(state)
    return iterator

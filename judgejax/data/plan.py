"""Which examples make up each global batch of a run: epochs, seeded shuffles, packing, padded lengths."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from judgejax.data.batching import bucket_length
from judgejax.data.config import DataConfig
from judgejax.data.packing import first_fit


@dataclass(frozen=True)
class BatchPlan:
    """Every global batch of a run, fixed up front so that all processes agree on it.

    rows[step][r]: the example indices packed into global row r of that step ([] is a padding row).
    lengths[step]: the bucket length T that step is padded to, fitting its longest row.
    """

    rows: list[list[list[int]]]
    lengths: list[int]


def plan_batches(example_lengths: Sequence[int], config: DataConfig, pack: bool) -> BatchPlan:
    """Plans `config.epochs` passes; each pass reshuffles the examples with seed (config.seed, epoch), packs them
    first-fit into rows of config.max_length tokens when `pack`, and groups the rows into global batches."""
    n = len(example_lengths)
    if n == 0:
        raise ValueError("no examples to batch")
    lengths = np.asarray(example_lengths, dtype=np.int64)
    size = config.global_batch_size
    steps: list[list[list[int]]] = []
    step_lengths: list[int] = []
    for epoch in range(config.epochs):
        order = np.random.default_rng((config.seed, epoch)).permutation(n) if config.shuffle else np.arange(n)
        if pack:
            rows = [[int(order[i]) for i in row] for row in first_fit(lengths[order].tolist(), config.max_length)]
        else:
            rows = [[int(i)] for i in order]
        if len(rows) % size and not config.drop_remainder:
            rows += [[] for _ in range(size - len(rows) % size)]
        for start in range(0, len(rows) - size + 1, size):
            batch = rows[start : start + size]
            steps.append(batch)
            longest = max(int(lengths[row].sum()) for row in batch)
            step_lengths.append(bucket_length(longest, config.bucket_lengths))
    if not steps:
        raise ValueError(
            f"{n} examples fill no global batch of {size} rows; lower global_batch_size or set drop_remainder=False"
        )
    return BatchPlan(steps, step_lengths)

"""Host batches -> global arrays on the mesh, shaped [accum, rows, T] (micro-batches first)."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh

from judgejax.sharding import ShardingError, shard_batch


def seq_batch_keys(batch: dict[str, np.ndarray]) -> list[str]:
    """The keys a train step consumes (everything but bookkeeping such as row_index)."""
    return [k for k in batch if k != "row_index"]


def global_batch(mesh: Mesh, local: dict[str, np.ndarray], accum: int) -> dict[str, jax.Array]:
    """Each process passes its own rows; they are split into `accum` micro-batches and the rows
    of every micro-batch sharded over (data, fsdp)."""
    split = {}
    for key, value in local.items():
        rows = value.shape[0]
        if rows % accum:
            raise ShardingError(f"batch field {key}: {rows} local rows do not split into {accum} micro-batches")
        split[key] = value.reshape(accum, rows // accum, *value.shape[1:])
    return shard_batch(mesh, split, axis=1)

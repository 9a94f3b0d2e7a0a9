"""Host rows -> arrays on the mesh for the scoring forwards: padding to a bucket length and to a
row count that divides the data-parallel axes."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh

from judgejax.sample.buckets import DEFAULT_BUCKETS, bucket_length
from judgejax.sharding import BATCH, batch_sharding


def data_parallel(mesh: Mesh) -> int:
    """Rows of a batch must be a multiple of this: the size of the (data, fsdp) axes."""
    return int(np.prod([mesh.shape[a] for a in BATCH]))


def padded_rows(rows: int, multiple: int) -> int:
    return -(-rows // multiple) * multiple


def right_pad(sequences: Sequence[Sequence[int]], rows: int,
              buckets: Sequence[int] = DEFAULT_BUCKETS) -> tuple[np.ndarray, np.ndarray]:
    """Tokens and segment ids (1 real, 0 pad) [rows, bucket], sequences first then empty rows."""
    length = bucket_length(max(len(s) for s in sequences), buckets)
    tokens = np.zeros((rows, length), np.int32)
    segments = np.zeros((rows, length), np.int32)
    for i, sequence in enumerate(sequences):
        tokens[i, :len(sequence)] = sequence
        segments[i, :len(sequence)] = 1
    return tokens, segments


def place(mesh: Mesh, *arrays: np.ndarray) -> tuple[jax.Array, ...]:
    """Put host arrays on the mesh with their rows split over (data, fsdp)."""
    return tuple(jax.device_put(a, batch_sharding(mesh, a.ndim)) for a in arrays)


def ids_hash(ids: Sequence[int]) -> str:
    """A short fingerprint of a token-id sequence (the exact prompt a judge saw)."""
    return hashlib.sha256(np.asarray(ids, np.int64).tobytes()).hexdigest()[:16]

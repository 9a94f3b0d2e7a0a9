"""Host rows for the scoring forwards: padding to a bucket length and to a row count that divides
the data-parallel axes (`judgejax.sharding.shard_batch` then places them on the mesh)."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from judgejax.data.batching import bucket_length
from judgejax.sample.buckets import DEFAULT_BUCKETS


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


def ids_hash(ids: Sequence[int]) -> str:
    """A short fingerprint of a token-id sequence (the exact prompt a judge saw)."""
    return hashlib.sha256(np.asarray(ids, np.int64).tobytes()).hexdigest()[:16]

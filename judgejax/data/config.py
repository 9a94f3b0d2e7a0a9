"""The data sub-config of a training stage."""
from __future__ import annotations

from dataclasses import field
from typing import Literal

from judgejax.config import section
from judgejax.data.columns import Columns


@section
class DataConfig:
    """Where the rows are and how they become batches.

    path: a jsonl / jsonl.gz / json / parquet file or a `datasets` folder.
    on_error: "raise" on the first malformed row, or "skip" it and count it by reason.
    max_length: the most tokens of one row (SFT conversation; DPO prompt + completion) and the packed row length.
    overlong: "truncate" (SFT: keep the first max_length tokens; DPO: cut the completions, drop the row when the
        prompt alone fills max_length) or "drop" rows over max_length.
    global_batch_size: rows per step over all processes (packed rows when packing).
    bucket_lengths: a batch is padded to the smallest of these that holds its longest row; the largest must be at
        least max_length.
    pack: SFT only: pack several conversations into each row (greedy first fit).
    epochs, seed, shuffle: passes over the data, and a seeded reshuffle of the rows each epoch.
    drop_remainder: drop the rows that do not fill a last global batch of an epoch, or fill it with padding rows.
    """

    path: str
    columns: Columns = field(default_factory=Columns)
    on_error: Literal["raise", "skip"] = "raise"
    max_length: int = 2048
    overlong: Literal["truncate", "drop"] = "truncate"
    global_batch_size: int = 8
    bucket_lengths: tuple[int, ...] = (256, 512, 1024, 2048)
    pack: bool = False
    epochs: int = 1
    seed: int = 0
    shuffle: bool = True
    drop_remainder: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "bucket_lengths", tuple(int(b) for b in self.bucket_lengths))
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"data.on_error must be 'raise' or 'skip', got {self.on_error!r}")
        if self.overlong not in ("truncate", "drop"):
            raise ValueError(f"data.overlong must be 'truncate' or 'drop', got {self.overlong!r}")
        if self.max_length < 2:
            raise ValueError(f"data.max_length must be at least 2, got {self.max_length}")
        if self.global_batch_size < 1 or self.epochs < 1:
            raise ValueError(
                f"data.global_batch_size and data.epochs must be positive, got {self.global_batch_size}, {self.epochs}"
            )
        buckets = self.bucket_lengths
        if not buckets or list(buckets) != sorted(set(buckets)) or buckets[0] < 1:
            raise ValueError(f"data.bucket_lengths must be positive and strictly increasing, got {buckets}")
        if buckets[-1] < self.max_length:
            raise ValueError(f"data.bucket_lengths {buckets} has no bucket for rows of max_length {self.max_length}")

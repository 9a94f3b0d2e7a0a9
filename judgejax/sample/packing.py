"""Prompts packed into rows for the prefill, so that short prompts do not pay for the longest one.

A batch's prompts (what follows their shared prefix, if any) are placed first-fit, longest first,
into rows as long as the bucket of the longest prompt; each prompt in a row is a segment of its
own (attention never crosses segments) with positions counted from the end of the prefix. The
prefill then gathers each prompt's keys and values into a left-padded cache row of that bucket's
length (`CausalLM.prefill`), so decoding and scoring continue as on a padded batch. Rows are
packed per data shard (prompt b's row lies in b's shard) and their count is rounded up to a power
of two or 1.5 times one (few compiled shapes, at most a third of the rows empty).

With `pack=False` every prompt has a row of its own, right-aligned: the plain left-padded batch.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from judgejax.data.batching import bucket_length
from judgejax.data.packing import first_fit


@dataclasses.dataclass(frozen=True)
class PackedPrompts:
    """Host arrays of a packed batch of `len(row)` prompts (fillers included)."""

    tokens: np.ndarray  # int32 [rows, R]
    positions: np.ndarray  # int32 [rows, R]
    segments: np.ndarray  # int32 [rows, R]: 1, 2, ... per prompt within its row, 0 padding
    row: np.ndarray  # int32 [B]: the row holding prompt b
    end: np.ndarray  # int32 [B]: the slot after prompt b's last token
    lengths: np.ndarray  # int32 [B]: prompt b's token count

    @property
    def next_positions(self) -> np.ndarray:
        """The position of the token after each prompt: int32 [B]."""
        return self.positions[self.row, self.end - 1] + 1


def _longest_first_fit(lengths: Sequence[int], width: int) -> list[list[int]]:
    """Indices into `lengths` grouped into rows of at most `width` tokens, placed longest first."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [[order[j] for j in row] for row in first_fit([lengths[i] for i in order], width)]


def _round_rows(n: int) -> int:
    """The smallest of 1, 2, 3, 4, 6, 8, 12, 16, ... that is >= n."""
    power = 1 << (n - 1).bit_length()
    return power * 3 // 4 if power >= 4 and power * 3 // 4 >= n else power


def pack_prompts(prompts: Sequence[Sequence[int]], *, batch_rows: int, shards: int, buckets: Sequence[int],
                 offset: int = 0, pack: bool = True) -> PackedPrompts:
    """Pack `prompts` (then one-token fillers up to `batch_rows`, a multiple of `shards`) into
    rows; positions start at `offset` (the length of a shared prefix before them)."""
    if batch_rows % shards or batch_rows < len(prompts):
        raise ValueError(f"batch_rows={batch_rows} must hold {len(prompts)} prompts and divide into {shards} shards")
    prompts = [list(p) for p in prompts] + [[0]] * (batch_rows - len(prompts))
    width = bucket_length(max(len(p) for p in prompts), buckets)
    per_shard = batch_rows // shards
    groups = [_longest_first_fit([len(p) for p in prompts[s * per_shard:(s + 1) * per_shard]], width) if pack
              else [[i] for i in range(per_shard)] for s in range(shards)]
    rows_per_shard = max(len(g) for g in groups)
    if pack:
        rows_per_shard = min(_round_rows(rows_per_shard), per_shard)
    shape = (shards * rows_per_shard, width)
    tokens, positions, segments = (np.zeros(shape, np.int32) for _ in range(3))
    row, end, lengths = (np.zeros(batch_rows, np.int32) for _ in range(3))
    for s, group in enumerate(groups):
        for r, members in enumerate(group):
            at = s * rows_per_shard + r
            start = 0 if pack else width - len(prompts[s * per_shard + members[0]])
            for segment, local in enumerate(members, start=1):
                b = s * per_shard + local
                n = len(prompts[b])
                tokens[at, start:start + n] = prompts[b]
                positions[at, start:start + n] = offset + np.arange(n)
                segments[at, start:start + n] = segment
                row[b], end[b], lengths[b] = at, start + n, n
                start += n
    return PackedPrompts(tokens, positions, segments, row, end, lengths)

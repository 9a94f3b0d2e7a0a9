"""Batch arrays: next-token targets, loss masks, per-segment positions and segment ids, right padding to buckets.

SFT batch keys, all [B, T]: tokens, targets, loss_mask (float32), positions, segment_ids.
Preference batch keys: the same five with a `chosen_` and a `rejected_` prefix, all [B, T], and row_index [B].
Every array is int32 except the float32 loss masks.

Within a segment of n tokens, targets[t] = tokens[t + 1] and loss_mask[t] = 1.0 when that next token is one to
learn; the segment's last token has target 0 and loss_mask 0, so nothing crosses a segment boundary. Segment ids
count 1, 2, ... along a row; padding has segment id 0, token 0, position 0 and loss_mask 0.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from judgejax.data.tokenize import PreferenceExample, SFTExample

Segment = tuple[np.ndarray, np.ndarray]  # token ids [n], and which of them are tokens to learn [n]
FIELDS = ("tokens", "targets", "loss_mask", "positions", "segment_ids")


def bucket_length(longest: int, buckets: Sequence[int]) -> int:
    """The smallest bucket length that holds `longest` tokens (used for training rows and prompts)."""
    for bucket in sorted(buckets):
        if longest <= bucket:
            return bucket
    raise ValueError(f"a row of {longest} tokens is longer than the largest bucket {max(buckets)}")


def _empty(prefix: str, batch: int, length: int) -> dict[str, np.ndarray]:
    return {
        prefix + name: np.zeros((batch, length), dtype=np.float32 if name == "loss_mask" else np.int32)
        for name in FIELDS
    }


def _write_row(arrays: dict[str, np.ndarray], prefix: str, row: int, segments: Sequence[Segment]) -> None:
    offset = 0
    for segment_id, (ids, learn) in enumerate(segments, start=1):
        n = len(ids)
        if offset + n > arrays[prefix + "tokens"].shape[1]:
            width = arrays[prefix + "tokens"].shape[1]
            raise ValueError(f"segments of {offset + n} tokens do not fit a row of {width}")
        arrays[prefix + "tokens"][row, offset : offset + n] = ids
        arrays[prefix + "targets"][row, offset : offset + n - 1] = ids[1:]
        arrays[prefix + "loss_mask"][row, offset : offset + n - 1] = learn[1:]
        arrays[prefix + "positions"][row, offset : offset + n] = np.arange(n)
        arrays[prefix + "segment_ids"][row, offset : offset + n] = segment_id
        offset += n


def sft_batch(rows: Sequence[Sequence[SFTExample]], length: int) -> dict[str, np.ndarray]:
    """One batch row per entry of `rows`, packing its examples as consecutive segments (an empty entry is padding)."""
    arrays = _empty("", len(rows), length)
    for r, examples in enumerate(rows):
        _write_row(arrays, "", r, [(e.ids, e.assistant) for e in examples])
    return arrays


def _with_prompt(prompt: np.ndarray, completion: np.ndarray) -> Segment:
    ids = np.concatenate([prompt, completion])
    learn = np.concatenate([np.zeros(len(prompt), dtype=bool), np.ones(len(completion), dtype=bool)])
    return ids, learn


def preference_batch(
    examples: Sequence[PreferenceExample | None], row_index: Sequence[int], length: int
) -> dict[str, np.ndarray]:
    """One row per example (None is a padding row, whose row_index is -1); loss masks cover the completions."""
    arrays = {**_empty("chosen_", len(examples), length), **_empty("rejected_", len(examples), length)}
    arrays["row_index"] = np.asarray(row_index, dtype=np.int32).reshape(len(examples))
    for r, example in enumerate(examples):
        if example is None:
            continue
        _write_row(arrays, "chosen_", r, [_with_prompt(example.prompt_ids, example.chosen_ids)])
        _write_row(arrays, "rejected_", r, [_with_prompt(example.prompt_ids, example.rejected_ids)])
    return arrays

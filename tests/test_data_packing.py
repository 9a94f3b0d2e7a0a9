"""First-fit packing against a plain reference, packed-row invariants, and bucket padding."""
from __future__ import annotations

import numpy as np
import pytest

from judgejax.data.batching import bucket_length, sft_batch
from judgejax.data.config import DataConfig
from judgejax.data.errors import RowRef
from judgejax.data.packing import first_fit
from judgejax.data.plan import plan_batches
from judgejax.data.tokenize import SFTExample


def first_fit_reference(lengths: list[int], capacity: int) -> list[list[int]]:
    """Textbook first fit: scan the open rows in order for the first with room."""
    rows: list[list[int]] = []
    used: list[int] = []
    for item, length in enumerate(lengths):
        for r in range(len(rows)):
            if used[r] + length <= capacity:
                rows[r].append(item)
                used[r] += length
                break
        else:
            rows.append([item])
            used.append(length)
    return rows


@pytest.mark.parametrize("seed", range(5))
def test_first_fit_matches_reference(seed):
    rng = np.random.default_rng(seed)
    capacity = int(rng.integers(8, 64))
    lengths = rng.integers(1, capacity + 1, size=int(rng.integers(1, 300))).tolist()
    assert first_fit(lengths, capacity) == first_fit_reference(lengths, capacity)


def test_first_fit_rejects_items_that_cannot_fit():
    with pytest.raises(ValueError, match="item 1 has length 9, outside 1..8"):
        first_fit([3, 9], 8)


def synthetic_examples(count: int, seed: int, longest: int = 30) -> list[SFTExample]:
    """Examples with random tokens (1..99) and a random assistant tail, as after tokenization."""
    rng = np.random.default_rng(seed)
    examples = []
    for i in range(count):
        n = int(rng.integers(2, longest + 1))
        start = int(rng.integers(1, n))
        assistant = np.arange(n) >= start
        examples.append(SFTExample(RowRef("mem.jsonl", "line", i + 1), rng.integers(1, 100, n).astype(np.int32), assistant))
    return examples


def causal_segment_sums(tokens: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
    """A stand-in for attention: each token sums the tokens it may attend to (same segment, not later, not padding)."""
    t = np.arange(tokens.shape[-1])
    allowed = (segment_ids[:, :, None] == segment_ids[:, None, :]) & (t[None, :, None] >= t[None, None, :])
    allowed &= segment_ids[:, :, None] != 0
    return (allowed * tokens[:, None, :]).sum(-1)


def test_packed_batch_invariants():
    examples = synthetic_examples(60, seed=0)
    config = DataConfig(path="unused", max_length=64, bucket_lengths=(32, 64), global_batch_size=4, pack=True, drop_remainder=False)
    plan = plan_batches([len(e.ids) for e in examples], config, pack=True)
    seen = []
    for rows, length in zip(plan.rows, plan.lengths):
        batch = sft_batch([[examples[i] for i in row] for row in rows], length)
        assert set(batch) == {"tokens", "targets", "loss_mask", "positions", "segment_ids"}
        assert all(a.shape == (4, length) for a in batch.values())
        assert batch["loss_mask"].dtype == np.float32 and all(batch[k].dtype == np.int32 for k in batch if k != "loss_mask")
        for r, row in enumerate(rows):
            seen += row
            segment_ids = batch["segment_ids"][r]
            offset = 0
            for s, i in enumerate(row, start=1):
                e = examples[i]
                n = len(e.ids)
                span = slice(offset, offset + n)
                assert (segment_ids[span] == s).all()
                assert (batch["tokens"][r, span] == e.ids).all()
                assert (batch["positions"][r, span] == np.arange(n)).all()
                assert (batch["targets"][r, offset : offset + n - 1] == e.ids[1:]).all()
                assert (batch["loss_mask"][r, offset : offset + n - 1] == e.assistant[1:]).all()
                # the last token of a segment predicts nothing: no target across the boundary
                assert batch["targets"][r, offset + n - 1] == 0 and batch["loss_mask"][r, offset + n - 1] == 0
                offset += n
            assert not segment_ids[offset:].any() and not batch["loss_mask"][r, offset:].any()
            assert not batch["tokens"][r, offset:].any() and not batch["positions"][r, offset:].any()
        # attention restricted by segment ids sees exactly what each example sees alone
        sums = causal_segment_sums(batch["tokens"], batch["segment_ids"])
        for r, row in enumerate(rows):
            alone = np.concatenate([np.cumsum(examples[i].ids) for i in row]) if row else np.zeros(0)
            assert (sums[r, : len(alone)] == alone).all() and not sums[r, len(alone) :].any()
    assert sorted(seen) == list(range(len(examples)))  # every example once per epoch
    assert len(plan.rows[0]) == 4 and sum(len(r) for r in plan.rows[0]) > 4  # rows really hold several examples


def test_bucket_length_is_smallest_fitting_bucket():
    assert [bucket_length(n, (8, 16, 32)) for n in (1, 8, 9, 16, 17, 32)] == [8, 8, 16, 16, 32, 32]
    with pytest.raises(ValueError, match="33 tokens is longer than the largest bucket 32"):
        bucket_length(33, (8, 16, 32))


@pytest.mark.parametrize("pack", [False, True])
def test_each_batch_is_padded_to_the_bucket_of_its_longest_row(pack):
    examples = synthetic_examples(40, seed=1, longest=40)
    buckets = (8, 16, 32, 48)
    config = DataConfig(path="unused", max_length=48, bucket_lengths=buckets, global_batch_size=4, pack=pack)
    plan = plan_batches([len(e.ids) for e in examples], config, pack=pack)
    for rows, length in zip(plan.rows, plan.lengths):
        longest = max(sum(len(examples[i].ids) for i in row) for row in rows)
        assert length == min(b for b in buckets if b >= longest)
        assert sft_batch([[examples[i] for i in row] for row in rows], length)["tokens"].shape == (4, length)
    assert len(set(plan.lengths)) > 1 or pack  # unpacked batches of random lengths land in several buckets


def test_config_rejects_buckets_that_cannot_hold_max_length():
    with pytest.raises(ValueError, match="no bucket for rows of max_length 64"):
        DataConfig(path="unused", max_length=64, bucket_lengths=(16, 32))
    with pytest.raises(ValueError, match="strictly increasing"):
        DataConfig(path="unused", max_length=16, bucket_lengths=(32, 16))

"""grain pipelines: per-process slices of the global batch, epochs and shuffles, exact resume."""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_data_packing import synthetic_examples

from judgejax.data.config import DataConfig
from judgejax.data.errors import RowRef
from judgejax.data.pipeline import batch_iterator, preference_dataset, sft_dataset
from judgejax.data.tokenize import PreferenceExample

PREFERENCE_KEYS = {f"{side}_{name}" for side in ("chosen", "rejected") for name in ("tokens", "targets", "loss_mask", "positions", "segment_ids")} | {"row_index"}


def preference_examples(count: int, seed: int) -> list[PreferenceExample]:
    rng = np.random.default_rng(seed)
    draw = lambda low, high: rng.integers(1, 100, int(rng.integers(low, high))).astype(np.int32)  # noqa: E731
    return [PreferenceExample(RowRef("mem.jsonl", "line", i + 1), draw(2, 12), draw(1, 10), draw(1, 10)) for i in range(count)]


def config(**overrides) -> DataConfig:
    base = dict(path="unused", max_length=32, bucket_lengths=(8, 16, 32), global_batch_size=4, epochs=2, seed=3)
    return DataConfig(**{**base, **overrides})


def build(kind: str, cfg: DataConfig, index: int = 0, count: int = 1):
    if kind == "preference":
        return preference_dataset(preference_examples(23, seed=0), cfg, index, count)
    return sft_dataset(synthetic_examples(23, seed=0), cfg, index, count)


CASES = [("sft", {}), ("sft", {"pack": True}), ("preference", {}), ("sft", {"drop_remainder": False})]


@pytest.mark.parametrize("kind, overrides", CASES)
def test_process_slices_concatenate_to_the_global_batch(kind, overrides):
    cfg = config(**overrides)
    whole = build(kind, cfg)
    parts = [build(kind, cfg, index=p, count=2) for p in range(2)]
    assert len(whole) == len(parts[0]) == len(parts[1]) > 1
    for step in range(len(whole)):
        expected = whole[step]
        halves = [part[step] for part in parts]
        assert set(expected) == set(halves[0]) == set(halves[1])
        for key, value in expected.items():
            assert halves[0][key].shape[0] == 2
            np.testing.assert_array_equal(np.concatenate([h[key] for h in halves]), value)


@pytest.mark.parametrize("kind, overrides", CASES)
def test_resume_from_saved_iterator_state_continues_exactly(kind, overrides):
    cfg = config(**overrides)
    uninterrupted = list(batch_iterator(build(kind, cfg)))
    iterator = batch_iterator(build(kind, cfg))
    consumed = [next(iterator) for _ in range(3)]
    state = json.loads(json.dumps(iterator.get_state()))  # what a checkpoint stores
    resumed = list(batch_iterator(build(kind, cfg), state))
    assert len(consumed) + len(resumed) == len(uninterrupted)
    for got, want in zip(consumed + resumed, uninterrupted, strict=True):
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_preference_batches_carry_row_index_and_keys():
    examples = preference_examples(23, seed=0)
    cfg = config(epochs=1, shuffle=False, drop_remainder=False)
    batches = list(batch_iterator(preference_dataset(examples, cfg)))
    assert all(set(b) == PREFERENCE_KEYS for b in batches)
    index = np.concatenate([b["row_index"] for b in batches])
    assert index.tolist() == list(range(23)) + [-1]  # in order; the last global batch is filled with one padding row
    last = batches[-1]
    assert not last["chosen_segment_ids"][-1].any() and not last["rejected_loss_mask"][-1].any()
    for b in batches:
        for r, i in enumerate(b["row_index"]):
            if i < 0:
                continue
            e = examples[i]
            for side, completion in (("chosen", e.chosen_ids), ("rejected", e.rejected_ids)):
                n = len(e.prompt_ids) + len(completion)
                assert (b[f"{side}_tokens"][r, :n] == np.concatenate([e.prompt_ids, completion])).all()
                # log-probs of exactly the completion tokens: targets at t = P-1 .. n-2
                assert b[f"{side}_loss_mask"][r].nonzero()[0].tolist() == list(range(len(e.prompt_ids) - 1, n - 1))


def test_epochs_reshuffle_every_example_once_and_seed_fixes_order():
    cfg = config(global_batch_size=1, epochs=3, seed=5)
    orders = [b["row_index"][0] for b in batch_iterator(build("preference", cfg))]
    epochs = [orders[i * 23 : (i + 1) * 23] for i in range(3)]
    assert all(sorted(e) == list(range(23)) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2] and epochs[0] != list(range(23))
    again = [b["row_index"][0] for b in batch_iterator(build("preference", cfg))]
    other = [b["row_index"][0] for b in batch_iterator(build("preference", config(global_batch_size=1, epochs=3, seed=6)))]
    assert again == orders and other != orders


def test_drop_remainder_and_bad_process_layouts():
    assert len(build("sft", config(epochs=1))) == 23 // 4
    assert len(build("sft", config(epochs=1, drop_remainder=False))) == -(-23 // 4)
    with pytest.raises(ValueError, match="global_batch_size 4 does not divide over 3 processes"):
        build("sft", config(), index=0, count=3)
    with pytest.raises(ValueError, match="process_index 2 is outside 0..1"):
        build("sft", config(), index=2, count=2)
    with pytest.raises(ValueError, match="pack applies to SFT only"):
        build("preference", config(pack=True))
    with pytest.raises(ValueError, match="23 examples fill no global batch of 32 rows"):
        build("sft", config(global_batch_size=32))

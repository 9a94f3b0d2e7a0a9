"""Prompts packed into prefill rows: the layout (first fit, longest first, per data shard, row
counts rounded to powers of two), and the packed prefill gives the same last activations and the
same left-padded cache as one row per prompt."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from judgejax.model.hf_import import import_hf
from judgejax.sample.packing import _round_rows, pack_prompts
from judgejax.sample.sampler import device_arrays, prefill
from judgejax.sharding import MeshConfig, make_mesh
from tiny_hf import make_tiny_hf

PROMPTS = [list(range(1, 11)), [20, 21, 22], list(range(30, 37)), [40, 41]]


def prompt_of(packed, b):
    row, end, n = packed.row[b], packed.end[b], packed.lengths[b]
    return packed.tokens[row, end - n:end].tolist(), packed.positions[row, end - n:end].tolist()


def test_first_fit_longest_first_with_positions_after_the_prefix():
    packed = pack_prompts(PROMPTS, batch_rows=4, shards=1, buckets=(16,), offset=5)
    assert packed.tokens.shape == (2, 16)  # 10+3+2 | 7
    assert packed.row.tolist() == [0, 0, 1, 0] and packed.end.tolist() == [10, 13, 7, 15]
    for b, prompt in enumerate(PROMPTS):
        assert prompt_of(packed, b) == (prompt, list(range(5, 5 + len(prompt))))
    assert packed.segments[0].tolist() == [1] * 10 + [2] * 3 + [3] * 2 + [0]
    assert packed.next_positions.tolist() == [15, 8, 12, 7]


def test_rows_stay_in_their_shard_and_round_up():
    assert [_round_rows(n) for n in range(1, 14)] == [1, 2, 3, 4, 6, 6, 8, 8, 12, 12, 12, 12, 16]
    packed = pack_prompts(PROMPTS * 2 + [[9] * 16], batch_rows=10, shards=2, buckets=(16,))
    per_shard = len(packed.tokens) // 2
    assert per_shard == 3  # shard 0 needs 3 rows, shard 1 (the 16-token prompt alone) 2: both get 3
    for b in range(10):
        assert packed.row[b] // per_shard == b // 5
        assert prompt_of(packed, b)[0] == (PROMPTS * 2 + [[9] * 16] + [[0]])[b]


def test_unpacked_is_the_left_padded_batch():
    packed = pack_prompts(PROMPTS[:3], batch_rows=4, shards=2, buckets=(8, 16), pack=False)
    assert packed.tokens.shape == (4, 16) and packed.end.tolist() == [16] * 4
    assert packed.tokens[1].tolist() == [0] * 13 + [20, 21, 22]
    assert packed.tokens[3].tolist() == [0] * 16 and packed.segments[3].tolist() == [0] * 15 + [1]
    with pytest.raises(ValueError, match="divide into 3 shards"):
        pack_prompts(PROMPTS, batch_rows=4, shards=3, buckets=(16,))


def test_packed_prefill_equals_a_row_per_prompt(tmp_path):
    make_tiny_hf("qwen3", tmp_path)
    model = import_hf(tmp_path, make_mesh(MeshConfig(data=1), devices=jax.devices()[:1]))
    out = {}
    for pack in (True, False):
        packed = pack_prompts(PROMPTS, batch_rows=4, shards=1, buckets=(16,), pack=pack)
        hidden, cache = jax.jit(lambda arrays: prefill(model, arrays, 20, None))(device_arrays(model, packed))
        out[pack] = jax.device_get((hidden, cache))
    (h_packed, c_packed), (h_rows, c_rows) = out[True], out[False]
    np.testing.assert_allclose(h_packed, h_rows, atol=1e-5)
    np.testing.assert_array_equal(c_packed.segment_ids_bs, c_rows.segment_ids_bs)
    filled = c_rows.segment_ids_bs.astype(bool)  # [B, S]
    for packed_kv, rows_kv, slot_axis in ((c_packed.k_lbkhs, c_rows.k_lbkhs, 4), (c_packed.v_lbksh, c_rows.v_lbksh, 3)):
        a, b = np.moveaxis(packed_kv, slot_axis, 2), np.moveaxis(rows_kv, slot_axis, 2)  # [L, B, S, ...]
        np.testing.assert_allclose(a[:, filled], b[:, filled], atol=1e-5)
        assert not a[:, ~filled].any()
    assert int(c_packed.index) == int(c_rows.index) == 16

"""A prefix every prompt of a batch shares is computed once: generation and verdict scoring with
it equal transformers on the whole prompts, and equal the same runs without sharing, on one
device and on a (2, 2, 2) mesh; the kept prefix is reused only while batches start with it."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

from judgejax.model.hf_import import import_hf
from judgejax.sample import prefix as prefix_module
from judgejax.sample.prefix import PrefixCache, shared_length
from judgejax.sample.sampler import generate
from judgejax.sharding import MeshConfig, make_mesh
from tiny_hf import make_tiny_hf

RNG = np.random.default_rng(7)
HEAD = RNG.integers(1, 90, size=37).tolist()  # shared: 32 tokens after rounding to 16
PROMPTS = [HEAD + RNG.integers(1, 90, size=n).tolist() for n in (5, 1, 30, 12)]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf")
    hf = make_tiny_hf("qwen2", path, max_position_embeddings=256)
    return hf, path


def hf_greedy(hf, prompt, n):
    with torch.no_grad():
        out = hf.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False, eos_token_id=None,
                          pad_token_id=0, attention_mask=torch.ones(1, len(prompt), dtype=torch.long))
    return out[0, len(prompt):].tolist()


def test_shared_length_rounds_down_and_leaves_a_token():
    assert shared_length(PROMPTS) == 32
    assert shared_length([HEAD, HEAD]) == 32  # 37 shared, one left for the last position: 36 -> 32
    assert shared_length([HEAD[:16], HEAD[:16]]) == 0  # 15 at most -> 0
    assert shared_length([[1, 2, 3], [4, 5, 6]]) == 0
    assert shared_length(PROMPTS, multiple=1) == 37
    assert shared_length(PROMPTS[:1]) == 0


def test_generation_with_a_shared_prefix_equals_transformers(hf_dir):
    hf, path = hf_dir
    model = import_hf(path, make_mesh(MeshConfig(data=1), devices=jax.devices()[:1]))
    prefixes = PrefixCache(model)
    shared = generate(model, PROMPTS, max_new_tokens=10, stop_ids=[], buckets=(16, 48), prefixes=prefixes,
                      return_logprobs=True)
    assert len(prefixes.tokens) == 32
    whole = generate(model, PROMPTS, max_new_tokens=10, stop_ids=[], buckets=(80,), return_logprobs=True,
                     prefixes=PrefixCache(model, share=False))
    for prompt, a, b in zip(PROMPTS, shared, whole):
        assert a.tokens == b.tokens == hf_greedy(hf, prompt, 10)
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5)


def test_cache_limit_counts_the_prefix(hf_dir):
    _, path = hf_dir
    model = import_hf(path, make_mesh(MeshConfig(data=1), devices=jax.devices()[:1]))
    out = generate(model, PROMPTS[:2], max_new_tokens=12, stop_ids=[], buckets=(16,), max_cache_len=32 + 16 + 3)
    assert [(c.finish_reason, len(c.tokens)) for c in out] == [("cache_full", 3 + 1)] * 2
    with pytest.raises(ValueError, match="32 shared"):
        generate(model, PROMPTS[:2], max_new_tokens=4, stop_ids=[], buckets=(16,), max_cache_len=48)


def test_kept_prefix_is_reused_only_while_batches_start_with_it(hf_dir, monkeypatch):
    _, path = hf_dir
    model = import_hf(path, make_mesh(MeshConfig(data=1), devices=jax.devices()[:1]))
    calls = []
    compute = prefix_module._shared_prefix
    monkeypatch.setattr(prefix_module, "_shared_prefix", lambda *a: calls.append(a[-1].shape) or compute(*a))
    prefixes = PrefixCache(model)
    other = [[5] * 20 + p[37:] + [1] for p in PROMPTS]
    for batch in (PROMPTS[:2], PROMPTS[2:], other, PROMPTS):
        prefix, rests = prefixes.split(batch)
        assert [prefixes.tokens + tuple(r) for r in rests] == [tuple(p) for p in batch]
    assert calls == [(1, 32), (1, 16), (1, 32)]  # PROMPTS[2:] reused the first; `other` shares 20 -> 16


def test_sharded_generation_with_a_shared_prefix(hf_dir):
    hf, path = hf_dir
    mesh = make_mesh(MeshConfig(2, 2, 2))
    with jax.set_mesh(mesh):
        model = import_hf(path, mesh)
        prefixes = PrefixCache(model, batch_multiple=4)
        out = generate(model, PROMPTS, max_new_tokens=6, stop_ids=[], batch_multiple=4, prefixes=prefixes)
    assert len(prefixes.tokens) == 32
    for prompt, completion in zip(PROMPTS, out):
        assert completion.tokens == hf_greedy(hf, prompt, 6)

"""The jitted sampler against transformers' greedy `generate`, and its finish reasons."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

from judgejax.model.hf_import import import_hf
from judgejax.sample.methods import Greedy, Sample
from judgejax.sample.sampler import generate
from judgejax.sharding import MeshConfig, make_mesh
from tiny_hf import FAMILIES, make_tiny_hf

PROMPTS = [[5, 17, 42, 8, 9, 11, 3], [7, 2], [60, 61, 62, 63, 1]]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf")
    hf = make_tiny_hf("qwen3", path)
    model = import_hf(path, make_mesh(MeshConfig(data=1), devices=jax.devices()[:1]))
    return hf, model


def hf_greedy(hf, prompt, n):
    with torch.no_grad():
        out = hf.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False,
                          eos_token_id=None, pad_token_id=0, attention_mask=torch.ones(1, len(prompt), dtype=torch.long))
    return out[0, len(prompt):].tolist()


def test_greedy_matches_transformers_generate(models):
    hf, model = models
    ours = generate(model, PROMPTS, max_new_tokens=12, stop_ids=[], buckets=(8, 16))
    for prompt, completion in zip(PROMPTS, ours):
        assert completion.tokens == hf_greedy(hf, prompt, 12)
        assert completion.finish_reason == "length"


def test_long_prompts_match_transformers_generate(models):
    """Prompts longer than an attention block: the prefill runs blocked attention."""
    hf, model = models
    rng = np.random.default_rng(3)
    prompts = [rng.integers(1, 60, size=n).tolist() for n in (290, 150)]
    ours = generate(model, prompts, max_new_tokens=8, stop_ids=[], buckets=(320,))
    for prompt, completion in zip(prompts, ours):
        assert completion.tokens == hf_greedy(hf, prompt, 8)


def test_stop_token_and_logprobs(models):
    hf, model = models
    ref = hf_greedy(hf, PROMPTS[0], 12)
    stop = ref[4]
    first = ref.index(stop)
    [c] = generate(model, PROMPTS[:1], max_new_tokens=12, stop_ids=[stop], return_logprobs=True)
    assert c.finish_reason == "stop" and c.tokens == ref[: first + 1]
    with torch.no_grad():
        logits = hf(torch.tensor([PROMPTS[0] + ref[:first]])).logits[0, len(PROMPTS[0]) - 1 :]
    expected = torch.log_softmax(logits.float(), -1)[torch.arange(first + 1), torch.tensor(ref[: first + 1])]
    np.testing.assert_allclose(c.logprobs, expected.numpy(), atol=1e-4)


def test_cache_full_is_reported(models):
    _, model = models
    [c] = generate(model, PROMPTS[:1], max_new_tokens=12, stop_ids=[], buckets=(8,), max_cache_len=13)
    assert c.finish_reason == "cache_full" and len(c.tokens) == 13 - 8 + 1


def test_sampling_is_seeded_and_topk1_is_greedy(models):
    _, model = models
    kw = dict(max_new_tokens=6, stop_ids=[])
    a = generate(model, PROMPTS, method=Sample(temperature=1.0), seed=3, **kw)
    b = generate(model, PROMPTS, method=Sample(temperature=1.0), seed=3, **kw)
    c = generate(model, PROMPTS, method=Sample(temperature=1.0), seed=4, **kw)
    assert [x.tokens for x in a] == [x.tokens for x in b] != [x.tokens for x in c]
    greedy = generate(model, PROMPTS, method=Greedy(), **kw)
    top1 = generate(model, PROMPTS, method=Sample(temperature=0.7, top_k=1), seed=9, **kw)
    tiny_p = generate(model, PROMPTS, method=Sample(temperature=0.7, top_p=1e-6), seed=9, **kw)
    assert [x.tokens for x in greedy] == [x.tokens for x in top1] == [x.tokens for x in tiny_p]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_greedy_matches_generate_for_every_family(family, tmp_path):
    hf = make_tiny_hf(family, tmp_path)
    model = import_hf(tmp_path, make_mesh(MeshConfig(data=1), devices=jax.devices()[:1]))
    batched = generate(model, PROMPTS, max_new_tokens=6, stop_ids=[], buckets=(8,))
    for prompt, completion in zip(PROMPTS, batched):  # mixed lengths in one batch == one by one
        assert completion.tokens == hf_greedy(hf, prompt, 6)


def test_sharded_sampling_equals_single_device(models, tmp_path):
    hf, _ = models
    hf.save_pretrained(tmp_path)
    mesh = make_mesh(MeshConfig(2, 2, 2))
    with jax.set_mesh(mesh):
        sharded = generate(import_hf(tmp_path, mesh), PROMPTS, max_new_tokens=8, stop_ids=[], batch_multiple=8)
    for prompt, completion in zip(PROMPTS, sharded):
        assert completion.tokens == hf_greedy(hf, prompt, 8)


@pytest.mark.parametrize("chunk", [3, 5])
def test_decode_in_chunks_equals_step_by_step(models, chunk):
    """Stop checks every `chunk` steps: the same tokens, log-probs and finish reasons (a stop inside
    a chunk, the length limit, a full cache), and transformers' greedy output."""
    hf, model = models
    ref = hf_greedy(hf, PROMPTS[0], 12)
    stops = [ref[4]]
    for kwargs in (dict(max_new_tokens=12, stop_ids=stops), dict(max_new_tokens=11, stop_ids=[]),
                   dict(max_new_tokens=12, stop_ids=[], buckets=(8,), max_cache_len=13)):
        one = generate(model, PROMPTS, return_logprobs=True, decode_chunk=1, **kwargs)
        many = generate(model, PROMPTS, return_logprobs=True, decode_chunk=chunk, **kwargs)
        assert [(c.tokens, c.finish_reason) for c in many] == [(c.tokens, c.finish_reason) for c in one]
        for a, b in zip(one, many):
            np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-6)
    assert {c.finish_reason for c in one} == {"cache_full"}
    [c] = generate(model, PROMPTS[:1], max_new_tokens=12, stop_ids=stops, decode_chunk=chunk)
    assert c.finish_reason == "stop" and c.tokens == ref[: ref.index(stops[0]) + 1]


def test_a_batch_over_its_memory_budget_is_generated_in_halves_with_the_same_tokens(models, capfd):
    """XLA's plan of the whole batch's program is over the budget: the batch is generated as two
    (or more) smaller ones, each within it; greedy tokens equal transformers' all the same."""
    from judgejax.budget import MemoryBudgetError, planned_bytes
    from judgejax.sample import sampler

    hf, model = models
    prompts = PROMPTS + [[9, 8, 7, 6]]
    whole = generate(model, prompts, max_new_tokens=12, stop_ids=[], buckets=(8, 16), memory_budget=10**12)
    planned = planned_bytes(list(sampler._programs.values())[-1])[0]  # the whole batch's program
    split = generate(model, prompts, max_new_tokens=12, stop_ids=[], buckets=(8, 16), memory_budget=planned - 1)
    assert "generating them as 2 and 2" in capfd.readouterr().err
    assert [c.tokens for c in split] == [c.tokens for c in whole] == [hf_greedy(hf, p, 12) for p in prompts]
    with pytest.raises(MemoryBudgetError, match=r"sampler: 1 prompt\(s\) of up to \d+ tokens and 12 new tokens: "
                                                r"XLA's plan needs .* GB, more than the budget of 1e-09 GB; lower"):
        generate(model, prompts, max_new_tokens=12, stop_ids=[], buckets=(8, 16), memory_budget=1)

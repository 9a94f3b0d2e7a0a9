"""The real SmolLM2-135M-Instruct: JAX logits and greedy generation equal transformers'."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
import transformers

from judgejax.model.hf_import import import_hf
from judgejax.sample.sampler import generate
from judgejax.sharding import MeshConfig, make_mesh
from judgejax.tokenizer import chat_token_ids, load_tokenizer, stop_token_ids

pytestmark = pytest.mark.slow

MESSAGES = [
    {"role": "system", "content": "You are a careful judge of answers."},
    {"role": "user", "content": "Which is larger, 9.11 or 9.9? Explain briefly."},
]


def test_logits_and_greedy_generation_match_transformers(smollm2_dir):
    tokenizer = load_tokenizer(smollm2_dir)
    ids = chat_token_ids(tokenizer, MESSAGES, add_generation_prompt=True)
    reference_ids = transformers.AutoTokenizer.from_pretrained(smollm2_dir).apply_chat_template(
        MESSAGES, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    assert ids == list(reference_ids)

    hf = transformers.AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0].numpy()
        ref_generated = hf.generate(torch.tensor([ids]), max_new_tokens=16, do_sample=False,
                                    attention_mask=torch.ones(1, len(ids), dtype=torch.long))[0, len(ids):].tolist()

    model = import_hf(smollm2_dir, make_mesh(MeshConfig(data=1), devices=jax.devices()[:1]))
    tokens = np.asarray([ids], np.int32)
    logits, _ = model(tokens, np.arange(len(ids), dtype=np.int32)[None], np.ones_like(tokens))
    ours = np.asarray(logits[0])
    diff = float(np.abs(ours - ref).max())
    print(f"SmolLM2-135M-Instruct: max |logits diff| = {diff:.2e} over {len(ids)} positions")
    assert diff <= 1e-3
    assert (ours.argmax(-1) == ref.argmax(-1)).all()

    [completion] = generate(model, [ids], max_new_tokens=16, stop_ids=stop_token_ids(tokenizer))
    assert completion.tokens == ref_generated[: len(completion.tokens)]
    assert completion.finish_reason == "stop" or len(completion.tokens) == 16

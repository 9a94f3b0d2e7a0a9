"""Tiny judges for the evaluation tests: a byte-level BPE tokenizer with a ChatML template trained
offline on RewardBench's own text (so judge prompts stay a few hundred tokens long), and tiny
random Llama models (a policy and a different reference) saved as HF folders with it. The tests
here check that setup against transformers; the eval tests import the fixtures."""
from __future__ import annotations

import pathlib

import jax
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from judgejax.eval.examples import load_rewardbench, make_items, select_examples
from judgejax.eval.generative import judge_prompt_ids
from judgejax.judge.templates import get_template
from judgejax.model.hf_import import import_hf
from judgejax.sharding import MeshConfig, make_mesh
from tiny_hf import make_tiny_hf
from shared_data import SHARED as SHARED_ROOT

DATA = SHARED_ROOT / "data" / "rewardbench" / "rewardbench_filtered.parquet"
VOCAB = 4096
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# One subset of each kind: chat, chat hard, two safety, math and code (code answers start with
# indentation, which merges with the generation prompt's newline).
SUBSETS = ["alpacaeval-easy", "llmbar-natural", "refusals-dangerous", "xstest-should-respond", "math-prm", "hep-python"]


def tiny_tokenizer() -> transformers.PreTrainedTokenizerFast:
    rows = pq.read_table(DATA, columns=["question", "response_A", "response_B"]).to_pylist()
    corpus = [text for row in rows[::3] for text in row.values()]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(corpus, trainer)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>",
                                                pad_token="<|endoftext|>", chat_template=CHATML)


@pytest.fixture(scope="session")
def tiny_judges(tmp_path_factory) -> dict[str, pathlib.Path]:
    """HF folders {"policy", "reference"}: tiny random Llamas (different seeds) with the tiny tokenizer."""
    tokenizer = tiny_tokenizer()
    folders = {}
    for name, seed in (("policy", 0), ("reference", 1)):
        folder = tmp_path_factory.mktemp(name)
        make_tiny_hf("llama", folder, seed=seed, vocab_size=VOCAB, max_position_embeddings=4096)
        tokenizer.save_pretrained(folder)
        folders[name] = folder
    return folders


def hf_model(folder: pathlib.Path) -> transformers.PreTrainedModel:
    return transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def test_tiny_judge_prompts_and_logits_match_transformers(tiny_judges):
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_judges["policy"])
    examples = select_examples(load_rewardbench(DATA), SUBSETS, 1, seed=0)
    lengths = [len(judge_prompt_ids(tokenizer, get_template("pair-v2"), item)) for item in make_items(examples, 0, True)]
    assert 200 < max(lengths) <= 2048  # the eval tests' prompts fit a 2048 bucket
    item = make_items(examples, 0, False)[0]
    ids = judge_prompt_ids(tokenizer, get_template("pair-v2"), item)
    rendered = tokenizer.apply_chat_template(get_template("pair-v2").messages(
        item.example.prompt, *((item.example.rejected, item.example.chosen) if item.swapped
                               else (item.example.chosen, item.example.rejected))), add_generation_prompt=True, tokenize=False)
    assert tokenizer.decode(ids) == rendered
    model = import_hf(tiny_judges["policy"], make_mesh(MeshConfig(data=1), devices=jax.devices()[:1]))
    tokens = np.asarray([ids[:300]], np.int32)
    ours, _ = model(tokens, np.arange(300)[None], np.ones_like(tokens))
    with torch.no_grad():
        theirs = hf_model(tiny_judges["policy"])(torch.tensor(tokens)).logits.numpy()
    np.testing.assert_allclose(np.asarray(ours), theirs, atol=1e-4)

"""A tiny offline ChatML tokenizer for the data tests (byte-level BPE trained on a few sentences), and its checks."""
from __future__ import annotations

import functools

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<s>"]
CORPUS = [
    "Please act as an impartial judge and evaluate the quality of the responses.",
    "Which answer is better, A or B? The first answer is correct. Verdict: [[A]]",
    "hello world, the user asks a question and the assistant gives an answer.",
    "system user assistant You are a helpful assistant.",
]
# ChatML, as rendered by Qwen2.5 and SmolLM2 (without their default system prompt).
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# The same rendering, with the assistant text after the generation prompt marked for transformers'
# `return_assistant_tokens_mask`.
CHATML_MARKED = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' + '\n' }}{% endgeneration %}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@functools.cache
def _trained() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    return tokenizer


def chatml_tokenizer(chat_template: str = CHATML, bos_token: str | None = None) -> PreTrainedTokenizerFast:
    """A fresh tokenizer with the given chat template; with `bos_token`, plain calls prepend it (like Llama)."""
    backend = Tokenizer.from_str(_trained().to_str())
    if bos_token is not None:
        bos_id = backend.token_to_id(bos_token)
        backend.post_processor = processors.TemplateProcessing(single=f"{bos_token} $A", special_tokens=[(bos_token, bos_id)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=bos_token
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def test_tiny_tokenizer_round_trips_text_and_keeps_chatml_tokens_whole():
    tokenizer = chatml_tokenizer()
    text = "Which answer is better?\n\nÜnïcode and [[B]] too."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=True)["input_ids"]
    assert rendered.count(tokenizer.convert_tokens_to_ids("<|im_start|>")) == 1
    assert rendered.count(tokenizer.convert_tokens_to_ids("<|im_end|>")) == 1
    assert tokenizer.decode(rendered) == "<|im_start|>user\nhi<|im_end|>\n"

"""A tiny model folder (random weights + the tiny offline ChatML tokenizer) and tiny data files,
for end-to-end runs of the trainer."""

from __future__ import annotations

import json
import pathlib

from test_data_tokenizer import chatml_tokenizer
from tiny_hf import make_tiny_hf

QUESTIONS = ["Which answer is better, A or B?", "hello world", "The user asks a question.",
             "Please act as an impartial judge.", "Is the first answer correct?", "Evaluate the responses.",
             "You are a helpful assistant.", "Verdict please."]
ANSWERS = ["Verdict: [[A]]", "The first answer is correct.", "[[B]]", "hello", "Which answer?",
           "the assistant gives an answer.", "Please act.", "B is better."]


def make_tiny_model(path: pathlib.Path, **overrides) -> pathlib.Path:
    tokenizer = chatml_tokenizer()
    make_tiny_hf("llama", path, vocab_size=len(tokenizer), **overrides)
    tokenizer.save_pretrained(path)
    return path


def write_sft(path: pathlib.Path, rows: int = 8) -> pathlib.Path:
    with path.open("w") as f:
        for i in range(rows):
            messages = [{"role": "user", "content": QUESTIONS[i % 8]}, {"role": "assistant", "content": ANSWERS[i % 8]}]
            f.write(json.dumps({"messages": messages}) + "\n")
    return path


def write_pref(path: pathlib.Path, rows: int = 8) -> pathlib.Path:
    with path.open("w") as f:
        for i in range(rows):
            f.write(json.dumps({"prompt": QUESTIONS[i % 8], "chosen": ANSWERS[i % 8],
                                "rejected": ANSWERS[(i + 3) % 8]}) + "\n")
    return path

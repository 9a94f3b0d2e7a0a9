"""Chat-template tokenization with loss on assistant tokens only, and the length policy."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from judgejax.data.chat import chat_ids, require_prefix
from judgejax.data.columns import Columns
from judgejax.data.errors import RowRef
from judgejax.data.rows import PreferenceRow, SFTRow

Overlong = Literal["truncate", "drop"]


@dataclass(frozen=True)
class SFTExample:
    """A tokenized conversation; `assistant[t]` marks token t as part of an assistant turn (a token to learn)."""

    ref: RowRef
    ids: np.ndarray  # int32 [L]
    assistant: np.ndarray  # bool [L]


@dataclass(frozen=True)
class PreferenceExample:
    """A tokenized preference row: the prompt with the generation prompt, and each completion's token suffix."""

    ref: RowRef
    prompt_ids: np.ndarray  # int32 [P]
    chosen_ids: np.ndarray  # int32 [C], up to and including the template's end of turn
    rejected_ids: np.ndarray  # int32 [R]


def tokenize_sft_row(row: SFTRow, tokenizer: Any, columns: Columns) -> SFTExample:
    """Tokens of the whole conversation; an assistant turn's tokens are those that rendering it adds after the
    conversation before it rendered with the generation prompt (checked to be a token prefix)."""
    messages = row.messages
    full = chat_ids(tokenizer, messages, False, row.ref)
    assistant = np.zeros(len(full), dtype=bool)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        field = f"{columns.messages}[{i}]"
        prompt = chat_ids(tokenizer, messages[:i], True, row.ref)
        turn = full if i == len(messages) - 1 else chat_ids(tokenizer, messages[: i + 1], False, row.ref)
        before = "the conversation before this assistant turn, with the generation prompt,"
        require_prefix(prompt, turn, row.ref, field, before, tokenizer)
        require_prefix(turn, full, row.ref, field, "the conversation up to this assistant turn", tokenizer)
        assistant[len(prompt) : len(turn)] = True
    return SFTExample(row.ref, np.asarray(full, dtype=np.int32), assistant)


def tokenize_preference_row(row: PreferenceRow, tokenizer: Any, columns: Columns) -> PreferenceExample:
    """Prompt ids = template(prompt, generation prompt); each completion = template(prompt + completion) after them."""
    prompt = chat_ids(tokenizer, row.prompt, True, row.ref)
    completions = []
    for field, completion in ((columns.chosen, row.chosen), (columns.rejected, row.rejected)):
        full = chat_ids(tokenizer, row.prompt + completion, False, row.ref)
        require_prefix(prompt, full, row.ref, field, "the prompt with the generation prompt", tokenizer)
        completions.append(np.asarray(full[len(prompt) :], dtype=np.int32))
    return PreferenceExample(row.ref, np.asarray(prompt, dtype=np.int32), *completions)


def fit_sft(example: SFTExample, max_length: int, overlong: Overlong) -> tuple[SFTExample | None, str]:
    """Applies the length policy; returns the example (or None when dropped) and what happened.

    Truncation keeps the first max_length tokens; a row left with no assistant token to predict is dropped.
    """
    if len(example.ids) <= max_length:
        return example, "kept"
    if overlong == "drop":
        return None, "too_long"
    cut = replace(example, ids=example.ids[:max_length], assistant=example.assistant[:max_length])
    if not cut.assistant[1:].any():
        return None, "no_assistant_tokens_left"
    return cut, "truncated"


def fit_preference(
    example: PreferenceExample, max_length: int, overlong: Overlong
) -> tuple[PreferenceExample | None, str]:
    """Applies the length policy to prompt + each completion; truncation cuts the completions' ends and drops the
    row when the prompt alone leaves no room for a completion token."""
    prompt = len(example.prompt_ids)
    if prompt + max(len(example.chosen_ids), len(example.rejected_ids)) <= max_length:
        return example, "kept"
    if overlong == "drop":
        return None, "too_long"
    if prompt >= max_length:
        return None, "prompt_too_long"
    room = max_length - prompt
    return replace(example, chosen_ids=example.chosen_ids[:room], rejected_ids=example.rejected_ids[:room]), "truncated"

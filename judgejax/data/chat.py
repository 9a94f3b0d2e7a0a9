"""Token ids of a conversation through the tokenizer's own chat template."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jinja2

from judgejax.data.errors import DataError, RowRef
from judgejax.data.rows import Message


def chat_ids(tokenizer: Any, messages: Sequence[Message], add_generation_prompt: bool, ref: RowRef) -> list[int]:
    """Renders and tokenizes `messages` with the chat template, once (the template's text carries any BOS).

    Raises a `DataError` when the template rejects the conversation or the ids start with two BOS tokens.
    """
    try:
        out = tokenizer.apply_chat_template(list(messages), tokenize=True, add_generation_prompt=add_generation_prompt)
    except jinja2.TemplateError as e:
        raise DataError(ref, None, "template_error", f"the chat template rejects this conversation: {e}") from e
    ids = out["input_ids"] if isinstance(out, Mapping) else out  # transformers 5 returns a BatchEncoding
    ids = [int(i) for i in ids]
    bos = tokenizer.bos_token_id
    if bos is not None and len(ids) >= 2 and ids[0] == ids[1] == bos:
        raise DataError(ref, None, "double_bos", "the rendered conversation starts with two BOS tokens")
    return ids


def require_prefix(prefix: list[int], ids: list[int], ref: RowRef, field: str, what: str, tokenizer: Any) -> None:
    """Raises a `DataError` naming the row and field when `prefix` is not a token prefix of `ids`."""
    if ids[: len(prefix)] == prefix:
        return
    at = next((i for i, (a, b) in enumerate(zip(prefix, ids)) if a != b), min(len(prefix), len(ids)))
    raise DataError(
        ref,
        field,
        "prompt_not_prefix",
        f"{what} is not a token prefix of the conversation that continues it; they differ at token {at}: "
        f"{tokenizer.decode(prefix[at:at + 8])!r} vs {tokenizer.decode(ids[at:at + 8])!r}",
    )

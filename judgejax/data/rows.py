"""Validated SFT and preference rows, parsed from raw records through a column mapping."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from judgejax.data.columns import Columns
from judgejax.data.errors import DataError, RowRef

Message = dict[str, str]
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class SFTRow:
    """A conversation; the loss covers its assistant turns."""

    ref: RowRef
    messages: list[Message]


@dataclass(frozen=True)
class PreferenceRow:
    """A prompt (ending in a user turn) and two assistant completions, chosen better than rejected."""

    ref: RowRef
    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]


def _column(record: Any, name: str, ref: RowRef) -> Any:
    if not isinstance(record, dict):
        raise DataError(ref, None, "wrong_type", f"expected an object with named fields, got {type(record).__name__}")
    value = record.get(name)
    if value is None:
        raise DataError(ref, name, "missing_field", "field is missing or null")
    return value


def _messages(value: Any, ref: RowRef, field: str) -> list[Message]:
    """Checks a list of {role, content} messages; empty content is allowed only for a system turn."""
    if not isinstance(value, list):
        raise DataError(ref, field, "wrong_type", f"expected a list of messages, got {type(value).__name__}")
    if not value:
        raise DataError(ref, field, "empty_content", "the list of messages is empty")
    messages = []
    for i, message in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(message, dict):
            raise DataError(ref, where, "wrong_type", f"expected a message object, got {type(message).__name__}")
        for key in ("role", "content"):
            if message.get(key) is None:
                raise DataError(ref, f"{where}.{key}", "missing_field", "field is missing or null")
            if not isinstance(message[key], str):
                got = type(message[key]).__name__
                raise DataError(ref, f"{where}.{key}", "wrong_type", f"expected a string, got {got}")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise DataError(ref, f"{where}.role", "unknown_role", f"unknown role {role!r}, expected one of {ROLES}")
        if role != "system" and not content.strip():
            raise DataError(ref, f"{where}.content", "empty_content", f"empty {role} content")
        messages.append({"role": role, "content": content})
    return messages


def parse_sft_row(record: Any, ref: RowRef, columns: Columns) -> SFTRow:
    """An SFT row: messages with at least one assistant turn, not starting with one."""
    field = columns.messages
    messages = _messages(_column(record, field, ref), ref, field)
    if messages[0]["role"] == "assistant":
        raise DataError(ref, f"{field}[0].role", "misplaced_role", "the conversation starts with an assistant turn")
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError(ref, field, "no_assistant_turn", "no assistant turn to learn from")
    return SFTRow(ref, messages)


def _turns(value: Any, ref: RowRef, field: str, role: str, what: str) -> list[Message]:
    """Messages of a column: a plain string is one turn of `role` (`what` names it in errors)."""
    if isinstance(value, str):
        if not value.strip():
            raise DataError(ref, field, "empty_content", f"empty {what}")
        return [{"role": role, "content": value}]
    return _messages(value, ref, field)


def _prompt(value: Any, ref: RowRef, field: str) -> list[Message]:
    messages = _turns(value, ref, field, "user", "prompt")
    if messages[-1]["role"] != "user":
        last = f"{field}[{len(messages) - 1}].role"
        raise DataError(ref, last, "misplaced_role", "the prompt must end with a user turn")
    return messages


def _completion(value: Any, ref: RowRef, field: str) -> list[Message]:
    messages = _turns(value, ref, field, "assistant", "completion")
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            raise DataError(ref, f"{field}[{i}].role", "misplaced_role", "a completion holds assistant turns only")
    return messages


def parse_preference_row(record: Any, ref: RowRef, columns: Columns) -> PreferenceRow:
    """A preference row; a plain-string prompt is one user turn, a plain-string completion one assistant turn."""
    prompt = _prompt(_column(record, columns.prompt, ref), ref, columns.prompt)
    chosen = _completion(_column(record, columns.chosen, ref), ref, columns.chosen)
    rejected = _completion(_column(record, columns.rejected, ref), ref, columns.rejected)
    return PreferenceRow(ref, prompt, chosen, rejected)

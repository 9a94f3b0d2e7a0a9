"""The common preference row that every source adapter produces, and its JSONL form.

One JSONL line per pair:
    id               unique over all sources, e.g. "hh-rlhf/75"
    source           the source name, e.g. "hh-rlhf"
    source_row       where it came from: "<file under the source dir> row <0-based record index>" (line index in
                     JSONL files, list index in JSON files, row index in parquet files: the numbering of
                     decontam_exclusions.json), plus what was picked where a source row yields a choice
    domain           one of DOMAINS (the judge templates' criteria)
    question         the prompt as one string: the user message, or for a conversation every turn labelled
                     "System:", "User:", "Assistant:" and separated by blank lines
    prompt_messages  the prompt as chat messages ({"role", "content"}; ends with a user turn), always present, so a
                     DPO reader can take `prompt_messages` as its prompt column for every row
    chosen, rejected the two answers to the last user turn, chosen better than rejected
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from judgejax.data.errors import DataError, RowRef
from judgejax.data.jsonl import write_jsonl

Message = dict[str, str]
DOMAINS = ("general", "safety", "math", "code")
LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}
# An exclusion key names rows the way decontam_exclusions.json does: (file key, kind, value), kind one of
# "row" (0-based record index), "id", "instruction", "slug".
ExclusionKey = tuple[str, str, object]


@dataclass(frozen=True)
class Pair:
    """One preference pair. `exclusion_keys` say which decontam_exclusions.json entries would name it."""

    id: str
    source: str
    source_row: str
    domain: str
    prompt_messages: tuple[Message, ...]
    chosen: str
    rejected: str
    exclusion_keys: frozenset[ExclusionKey] = field(default=frozenset(), compare=False)

    @property
    def question(self) -> str:
        return render_question(self.prompt_messages)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "source": self.source,
            "source_row": self.source_row,
            "domain": self.domain,
            "question": self.question,
            "prompt_messages": [dict(m) for m in self.prompt_messages],
            "chosen": self.chosen,
            "rejected": self.rejected,
        }


def render_question(messages: Iterable[Message]) -> str:
    """A lone user message as is; a conversation as labelled turns separated by blank lines."""
    messages = list(messages)
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n\n".join(f"{LABELS[m['role']]}: {m['content']}" for m in messages)


def prompt_messages(turns: Iterable[tuple[str, str]], ref: RowRef, field_name: str) -> tuple[Message, ...]:
    """Chat messages from (role, text) turns: texts stripped, empty system turns dropped, consecutive turns of one
    role merged with a blank line between them. The prompt must end with a user turn and hold no empty turn."""
    messages: list[Message] = []
    for role, text in turns:
        text = text.strip()
        if role == "system" and not text:
            continue
        if not text:
            raise DataError(ref, field_name, "empty_content", f"empty {role} turn in the prompt")
        if messages and messages[-1]["role"] == role:
            messages[-1] = {"role": role, "content": messages[-1]["content"] + "\n\n" + text}
        else:
            messages.append({"role": role, "content": text})
    if not messages or messages[-1]["role"] != "user":
        raise DataError(ref, field_name, "misplaced_role", "the prompt must end with a user turn")
    return tuple(messages)


def user_prompt(text: str, ref: RowRef, field_name: str) -> tuple[Message, ...]:
    """A single-turn prompt (stripped, not empty)."""
    return prompt_messages([("user", text)], ref, field_name)


def string_field(record: object, name: str, ref: RowRef, parent: str = "") -> str:
    """`record[name]`, which must be a string; errors name the field as `parent.name` when nested."""
    label = f"{parent}.{name}" if parent else name
    if not isinstance(record, dict):
        raise DataError(ref, parent or None, "wrong_type", f"expected an object with named fields, got {type(record).__name__}")
    value = record.get(name)
    if value is None:
        raise DataError(ref, label, "missing_field", "field is missing or null")
    if not isinstance(value, str):
        raise DataError(ref, label, "wrong_type", f"expected a string, got {type(value).__name__}")
    return value


def mapping(record: object, ref: RowRef) -> dict:
    if not isinstance(record, dict):
        raise DataError(ref, None, "wrong_type", f"expected an object with named fields, got {type(record).__name__}")
    return record


def row_index(ref: RowRef) -> int:
    """The 0-based record index of a row (a JSONL line number is 1-based)."""
    return ref.number - 1 if ref.kind == "line" else ref.number


def row_key(file_key: str, ref: RowRef) -> ExclusionKey:
    return (file_key, "row", row_index(ref))


def write_pairs(pairs: Iterable[Pair], path: str | Path) -> int:
    """Writes one JSON object per line (UTF-8, not ASCII-escaped); returns the number written."""
    return write_jsonl(path, (pair.to_json() for pair in pairs))

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
and, for a pair graded by a teacher (`judgejax.sources.arena`), its `Grading`:
    gap, scores      the two answers' ratings (chosen first) and their difference
    teacher          the teacher's critique of each answer: {"chosen": ..., "rejected": ...}

`read_pairs` reads such a file back, each line checked once (a `DataError` names file, line, field).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from judgejax.data.errors import DataError, RowRef
from judgejax.data.jsonl import read_jsonl, write_jsonl

Message = dict[str, str]
DOMAINS = ("general", "safety", "math", "code")
LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}
# An exclusion key names rows the way decontam_exclusions.json does: (file key, kind, value), kind one of
# "row" (0-based record index), "id", "instruction", "slug".
ExclusionKey = tuple[str, str, object]


@dataclass(frozen=True)
class Grading:
    """A teacher's ratings of a pair's two answers (chosen first) and its critique of each."""

    scores: tuple[float, float]  # as the teacher wrote them (8, 7.5)
    chosen_critique: str
    rejected_critique: str

    @property
    def gap(self) -> float:
        return self.scores[0] - self.scores[1]

    def to_json(self) -> dict:
        return {"gap": self.gap, "scores": list(self.scores),
                "teacher": {"chosen": self.chosen_critique, "rejected": self.rejected_critique}}

    @classmethod
    def from_json(cls, record: dict, ref: RowRef) -> "Grading":
        scores = record.get("scores")
        if not (isinstance(scores, list) and len(scores) == 2
                and all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scores)):
            raise DataError(ref, "scores", "wrong_type", f"expected two numeric ratings, got {scores!r:.80}")
        return cls((scores[0], scores[1]), string_field(record.get("teacher"), "chosen", ref, "teacher"),
                   string_field(record.get("teacher"), "rejected", ref, "teacher"))


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
    grading: Grading | None = None
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
        } | (self.grading.to_json() if self.grading else {})

    @classmethod
    def from_json(cls, record: object, ref: RowRef) -> "Pair":
        """A pair from its JSONL form; a file written by hand may give `question` alone (one user turn)."""
        record = mapping(record, ref)
        text = {name: string_field(record, name, ref) for name in ("id", "source", "source_row", "domain", "chosen",
                                                                   "rejected")}
        for name in ("id", "chosen", "rejected"):
            if not text[name].strip():
                raise DataError(ref, name, "empty_content", "empty text")
        if text["domain"] not in DOMAINS:
            raise DataError(ref, "domain", "unknown_domain", f"{text['domain']!r} is not one of {', '.join(DOMAINS)}")
        if "prompt_messages" in record:
            messages = stored_messages(record["prompt_messages"], ref)
        else:
            messages = user_prompt(string_field(record, "question", ref), ref, "question")
        grading = Grading.from_json(record, ref) if "scores" in record else None
        return cls(prompt_messages=messages, grading=grading, **text)


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


def stored_messages(turns: object, ref: RowRef) -> tuple[Message, ...]:
    """A written pair's `prompt_messages` as they are: known roles, no empty turn, a user turn last."""
    if not isinstance(turns, list) or not turns:
        raise DataError(ref, "prompt_messages", "wrong_type", "expected a non-empty list of chat messages")
    messages = tuple({"role": string_field(m, "role", ref, "prompt_messages"),
                      "content": string_field(m, "content", ref, "prompt_messages")} for m in turns)
    for m in messages:
        if m["role"] not in LABELS:
            raise DataError(ref, "prompt_messages.role", "unknown_role", f"{m['role']!r} is not one of {', '.join(LABELS)}")
        if not m["content"].strip():
            raise DataError(ref, "prompt_messages.content", "empty_content", f"empty {m['role']} turn in the prompt")
    if messages[-1]["role"] != "user":
        raise DataError(ref, "prompt_messages", "misplaced_role", "the prompt must end with a user turn")
    return messages


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


def read_pairs(path: str | Path, limit: int | None = None) -> list[Pair]:
    """The pairs of a JSONL file (`write_pairs`, `judgejax data prepare`), the first `limit` if given."""
    return [Pair.from_json(record, RowRef(str(path), "line", number))
            for number, record in islice(read_jsonl(path), limit)]


def write_pairs(pairs: Iterable[Pair], path: str | Path) -> int:
    """Writes one JSON object per line (UTF-8, not ASCII-escaped); returns the number written."""
    return write_jsonl(path, (pair.to_json() for pair in pairs))

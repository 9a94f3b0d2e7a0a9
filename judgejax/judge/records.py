"""The records judge synthesis writes and reads back, as types, each checked once where it is read
(a wrong or missing field is a `DataError` naming the file, line and field):

- `Instruction`: one preference row in one A/B order and template, with its provenance
  (instructions.jsonl, dpo_candidates.jsonl);
- `Judgement`: one sample of a teacher or policy on an instruction, its verdict parsed
  (judgements.jsonl, policy_judgements.jsonl)."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import TypeVar

from judgejax.data.errors import DataError, RowRef
from judgejax.data.jsonl import read_jsonl, repair_appended

Message = dict[str, str]
R = TypeVar("R", "Instruction", "Judgement")


@dataclasses.dataclass(frozen=True)
class Instruction:
    id: str
    source: str
    source_row: str
    domain: str
    template: str
    order: str  # "drawn" or "flipped" (judgejax.judge.synth.ORDERS)
    messages: list[Message]  # the judge prompt: the template filled with the pair in this order
    chosen_position: str  # "A" or "B": where the better answer is shown
    swapped: bool

    @property
    def key(self) -> tuple[str, str]:
        return self.id, self.order

    def provenance(self) -> dict:
        return {k: getattr(self, k) for k in ("id", "source", "source_row", "domain", "template", "order", "swapped",
                                              "chosen_position")}


@dataclasses.dataclass(frozen=True)
class Judgement:
    id: str
    order: str
    sample: int
    teacher: str
    template: str
    swapped: bool
    chosen_position: str
    verdict: str  # "A", "B", ... or "error" (no verdict parsed)
    correct: bool
    finish_reason: str
    num_tokens: int
    text: str

    @property
    def key(self) -> tuple[str, str]:
        return self.id, self.order


def to_json(record: Instruction | Judgement) -> dict:
    return dataclasses.asdict(record)


def from_json(kind: type[R], record: object, where: RowRef) -> R:
    """A record of `kind` from its JSON object, every field checked against its type."""
    if not isinstance(record, dict):
        raise DataError(where, None, "not_object", f"not a JSON object ({type(record).__name__})")
    hints = typing.get_type_hints(kind)
    values = {}
    for field in dataclasses.fields(kind):
        value, want = record.get(field.name), typing.get_origin(hints[field.name]) or hints[field.name]
        # bool is an int in Python: a count must not be true/false, a flag must be exactly a bool
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise DataError(where, field.name, "wrong_type",
                            f"missing or not of type {want.__name__} (got {type(value).__name__})")
        values[field.name] = value
    return kind(**values)


def read_records(kind: type[R], path: Path, appended: bool = False) -> list[R]:
    """The records of kind `kind` in a JSONL file; `appended`: one that `append_jsonl` writes (its
    cut-short last line dropped, none while it does not exist)."""
    if appended and not repair_appended(path):
        return []
    return [from_json(kind, record, RowRef(str(path), "line", number)) for number, record in read_jsonl(path)]

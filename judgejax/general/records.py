"""Records of JSONL files of questions, answers and judgments, with errors naming file, line and
field."""

from __future__ import annotations

import os
from typing import Any

from judgejax.data.errors import DataError, RowRef
from judgejax.data.jsonl import read_jsonl


def read_objects(path: str | os.PathLike[str]) -> list[tuple[RowRef, dict[str, Any]]]:
    """(where, record) for every non-blank line; raises DataError on a line that is not a JSON object."""
    rows = []
    for number, record in read_jsonl(path):
        ref = RowRef(str(path), "line", number)
        if not isinstance(record, dict):
            raise DataError(ref, None, "not_object", f"expected a JSON object, got {type(record).__name__}")
        rows.append((ref, record))
    return rows


def question_records(path: str | os.PathLike[str]) -> list[tuple[RowRef, dict[str, Any], int]]:
    """(where, record, question id) of every line; the ids are ints that do not repeat."""
    rows, seen = [], set()
    for ref, record in read_objects(path):
        qid = field(ref, record, "question_id", int)
        if qid in seen:
            raise DataError(ref, "question_id", "duplicate", f"question {qid} appears twice")
        seen.add(qid)
        rows.append((ref, record, qid))
    return rows


def field(ref: RowRef, record: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    """record[name], checked to be of `kind` (bool is never an int here)."""
    if name not in record:
        raise DataError(ref, name, "missing_field", "missing")
    value = record[name]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise DataError(ref, name, "bad_type", f"expected {kind}, got bool")
    if not isinstance(value, kind):
        raise DataError(ref, name, "bad_type", f"expected {kind}, got {type(value).__name__}: {value!r:.80}")
    return value

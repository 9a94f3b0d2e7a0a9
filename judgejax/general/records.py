"""JSONL files of questions, answers and judgments: read with errors naming file and line, append
whole batches so an interrupted run resumes from the last complete batch."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from judgejax.data.errors import DataError, RowRef


def read_jsonl(path: str | os.PathLike[str]) -> list[tuple[RowRef, dict[str, Any]]]:
    """(where, record) for every non-blank line; raises DataError on a line that is not a JSON object."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            ref = RowRef(str(path), "line", number)
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(ref, None, "invalid_json", f"not valid JSON ({error})") from error
            if not isinstance(record, dict):
                raise DataError(ref, None, "not_object", f"expected a JSON object, got {type(record).__name__}")
            rows.append((ref, record))
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


def append_jsonl(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> None:
    """Append records as one write, flushed to disk, so a file only ever ends in complete lines
    unless the process dies inside this call."""
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    if not text:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())

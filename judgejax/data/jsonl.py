"""JSONL files, the one home for reading and writing them.

`read_jsonl` yields (line number, record) and names the file and line of a line that is not JSON.
`write_jsonl` replaces a file whole (through a temporary file, so a reader never sees half of it);
`append_jsonl` adds records in one flushed write, so a crash can leave at most a last line without
its newline, which `read_appended` cuts away on resume.
"""
from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from judgejax.data.errors import DataError, RowRef

PathLike = str | os.PathLike[str]


def read_jsonl(path: PathLike, skip_bad: bool = False) -> Iterator[tuple[int, Any]]:
    """(line number, record) of each non-blank line (gzip-compressed when the name ends in .gz).
    A line that is not JSON raises a `DataError` naming file and line; with `skip_bad` that error
    is yielded as the line's record instead, for callers that count bad lines and go on."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                error = DataError(RowRef(str(path), "line", number), None, "invalid_json", f"not valid JSON ({e})")
                if not skip_bad:
                    raise error from e
                record = error
            yield number, record


def read_appended(path: PathLike, repair: bool = True) -> list[Any]:
    """The records of a file written by `append_jsonl`; [] while it does not exist. A last line
    without its newline is a write cut short: with `repair` it is cut from the file (its work is
    redone), without it is an error."""
    return [record for _, record in read_jsonl(path)] if repair_appended(path, repair) else []


def repair_appended(path: PathLike, repair: bool = True) -> bool:
    """Whether a file written by `append_jsonl` exists, after cutting a last line that lacks its
    newline (with `repair`; without, such a line is an error)."""
    path = Path(path)
    if not path.exists():
        return False
    data = path.read_bytes()
    tail = data[data.rfind(b"\n") + 1:]
    if tail.strip():
        number = data.count(b"\n") + 1
        if not repair:
            raise DataError(RowRef(str(path), "line", number), None, "unterminated",
                            "unterminated last line (a write cut short)")
        print(f"{path} line {number}: dropping the unterminated last line (a write cut short); it will be redone")
        with open(path, "r+b") as f:
            f.truncate(len(data) - len(tail))
    return True


def _text(records: Iterable[Any]) -> tuple[str, int]:
    lines = [json.dumps(record, ensure_ascii=False) + "\n" for record in records]
    return "".join(lines), len(lines)


def write_jsonl(path: PathLike, records: Iterable[Any]) -> int:
    """Replaces `path` with one line per record (UTF-8, not ASCII-escaped), written to a temporary
    file first and renamed over it; returns the number written."""
    path = Path(path)
    text, count = _text(records)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return count


def append_jsonl(path: PathLike, records: Iterable[Any]) -> None:
    """Appends one line per record as a single write, flushed to disk (the folder is made if
    needed)."""
    text, count = _text(records)
    if not count:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())

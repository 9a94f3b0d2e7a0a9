"""Reading a benchmark file row by row: rows that cannot be used are skipped and counted by reason
(with the first few named by file, row and field), and a file with no usable row is one error."""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from judgejax.data.errors import DataError, RowRef
from judgejax.data.readers import read_records

Row = TypeVar("Row")
SHOWN = 5  # rows named per reason


class BadInput:
    """Skipped rows by reason."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, error: DataError) -> None:
        self.counts[error.reason] += 1
        if len(self.examples[error.reason]) < SHOWN:
            self.examples[error.reason].append(str(error))

    def merge(self, other: "BadInput") -> None:
        self.counts.update(other.counts)
        for reason, shown in other.examples.items():
            self.examples[reason] = (self.examples[reason] + shown)[:SHOWN]

    def as_dict(self) -> dict[str, Any]:
        return {"skipped": sum(self.counts.values()), "by_reason": dict(sorted(self.counts.items())),
                "examples": {k: v for k, v in sorted(self.examples.items())}}


def field(record: Mapping[str, Any], name: str, ref: RowRef) -> Any:
    if name not in record or record[name] is None:
        raise DataError(ref, name, "missing_field", f"no {name!r} (the row has {sorted(record)})")
    return record[name]


def text(record: Mapping[str, Any], name: str, ref: RowRef) -> str:
    value = field(record, name, ref)
    if not isinstance(value, str):
        raise DataError(ref, name, "wrong_type", f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise DataError(ref, name, "empty_content", "empty text")
    return value


def texts(record: Mapping[str, Any], name: str, ref: RowRef) -> tuple[str, ...]:
    value = field(record, name, ref)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise DataError(ref, name, "wrong_type", f"expected a list of strings, got {value!r:.80}")
    if any(not v.strip() for v in value):
        raise DataError(ref, name, "empty_content", "an empty answer")
    return tuple(value)


def records(paths: Iterable[Path]) -> Iterable[tuple[RowRef, Any]]:
    for path in paths:
        yield from read_records(path)


def read_usable(rows: Iterable[tuple[RowRef, Any]], parse: Callable[[int, RowRef, Mapping[str, Any]], Row],
                where: str) -> tuple[list[Row], BadInput]:
    """`parse(index, ref, record)` of every row (index: the count of usable rows before it); a
    `DataError` skips the row. Raises, naming `where` and the first skipped rows, if none is usable."""
    usable: list[Row] = []
    bad = BadInput()
    for ref, record in rows:
        try:
            if isinstance(record, DataError):
                raise record
            if not isinstance(record, dict):
                raise DataError(ref, None, "wrong_type", f"expected a row with named fields, got {type(record).__name__}")
            usable.append(parse(len(usable), ref, record))
        except DataError as error:
            bad.add(error)
    if not usable:
        first = next(iter(bad.examples.values()), ["the file is empty"])[0]
        raise ValueError(f"{where}: no usable rows ({dict(bad.counts) or 'none read'}); first: {first}")
    return usable, bad

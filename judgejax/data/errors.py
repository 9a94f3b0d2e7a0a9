"""Errors for malformed rows: each names the file, the row and the field."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class RowRef:
    """Where a row comes from: its file and its place there.

    `kind` is "line" (1-based line number, for jsonl files) or "row" (0-based row index,
    for json lists, parquet files and `datasets` folders).
    """

    source: str
    kind: Literal["line", "row"]
    number: int

    def __str__(self) -> str:
        return f"{self.source} {self.kind} {self.number}"


class DataError(ValueError):
    """A row that cannot be used; `reason` is a short key used to count skipped rows."""

    def __init__(self, ref: RowRef, field: str | None, reason: str, detail: str) -> None:
        self.ref = ref
        self.field = field
        self.reason = reason
        self.detail = detail
        where = f"{ref}, field {field!r}" if field else str(ref)
        super().__init__(f"{where}: {detail} [{reason}]")

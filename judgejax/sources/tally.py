"""Per-source counts, and record reading that raises or counts malformed rows."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from judgejax.data.errors import DataError, RowRef
from judgejax.data.readers import read_records

T = TypeVar("T")
OnError = Literal["raise", "skip"]


@dataclass
class Tally:
    """What happened to one source's rows.

    records: records read from its files (a PRM800K record is one rated step).
    skipped: malformed records skipped (on_error="skip"), by reason.
    dropped: candidate pairs dropped, by reason (building, decontamination, checks, dedupe, balancing).
    kept: pairs written.
    """

    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    kept: int = 0

    @property
    def candidates(self) -> int:
        """Units that could each give one pair: kept plus dropped."""
        return self.kept + sum(self.dropped.values())


def parsed_records(
    path: Path, parse: Callable[[Any, RowRef], T], on_error: OnError, tally: Tally, no_result: str | None = None
) -> Iterator[T]:
    """`parse(record, ref)` for every record of `path`. A malformed record's `DataError` (naming file, line or row,
    and field) propagates, or with on_error="skip" is counted in `tally.skipped` by reason. With `no_result`, a
    record that `parse` makes nothing of (None) is counted in `tally.dropped` under that reason."""
    for ref, record in read_records(path):
        tally.records += 1
        try:
            if isinstance(record, DataError):
                raise record
            result = parse(record, ref)
        except DataError as e:
            if on_error == "raise":
                raise
            tally.skipped[e.reason] += 1
            continue
        if result is None and no_result is not None:
            tally.dropped[no_result] += 1
            continue
        yield result

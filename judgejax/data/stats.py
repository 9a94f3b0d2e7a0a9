"""Counts of what happened to the rows of a data file, to report instead of dropping silently."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class DataStats:
    """Row counts for one data file.

    rows_read: rows seen in the file (blank jsonl lines are not rows).
    skipped: malformed rows skipped with on_error="skip", by reason (see `DataError.reason`).
    truncated: rows kept after cutting them to the length limit.
    dropped: rows dropped by the length policy, by reason.
    kept: rows that reach training.
    """

    rows_read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    truncated: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    kept: int = 0

    def summary(self) -> str:
        """One line for logs, e.g. `read 10, kept 7, truncated 1, skipped {invalid_json: 2}, dropped {too_long: 1}`."""
        parts = [f"read {self.rows_read}", f"kept {self.kept}", f"truncated {self.truncated}"]
        for name, counts in (("skipped", self.skipped), ("dropped", self.dropped)):
            if counts:
                inner = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
                parts.append(f"{name} {{{inner}}}")
        return ", ".join(parts)

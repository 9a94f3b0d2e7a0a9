"""Per-shard JSONL files of per-example records, resumable, and the merge that checks every
expected judgement is present exactly once.

A record is keyed by (row, swapped): the example's row index in the data file and the A/B order it
was judged in. Each shard appends its records batch by batch (`append_jsonl`), so a stopped run
resumes by skipping the keys its file already holds; a last line cut off mid-write is dropped on
resume (`read_appended`).
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from judgejax.data.jsonl import read_appended, write_jsonl

Key = tuple[int, bool]
SHARD_PATTERN = re.compile(r"shard-(\d+)-of-(\d+)\.jsonl")
MERGED = "results.jsonl"


class MergeError(ValueError):
    """The shard files do not hold exactly the expected judgements once each; lists the keys
    missing, present more than once, and present but not expected."""

    def __init__(self, message: str, missing: list[Key], duplicated: list[Key], unexpected: list[Key]):
        super().__init__(message)
        self.missing, self.duplicated, self.unexpected = missing, duplicated, unexpected


def shard_path(out_dir: str | Path, index: int, count: int) -> Path:
    if not 0 <= index < count:
        raise ValueError(f"shard {index} of {count}: index must be in 0..{count - 1}")
    return Path(out_dir) / f"shard-{index}-of-{count}.jsonl"


def record_key(record: dict[str, Any]) -> Key:
    return (int(record["row"]), bool(record["swapped"]))


def _describe(keys: Sequence[Key]) -> str:
    shown = ", ".join(f"row {row} swapped={swapped}" for row, swapped in keys[:5])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > 5 else ''})"


def merge_shards(out_dir: str | Path, count: int, expected: Iterable[Key]) -> list[dict[str, Any]]:
    """All records of the `count` shard files, sorted by key, after checking that every expected
    key is present exactly once and nothing else is; otherwise a `MergeError` says what is wrong."""
    out_dir = Path(out_dir)
    others = sorted(p.name for p in out_dir.glob("shard-*.jsonl")
                    if (m := SHARD_PATTERN.fullmatch(p.name)) and int(m.group(2)) != count)
    if others:
        raise ValueError(f"{out_dir}: shard files of another shard count {others}; this run has {count} shards")
    records = [r for i in range(count) for r in read_appended(shard_path(out_dir, i, count), repair=False)]
    expected = set(expected)
    counts = Counter(record_key(r) for r in records)
    duplicated = sorted(k for k, n in counts.items() if n > 1)
    unexpected = sorted(k for k in counts if k not in expected)
    missing = sorted(expected - set(counts))
    problems = [f"{what}: {_describe(keys)}" for what, keys in
                (("missing", missing), ("duplicated", duplicated), ("unexpected", unexpected)) if keys]
    if problems:
        raise MergeError(f"{out_dir}: {count} shard file(s) hold {len(records)} records for {len(expected)} expected "
                         f"judgements; " + "; ".join(problems), missing, duplicated, unexpected)
    return sorted(records, key=record_key)


def write_merged(out_dir: str | Path, records: Sequence[dict[str, Any]]) -> Path:
    path = Path(out_dir) / MERGED
    write_jsonl(path, records)
    return path

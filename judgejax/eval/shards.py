"""Per-shard JSONL files of per-example records, resumable, and the merge that checks every
expected judgement is present exactly once.

A record is keyed by (row, swapped): the example's row index in the data file and the A/B order it
was judged in. Each shard appends one line per judgement and flushes it, so a stopped run resumes
by skipping the keys its file already holds; a last line cut off mid-write is dropped on resume.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

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


def read_shard(path: Path, repair: bool = False) -> list[dict[str, Any]]:
    """The records of a shard file ([] if it does not exist). A malformed line is an error naming
    it, except an unterminated last line (a write cut short), which `repair` truncates away."""
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    records = []
    for number, line in enumerate(lines[:-1], start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path} line {number}: not a JSON record ({error})") from error
    if lines[-1].strip():  # no newline after the last line: its write may have been cut short
        if not repair:
            raise ValueError(f"{path} line {len(lines)}: unterminated last line (a write cut short)")
        print(f"{path}: dropping the unterminated last line (a write cut short); it will be judged again")
        with open(path, "r+b") as f:
            f.truncate(len(data) - len(lines[-1]))
    return records


class ShardWriter:
    """Appends records to a shard file, one flushed line each."""

    def __init__(self, path: Path):
        self.file = open(path, "a", encoding="utf-8")

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    records = [r for i in range(count) for r in read_shard(shard_path(out_dir, i, count))]
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
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path

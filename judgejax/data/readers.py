"""Readers for jsonl, json, parquet files and `datasets` folders, chosen by the path."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

from judgejax.data.errors import DataError, RowRef
from judgejax.data.jsonl import read_jsonl
from judgejax.data.stats import DataStats

Row = TypeVar("Row")
OnError = Literal["raise", "skip"]


def _json(path: Path) -> Iterator[tuple[RowRef, Any]]:
    with open(path, encoding="utf-8") as f:
        try:
            records = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of rows, got {type(records).__name__}")
    for index, record in enumerate(records):
        yield RowRef(str(path), "row", index), record


def _parquet(path: Path) -> Iterator[tuple[RowRef, Any]]:
    import pyarrow.parquet as pq

    index = 0
    for batch in pq.ParquetFile(path).iter_batches():
        for record in batch.to_pylist():
            yield RowRef(str(path), "row", index), record
            index += 1


def _datasets_folder(path: Path) -> Iterator[tuple[RowRef, Any]]:
    import datasets

    dataset = datasets.load_from_disk(str(path))
    if isinstance(dataset, datasets.DatasetDict):
        splits = list(dataset)
        example = path / splits[0]
        raise ValueError(f"{path}: a DatasetDict with splits {splits}; give one split's folder, e.g. {example}")
    for index, record in enumerate(dataset):
        yield RowRef(str(path), "row", index), record


def read_records(path: str | Path) -> Iterator[tuple[RowRef, Any]]:
    """Yields (where, record) for each row; a jsonl line that is not JSON yields a `DataError` as its record.

    Formats by path: a folder saved by `datasets.save_to_disk`, `.jsonl` / `.jsonl.gz`, `.json` (a list of
    rows), `.parquet`.
    """
    path = Path(path)
    if path.is_dir():
        return _datasets_folder(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such data file or folder")
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz")):
        return ((RowRef(str(path), "line", number), record) for number, record in read_jsonl(path, skip_bad=True))
    if name.endswith(".json"):
        return _json(path)
    if name.endswith(".parquet"):
        return _parquet(path)
    raise ValueError(f"{path}: unknown data format; expected a datasets folder, .jsonl, .jsonl.gz, .json or .parquet")


def read_rows(
    path: str | Path, parse: Callable[[Any, RowRef], Row], on_error: OnError, stats: DataStats
) -> list[Row]:
    """Parses every record of `path` with `parse`.

    A malformed row raises its `DataError`, or with on_error="skip" is counted in `stats.skipped` by reason.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    rows = []
    for ref, record in read_records(path):
        stats.rows_read += 1
        try:
            if isinstance(record, DataError):
                raise record
            rows.append(parse(record, ref))
        except DataError as e:
            if on_error == "raise":
                raise
            stats.skipped[e.reason] += 1
    return rows

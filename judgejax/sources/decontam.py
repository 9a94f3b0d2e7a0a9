"""decontam_exclusions.json: rows of the source files that overlap evaluation sets (or are invalid), to drop.

The file maps each source file key (a path under the source dir, or a glob such as "debugbench/*.json") to
{"key": what its rows are keyed by, "rows": [...]} and, for DebugBench, "invalid_pairs": [{"file", "index"}].
A listed row carries exactly one key field: "line" (0-based line number) or "index" (0-based list index), both the
0-based record index of `Pair.source_row`; "id"; "instruction" (every row with that problem); "slug" (every row of that
LeetCode problem). Every listed row is dropped, as "decontam"; a listed invalid pair as "listed_invalid".
"""
from __future__ import annotations

import json
from pathlib import Path

from judgejax.sources.pair import ExclusionKey

KEY_FIELDS = {"line": "row", "index": "row", "id": "id", "instruction": "instruction", "slug": "slug"}


def load_exclusions(path: str | Path, known_files: set[str]) -> dict[ExclusionKey, str]:
    """{exclusion key: drop reason}. Entries for files no source declares, and rows without exactly one key field,
    are errors that name the entry."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read the exclusions ({e})") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object keyed by source file")
    excluded: dict[ExclusionKey, str] = {}
    for file_key, entry in data.items():
        if file_key.startswith("_"):
            continue
        if file_key not in known_files:
            raise ValueError(f"{path}: entry {file_key!r} names no source file; known: {sorted(known_files)}")
        for i, row in enumerate(entry.get("rows", [])):
            fields = [f for f in KEY_FIELDS if f in row]
            if len(fields) != 1:
                raise ValueError(f"{path}: {file_key} rows[{i}] must have exactly one of {list(KEY_FIELDS)}, has {fields}")
            name = fields[0]
            if KEY_FIELDS[name] == "row" and "0-based" not in entry.get("key", ""):
                raise ValueError(f"{path}: {file_key} keys rows by {entry.get('key')!r}; expected 0-based numbers")
            excluded[(file_key, KEY_FIELDS[name], row[name])] = "decontam"
        for i, row in enumerate(entry.get("invalid_pairs", [])):
            if not isinstance(row.get("file"), str) or not isinstance(row.get("index"), int):
                raise ValueError(f"{path}: {file_key} invalid_pairs[{i}] needs a file and a 0-based index")
            excluded.setdefault((row["file"], "row", row["index"]), "listed_invalid")
    return excluded

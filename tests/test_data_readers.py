"""Readers for every format, the column mapping, and errors that name file, row and field."""
from __future__ import annotations

import gzip
import json
from collections import Counter
from functools import partial
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from judgejax.data.columns import Columns
from judgejax.data.errors import DataError, RowRef
from judgejax.data.readers import read_records, read_rows
from judgejax.data.rows import PreferenceRow, SFTRow, parse_preference_row, parse_sft_row
from judgejax.data.stats import DataStats

SFT = [
    {"messages": [{"role": "user", "content": "Is 2+2 4?"}, {"role": "assistant", "content": "Yes."}], "id": 1},
    {
        "messages": [
            {"role": "system", "content": ""},
            {"role": "user", "content": "A or B?"},
            {"role": "assistant", "content": "A. [[A]]"},
            {"role": "user", "content": "Why?"},
            {"role": "assistant", "content": "It is correct."},
        ],
        "id": 2,
    },
]
PREF_MESSAGES = [
    {
        "prompt": [{"role": "system", "content": "Judge."}, {"role": "user", "content": "A or B?"}],
        "chosen": [{"role": "assistant", "content": "[[A]]"}],
        "rejected": [{"role": "assistant", "content": "[[B]]"}],
    }
]
PREF_STRINGS = [{"prompt": "A or B?", "chosen": "[[A]]", "rejected": "[[B]]"}]


def write(path: Path, records: list[dict]) -> Path:
    """Writes `records` in the format named by the path's suffix (a folder: `datasets.save_to_disk`)."""
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(records), path)
    elif path.suffix == ".json":
        path.write_text(json.dumps(records))
    elif path.name.endswith(".jsonl.gz"):
        with gzip.open(path, "wt") as f:
            f.write("".join(json.dumps(r) + "\n" for r in records))
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        datasets.Dataset.from_list(records).save_to_disk(str(path))
    return path


def read_sft(path: Path, on_error: str = "raise", columns: Columns = Columns()) -> tuple[list[SFTRow], DataStats]:
    stats = DataStats()
    return read_rows(path, partial(parse_sft_row, columns=columns), on_error, stats), stats


def read_pref(path: Path, on_error: str = "raise") -> tuple[list[PreferenceRow], DataStats]:
    stats = DataStats()
    return read_rows(path, partial(parse_preference_row, columns=Columns()), on_error, stats), stats


FORMATS = ["rows.jsonl", "rows.jsonl.gz", "rows.json", "rows.parquet", "rows_dataset"]


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_reads_sft_rows(tmp_path, name):
    path = write(tmp_path / name, SFT)
    rows, stats = read_sft(path)
    assert [r.messages for r in rows] == [r["messages"] for r in SFT]
    kind = "line" if "jsonl" in name else "row"
    assert [r.ref for r in rows] == [RowRef(str(path), kind, i + (kind == "line")) for i in range(len(SFT))]
    assert (stats.rows_read, sum(stats.skipped.values())) == (2, 0)


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("records", [PREF_MESSAGES, PREF_STRINGS], ids=["messages", "strings"])
def test_every_format_reads_preference_rows(tmp_path, name, records):
    rows, _ = read_pref(write(tmp_path / name, records))
    assert len(rows) == 1
    row = rows[0]
    if records is PREF_STRINGS:
        assert row.prompt == [{"role": "user", "content": "A or B?"}]
        assert row.chosen == [{"role": "assistant", "content": "[[A]]"}]
        assert row.rejected == [{"role": "assistant", "content": "[[B]]"}]
    else:
        assert (row.prompt, row.chosen, row.rejected) == tuple(records[0][k] for k in ("prompt", "chosen", "rejected"))


def test_column_mapping_reads_other_column_names(tmp_path):
    path = write(tmp_path / "renamed.jsonl", [{"conversation": SFT[0]["messages"]}])
    rows, _ = read_sft(path, columns=Columns(messages="conversation"))
    assert rows[0].messages == SFT[0]["messages"]
    with pytest.raises(DataError, match=r"line 1, field 'messages'.*missing"):
        read_sft(path)


GOOD = json.dumps(SFT[0])
# (jsonl line, field named in the error, reason)
BAD_SFT = [
    ('{"messages": [', None, "invalid_json"),
    ('{"other": 1}', "messages", "missing_field"),
    ('{"messages": "hello"}', "messages", "wrong_type"),
    ('{"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "x"}]}', "messages[0].content", "wrong_type"),
    ('{"messages": [{"role": "bot", "content": "hi"}]}', "messages[0].role", "unknown_role"),
    ('{"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "x"}]}', "messages[0].content", "empty_content"),
    ('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant"}]}', "messages[1].content", "missing_field"),
    ('{"messages": [{"role": "user", "content": "hi"}]}', "messages", "no_assistant_turn"),
    ('{"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "hi"}]}', "messages[0].role", "misplaced_role"),
    ('[1, 2]', None, "wrong_type"),
]


@pytest.mark.parametrize("line, field, reason", BAD_SFT)
def test_malformed_sft_row_names_file_line_and_field(tmp_path, line, field, reason):
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{GOOD}\n\n{line}\n{GOOD}\n")
    with pytest.raises(DataError) as caught:
        read_sft(path)
    error = caught.value
    assert (error.ref, error.field, error.reason) == (RowRef(str(path), "line", 3), field, reason)
    assert str(error).startswith(f"{path} line 3" + (f", field {field!r}" if field else ""))


BAD_PREF = [
    ({"prompt": "q", "chosen": "a"}, "rejected", "missing_field"),
    ({"prompt": "", "chosen": "a", "rejected": "b"}, "prompt", "empty_content"),
    ({"prompt": "q", "chosen": 5, "rejected": "b"}, "chosen", "wrong_type"),
    ({"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "chosen": "a", "rejected": "b"}, "prompt[1].role", "misplaced_role"),
    ({"prompt": "q", "chosen": "a", "rejected": [{"role": "user", "content": "b"}]}, "rejected[0].role", "misplaced_role"),
    ({"prompt": "q", "chosen": [{"role": "critic", "content": "a"}], "rejected": "b"}, "chosen[0].role", "unknown_role"),
]


def _message_pair(role: str, content: str) -> dict:
    return {"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": role, "content": content}], "rejected": "b"}


# Pairs of (good row, bad row) with one type per column, so parquet and datasets can store both.
COLUMNAR_BAD_PREF = [
    (PREF_STRINGS[0], {"prompt": "q", "chosen": "a", "rejected": None}, "rejected", "missing_field"),
    (PREF_STRINGS[0], {"prompt": " ", "chosen": "a", "rejected": "b"}, "prompt", "empty_content"),
    (_message_pair("assistant", "a"), _message_pair("critic", "a"), "chosen[0].role", "unknown_role"),
    (_message_pair("assistant", "a"), _message_pair("assistant", ""), "chosen[0].content", "empty_content"),
]


@pytest.mark.parametrize("name", ["bad.json", "bad.parquet", "bad_dataset"])
@pytest.mark.parametrize("good, bad, field, reason", COLUMNAR_BAD_PREF)
def test_malformed_preference_row_names_file_row_index_and_field(tmp_path, name, good, bad, field, reason):
    path = write(tmp_path / name, [good, bad])
    with pytest.raises(DataError) as caught:
        read_pref(path)
    error = caught.value
    assert (error.ref, error.field, error.reason) == (RowRef(str(path), "row", 1), field, reason)
    assert str(error).startswith(f"{path} row 1, field {field!r}")


@pytest.mark.parametrize("record, field, reason", BAD_PREF)
def test_malformed_preference_row_in_jsonl(tmp_path, record, field, reason):
    path = write(tmp_path / "bad.jsonl", [PREF_STRINGS[0], record])
    with pytest.raises(DataError) as caught:
        read_pref(path)
    assert (caught.value.ref.number, caught.value.field, caught.value.reason) == (2, field, reason)


def test_skip_mode_counts_every_malformed_row_by_reason(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([GOOD] + [line for line, _, _ in BAD_SFT] + [GOOD]) + "\n")
    rows, stats = read_sft(path, on_error="skip")
    assert len(rows) == 2 and [r.ref.number for r in rows] == [1, len(BAD_SFT) + 2]
    assert stats.rows_read == len(BAD_SFT) + 2
    assert stats.skipped == Counter(reason for _, _, reason in BAD_SFT)
    assert "skipped {empty_content: 1, invalid_json: 1, misplaced_role: 1, missing_field: 2" in stats.summary()


def test_file_level_problems_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown data format"):
        read_records(write(tmp_path / "rows.jsonl", SFT).rename(tmp_path / "rows.txt"))
    (tmp_path / "obj.json").write_text('{"messages": []}')
    with pytest.raises(ValueError, match="obj.json: expected a JSON list of rows"):
        list(read_records(tmp_path / "obj.json"))
    datasets.DatasetDict({"train": datasets.Dataset.from_list(SFT)}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(ValueError, match=r"DatasetDict with splits \['train'\]"):
        list(read_records(tmp_path / "dd"))
    rows, _ = read_sft(tmp_path / "dd" / "train")
    assert len(rows) == 2
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        read_records(tmp_path / "missing.jsonl")

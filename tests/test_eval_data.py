"""Evaluation examples: the real RewardBench file, the official schema, generic pairwise files
through a column mapping, stratified selection and the seeded A/B orders."""
from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from judgejax.data.errors import DataError
from judgejax.eval.examples import (REWARDBENCH_ROWS, load_pairwise, load_rewardbench, make_items, parse_columns,
                                    select_examples)
from judgejax.judge.templates import swap_for
from test_eval_tiny_models import DATA


@pytest.fixture(scope="module")
def rows():
    return pq.read_table(DATA).to_pylist()


@pytest.fixture(scope="module")
def examples():
    return load_rewardbench(DATA)


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_real_file_rows_counts_and_chosen_side(rows, examples):
    assert len(examples) == 2985
    assert Counter(e.subset for e in examples) == REWARDBENCH_ROWS
    assert [e.row for e in examples] == list(range(2985))
    for e, row in zip(examples, rows):
        assert (e.subset, e.id, e.prompt, e.chosen, e.rejected) == (
            row["subset"], row["id"], row["question"], row["response_A"], row["response_B"])
    twice = [e for e in examples if e.id == 3692]
    assert sorted(e.subset for e in twice) == ["donotanswer", "hep-python"]
    assert len({e.swap_key for e in examples}) == 2985


def test_official_schema_and_bad_rows(tmp_path, rows):
    official = [{"prompt": r["question"], "chosen": r["response_A"], "rejected": r["response_B"],
                 "subset": r["subset"], "id": r["id"]} for r in rows[:5]]
    loaded = load_rewardbench(write_jsonl(tmp_path / "official.jsonl", official))
    assert [(e.prompt, e.chosen, e.rejected) for e in loaded] == [(r["prompt"], r["chosen"], r["rejected"]) for r in official]

    flipped = [dict(r) for r in rows[:3]]
    flipped[2]["label"] = 0
    pq.write_table(pa.Table.from_pylist(flipped), tmp_path / "flipped.parquet")
    with pytest.raises(DataError, match=r"flipped.parquet row 2, field 'label'"):
        load_rewardbench(tmp_path / "flipped.parquet")

    unknown = [dict(official[0], subset="alpacaeval-medium")]
    with pytest.raises(DataError, match=r"line 1, field 'subset'.*alpacaeval-medium"):
        load_rewardbench(write_jsonl(tmp_path / "unknown.jsonl", unknown))

    empty = [dict(official[0], chosen="  ")]
    with pytest.raises(DataError, match=r"line 1, field 'chosen'"):
        load_rewardbench(write_jsonl(tmp_path / "empty.jsonl", empty))

    duplicated = [official[0], dict(official[1], id=official[0]["id"], subset=official[0]["subset"])]
    with pytest.raises(ValueError, match="rows 0 and 1 share subset:id"):
        load_rewardbench(write_jsonl(tmp_path / "dup.jsonl", duplicated))


def test_full_file_missing_a_row_is_an_error(tmp_path, rows):
    pq.write_table(pa.Table.from_pylist(rows[:1000] + rows[1001:]), tmp_path / "short.parquet")
    subset = rows[1000]["subset"]
    with pytest.raises(ValueError, match=f"'{subset}': \\({REWARDBENCH_ROWS[subset] - 1}, {REWARDBENCH_ROWS[subset]}\\)"):
        load_rewardbench(tmp_path / "short.parquet")


def test_stratified_selection_is_seeded_and_in_file_order(examples):
    picked = select_examples(examples, limit_per_subset=3, seed=0)
    assert Counter(e.subset for e in picked) == {s: 3 for s in REWARDBENCH_ROWS}
    assert [e.row for e in picked] == sorted(e.row for e in picked)
    assert select_examples(examples, limit_per_subset=3, seed=0) == picked
    assert select_examples(examples, limit_per_subset=3, seed=1) != picked
    few = select_examples(examples, ["mt-bench-easy", "hep-go"], 50, seed=0)
    assert Counter(e.subset for e in few) == {"mt-bench-easy": 28, "hep-go": 50}
    with pytest.raises(ValueError, match="unknown subsets \\['hep-cobol'\\]"):
        select_examples(examples, ["hep-cobol"])


def test_items_use_the_seeded_swap_and_both_orders(examples):
    one = make_items(examples, 7, both_orders=False)
    assert all(i.seeded and i.swapped == swap_for(7, f"{i.example.subset}:{i.example.id}") for i in one)
    assert 0.45 < sum(i.swapped for i in one) / len(one) < 0.55
    both = make_items(examples[:50], 7, both_orders=True)
    assert len({i.key for i in both}) == 100
    for seeded, other in zip(both[::2], both[1::2]):
        assert seeded.seeded and not other.seeded and seeded.example == other.example
        assert other.swapped == (not seeded.swapped)
        assert {seeded.chosen_position, other.chosen_position} == {"A", "B"}


def test_pairwise_file_through_a_column_mapping(tmp_path):
    records = [
        {"q": "2+2?", "r1": "4", "r2": "5", "win": "A", "cat": "math", "uid": "m1"},
        {"q": "Capital of France?", "r1": "Lyon", "r2": "Paris", "win": "b", "cat": "geo", "uid": "g1"},
        {"q": "Say hi", "r1": "hi", "r2": "no", "win": 0, "cat": "chat", "uid": "c1"},
        {"q": "Say bye", "r1": "no", "r2": "bye", "win": 1, "cat": "chat", "uid": "c2"},
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", records)
    columns = parse_columns("prompt=q,a=r1,b=r2,label=win,subset=cat,id=uid")
    loaded = load_pairwise(path, columns)
    assert [(e.subset, e.id, e.chosen, e.rejected) for e in loaded] == [
        ("math", "m1", "4", "5"), ("geo", "g1", "Paris", "Lyon"), ("chat", "c1", "hi", "no"), ("chat", "c2", "bye", "no")]
    unlabelled = load_pairwise(path, parse_columns("prompt=q,a=r2,b=r1"))
    assert [(e.subset, e.id, e.chosen) for e in unlabelled][:2] == [("all", 0, "5"), ("all", 1, "Paris")]

    write_jsonl(tmp_path / "bad.jsonl", records[:2] + [dict(records[2], win="first")])
    with pytest.raises(DataError, match=r"bad.jsonl line 3, field 'win'.*'first'"):
        load_pairwise(tmp_path / "bad.jsonl", columns)
    with pytest.raises(DataError, match=r"line 1, field 'answer'.*no column"):
        load_pairwise(path, parse_columns("prompt=q,a=answer,b=r2"))
    for text, message in (("prompt=q,a=r1", "missing \\['b'\\]"), ("prompt=q,a=r1,b=r2,winner=w", "'winner=w'"),
                          ("prompt=q,a=r1,b=r2,a=r3", "a given twice")):
        with pytest.raises(ValueError, match=message):
            parse_columns(text)


def test_pairwise_labels_in_the_a_greater_than_b_convention(tmp_path):
    records = [{"q": "2+2?", "r1": "4", "r2": "5", "win": "A>B"}, {"q": "Capital?", "r1": "Lyon", "r2": "Paris",
                                                                     "win": " b>a "}]
    path = write_jsonl(tmp_path / "pairs.jsonl", records)
    columns = parse_columns("prompt=q,a=r1,b=r2,label=win")
    assert [(e.chosen, e.rejected) for e in load_pairwise(path, columns)] == [("4", "5"), ("Paris", "Lyon")]
    write_jsonl(tmp_path / "tie.jsonl", records + [dict(records[0], win="A=B")])
    with pytest.raises(DataError, match=r"tie.jsonl line 3, field 'win'.*a tie names no better answer.*tie_label"):
        load_pairwise(tmp_path / "tie.jsonl", columns)

"""Pairwise evaluation examples: loading RewardBench v1 and generic pairwise files, stratified
selection, and the A/B orders in which each example is judged.

An example is a prompt with a better ("chosen") and a worse ("rejected") answer. It is keyed by
its row index in the source file; its swap key "{subset}:{id}" decides its seeded A/B order, so
the order does not change when a file is filtered or its rows are reordered.
"""
from __future__ import annotations

import numbers
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgejax.data.errors import DataError, RowRef
from judgejax.data.hashing import seeded_digest
from judgejax.data.readers import read_records
from judgejax.judge.templates import swap_for

# Rows per subset in the RewardBench v1 `filtered` split (the official weights differ: see scoring.py).
REWARDBENCH_ROWS: dict[str, int] = {
    "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95, "mt-bench-easy": 28,
    "mt-bench-med": 40, "mt-bench-hard": 37, "llmbar-natural": 100, "llmbar-adver-neighbor": 134,
    "llmbar-adver-GPTInst": 92, "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46,
    "refusals-dangerous": 100, "refusals-offensive": 100, "xstest-should-refuse": 154,
    "xstest-should-respond": 250, "donotanswer": 136, "math-prm": 447, "hep-cpp": 164, "hep-go": 164,
    "hep-java": 164, "hep-js": 164, "hep-python": 164, "hep-rust": 164,
}
REWARDBENCH_TOTAL = sum(REWARDBENCH_ROWS.values())  # 2,985
# Column names of the two known serialisations: the official HF split, and the copy whose
# response_A is always the chosen answer (its `label` column is 1 on every row).
REWARDBENCH_SCHEMAS = (
    {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"},
    {"prompt": "question", "chosen": "response_A", "rejected": "response_B"},
)
PAIRWISE_KEYS = ("prompt", "a", "b", "label", "subset", "id")
PAIRWISE_REQUIRED = ("prompt", "a", "b")
DEFAULT_SUBSET = "all"


class SubsetKeyed:
    """A benchmark row keyed "{subset}:{id}" (`swap_key`: unique in its file, it seeds the row's A/B
    order), which the seeded per-subset draw also ranks by (`draw_key`)."""

    subset: str
    id: int | str

    @property
    def swap_key(self) -> str:
        return f"{self.subset}:{self.id}"

    @property
    def draw_key(self) -> str:
        return self.swap_key


@dataclass(frozen=True)
class PairExample(SubsetKeyed):
    row: int  # 0-based index of the record in the source file: the unique key
    subset: str
    id: int | str
    prompt: str
    chosen: str
    rejected: str
    meta: tuple[tuple[str, Any], ...] = ()  # extra record fields (which answers of a benchmark row these are)


@dataclass(frozen=True)
class Item:
    """One judgement to make: an example shown in one A/B order. `seeded` marks the example's
    seeded order (the official one-order protocol); the other order is the both-order diagnostic."""

    example: PairExample
    swapped: bool  # True: the chosen answer is shown as B
    seeded: bool
    kind = "pair"

    @property
    def key(self) -> tuple[int, bool]:
        return (self.example.row, self.swapped)

    @property
    def chosen_position(self) -> str:
        return "B" if self.swapped else "A"

    def record_fields(self) -> dict[str, Any]:
        """What every record of this judgement holds besides the judge's own fields."""
        e = self.example
        return {"subset": e.subset, "id": e.id, "row": e.row, "swapped": self.swapped, "seeded": self.seeded,
                "chosen_position": self.chosen_position, **dict(e.meta)}


def _text(record: Mapping[str, Any], column: str, ref: RowRef) -> str:
    value = record.get(column)
    if not isinstance(value, str):
        raise DataError(ref, column, "wrong_type", f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise DataError(ref, column, "empty_content", "empty text")
    return value


def _identifier(value: Any, ref: RowRef, column: str) -> int | str:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip():
        return value
    raise DataError(ref, column, "wrong_type", f"expected an int or a non-empty string, got {value!r:.80}")


def check_unique(examples: Sequence[SubsetKeyed], path: str | Path) -> None:
    seen: dict[str, int] = {}
    for example in examples:
        if example.swap_key in seen:
            raise ValueError(f"{path}: rows {seen[example.swap_key]} and {example.row} share subset:id "
                             f"{example.swap_key!r}; ids must be unique within a subset")
        seen[example.swap_key] = example.row


def load_rewardbench(path: str | Path) -> list[PairExample]:
    """Every row of a RewardBench v1 file (the official `filtered` split's columns prompt/chosen/
    rejected, or question/response_A/response_B with response_A chosen). A file that holds all 23
    subsets must hold exactly the official 2,985 rows."""
    path = Path(path)
    examples: list[PairExample] = []
    schema = None
    for index, (ref, record) in enumerate(read_records(path)):
        if isinstance(record, DataError):
            raise record
        if not isinstance(record, dict):
            raise DataError(ref, None, "wrong_type", f"expected a row with named fields, got {type(record).__name__}")
        if schema is None:
            schema = next((s for s in REWARDBENCH_SCHEMAS if set(s.values()) <= set(record)), None)
            if schema is None:
                raise DataError(ref, None, "missing_field", f"columns {sorted(record)} match neither RewardBench "
                                f"schema: {[sorted(s.values()) for s in REWARDBENCH_SCHEMAS]}")
        if "label" in record and record["label"] != 1:
            raise DataError(ref, "label", "unexpected_label",
                            f"label {record['label']!r}: this reader expects {schema['chosen']} to be the chosen answer "
                            "(label 1) on every row")
        subset = record.get("subset")
        if subset not in REWARDBENCH_ROWS:
            raise DataError(ref, "subset", "unknown_subset", f"unknown RewardBench v1 subset {subset!r}")
        examples.append(PairExample(
            row=index, subset=subset, id=_identifier(record.get("id"), ref, "id"),
            prompt=_text(record, schema["prompt"], ref), chosen=_text(record, schema["chosen"], ref),
            rejected=_text(record, schema["rejected"], ref),
        ))
    if not examples:
        raise ValueError(f"{path}: no rows")
    check_unique(examples, path)
    counts = Counter(e.subset for e in examples)
    if set(counts) == set(REWARDBENCH_ROWS) and counts != REWARDBENCH_ROWS:
        wrong = {s: (counts[s], n) for s, n in REWARDBENCH_ROWS.items() if counts[s] != n}
        raise ValueError(f"{path}: subset row counts differ from RewardBench v1 (found, expected): {wrong}")
    return examples


def parse_columns(text: str) -> dict[str, str]:
    """`prompt=COL,a=COL,b=COL[,label=COL][,subset=COL][,id=COL]` -> {key: column}."""
    columns: dict[str, str] = {}
    for part in text.split(","):
        key, sep, column = part.partition("=")
        key, column = key.strip(), column.strip()
        if not sep or not column or key not in PAIRWISE_KEYS:
            raise ValueError(f"--columns {text!r}: {part!r} is not KEY=COLUMN with KEY one of {PAIRWISE_KEYS}")
        if key in columns:
            raise ValueError(f"--columns {text!r}: {key} given twice")
        columns[key] = column
    missing = [k for k in PAIRWISE_REQUIRED if k not in columns]
    if missing:
        raise ValueError(f"--columns {text!r}: missing {missing}")
    return columns


def _a_is_better(value: Any, ref: RowRef, column: str) -> bool:
    """A label names the better answer: "A"/"B" (any case), "A>B"/"B>A" (JudgeBench's convention),
    or 0 (a) / 1 (b). A tie ("A=B") is an error: a pairwise example needs a better answer."""
    if isinstance(value, str):
        label = value.strip().upper().replace(" ", "")
        if label in ("A", "B", "A>B", "B>A"):
            return label in ("A", "A>B")
        if label in ("A=B", "B=A", "TIE"):
            raise DataError(ref, column, "tie_label", f"label {value!r}: a tie names no better answer")
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value in (0, 1):
        return value == 0
    raise DataError(ref, column, "bad_label",
                    f"label {value!r:.80}: expected 'A'/'B', 'A>B'/'B>A' or 0 (a better) / 1 (b better)")


def load_pairwise(path: str | Path, columns: Mapping[str, str]) -> list[PairExample]:
    """Every row of a pairwise file (jsonl, json, parquet or a datasets folder) through a column
    mapping: prompt, answers a and b, and optionally label (which answer is better; without it, a
    is), subset (default "all") and id (default the row index)."""
    path = Path(path)
    examples = []
    for index, (ref, record) in enumerate(read_records(path)):
        if isinstance(record, DataError):
            raise record
        if not isinstance(record, dict):
            raise DataError(ref, None, "wrong_type", f"expected a row with named fields, got {type(record).__name__}")
        for key, column in columns.items():
            if column not in record:
                raise DataError(ref, column, "missing_field", f"no column {column!r} (for {key}); the row has {sorted(record)}")
        a, b = _text(record, columns["a"], ref), _text(record, columns["b"], ref)
        a_better = _a_is_better(record[columns["label"]], ref, columns["label"]) if "label" in columns else True
        subset = _identifier(record[columns["subset"]], ref, columns["subset"]) if "subset" in columns else DEFAULT_SUBSET
        examples.append(PairExample(
            row=index, subset=str(subset),
            id=_identifier(record[columns["id"]], ref, columns["id"]) if "id" in columns else index,
            prompt=_text(record, columns["prompt"], ref),
            chosen=a if a_better else b, rejected=b if a_better else a,
        ))
    if not examples:
        raise ValueError(f"{path}: no rows")
    check_unique(examples, path)
    return examples


def _rank(seed: int, example: PairExample) -> bytes:
    return seeded_digest(seed, "select", example.draw_key)


def select_examples(examples: Iterable[PairExample], subsets: Sequence[str] | None = None,
                    limit_per_subset: int | None = None, seed: int = 0) -> list[PairExample]:
    """The examples of `subsets` (all when None; an unknown name is an error), at most
    `limit_per_subset` of each drawn by a seeded hash (the same draw on every machine), in file order."""
    examples = list(examples)
    present = list(dict.fromkeys(e.subset for e in examples))
    if subsets is not None:
        unknown = [s for s in subsets if s not in present]
        if unknown:
            raise ValueError(f"unknown subsets {unknown}; the data has {present}")
        examples = [e for e in examples if e.subset in set(subsets)]
    if limit_per_subset is not None:
        if limit_per_subset < 1:
            raise ValueError(f"limit_per_subset={limit_per_subset}: must be >= 1")
        by_subset: dict[str, list[PairExample]] = defaultdict(list)
        for e in examples:
            by_subset[e.subset].append(e)
        keep = {e.row for group in by_subset.values()
                for e in sorted(group, key=lambda e: _rank(seed, e))[:limit_per_subset]}
        examples = [e for e in examples if e.row in keep]
    return examples


def make_items(examples: Iterable[PairExample], seed: int, both_orders: bool) -> list[Item]:
    """The seeded order of every example (`swap_for(seed, "{subset}:{id}")`), then, with
    `both_orders`, the other order too."""
    items = []
    for e in examples:
        swapped = swap_for(seed, e.swap_key)
        items.append(Item(e, swapped, True))
        if both_orders:
            items.append(Item(e, not swapped, False))
    return items

"""JudgeBench (ScalerLab/JudgeBench, MIT): loading and scoring as its official code does
(`utils/metrics.py` `compute_final_metrics`, `run_judge.py`).

Each pair is judged in both orders: first as the file has it (response_A shown as A), then
exchanged, the second verdict read back in the file's order. A verdict that matches the label
counts +1, the opposite one -1, no verdict 0; a pair is correct when the sum is positive. Score =
correct / pairs, per source category (knowledge = mmlu-pro-*, reasoning, math, coding) and over
all pairs. Also reported: the stricter share of pairs right in both orders (as J1 reports it) and
the first order alone (the official single-game score).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from judgejax.data.errors import DataError, RowRef
from judgejax.data.shipped import shipped
from judgejax.eval.bad_input import BadInput, read_usable, records, text
from judgejax.eval.bootstrap import format_interval, statistic_intervals
from judgejax.eval.examples import Item, PairExample, SubsetKeyed, check_unique

GPT4O_SPLIT = shipped("bench_data", "judgebench", "gpt-4o-2024-05-13.jsonl.gz")
LABELS = ("A>B", "B>A")
# Source prefix -> category, in the official order of `run_judge.py`.
CATEGORIES = {"mmlu-pro": "knowledge", "livebench-reasoning": "reasoning", "livebench-math": "math",
              "livecodebench": "coding"}


@dataclass(frozen=True)
class JudgeBenchRow(SubsetKeyed):
    row: int
    subset: str  # the category
    id: str  # pair_id
    source: str
    prompt: str
    response_a: str
    response_b: str
    label: str


def category(source: str) -> str | None:
    return next((c for prefix, c in CATEGORIES.items() if source.startswith(prefix)), None)


def _parse(index: int, ref: RowRef, record: Mapping[str, Any]) -> JudgeBenchRow:
    source = text(record, "source", ref)
    if category(source) is None:
        raise DataError(ref, "source", "unknown_source", f"source {source!r} is none of {sorted(CATEGORIES)}")
    label = record.get("label")
    if label not in LABELS:
        raise DataError(ref, "label", "bad_label", f"label {label!r:.40}: expected 'A>B' or 'B>A'")
    return JudgeBenchRow(row=index, subset=category(source), id=text(record, "pair_id", ref), source=source,
                         prompt=text(record, "question", ref), response_a=text(record, "response_A", ref),
                         response_b=text(record, "response_B", ref), label=label)


def load(path: str | Path) -> tuple[list[JudgeBenchRow], BadInput]:
    """The usable pairs of a JudgeBench JSONL file (or `datasets` folder), and the rows skipped."""
    rows, bad = read_usable(records([Path(path)]), _parse, str(path))
    check_unique(rows, path)
    return rows, bad


def plan(rows: Sequence[JudgeBenchRow], mode: str, seed: int) -> list[Item]:
    """Both orders of every pair, the file's order first (`seeded`). `seed` plays no part: the
    official protocol fixes the orders."""
    items = []
    for r in rows:
        a_better = r.label == "A>B"
        example = PairExample(row=r.row, subset=r.subset, id=r.id, prompt=r.prompt,
                              chosen=r.response_a if a_better else r.response_b,
                              rejected=r.response_b if a_better else r.response_a, meta=(("source", r.source),))
        items += [Item(example, not a_better, True), Item(example, a_better, False)]
    return items


def vote(record: Mapping[str, Any]) -> int:
    """+1 for a verdict naming the better answer, -1 for the other, 0 for no verdict."""
    if record["verdict"] == "error":
        return 0
    return 1 if record["verdict"] == record["chosen_position"] else -1


def pair_table(records_: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], tuple[int, int]]:
    """(category, pair_id) -> (vote in the file's order, vote in the exchanged order)."""
    votes: dict[tuple[str, str], dict[bool, int]] = defaultdict(dict)
    for r in records_:
        votes[(r["subset"], r["id"])][bool(r["seeded"])] = vote(r)
    missing = [k for k, v in votes.items() if len(v) != 2]
    if missing:
        raise ValueError(f"JudgeBench pairs judged in one order only: {missing[:3]} ({len(missing)} in all)")
    return {k: (v[True], v[False]) for k, v in votes.items()}


def scorer(votes: Mapping[Any, tuple[int, int]]):
    """`score(weights=None)`: per category and overall, `accuracy` (official: the sum of the two
    votes > 0), `both_correct` (right in both orders) and `first_order` (the file's order alone);
    weights[i] (per pair, in `votes` order) let a bootstrap resample pairs."""
    keys = list(votes)
    v = np.array([votes[k] for k in keys], dtype=np.float64).reshape(-1, 2)
    metrics = {"accuracy": v.sum(1) > 0, "both_correct": (v == 1).all(1), "first_order": v[:, 0] == 1}
    groups = [("overall", np.ones(len(keys), bool))]
    groups += [(name, np.array([k[0] == name for k in keys], bool)) for name in dict.fromkeys(CATEGORIES.values())]
    groups = [(name, mask) for name, mask in groups if mask.any()]

    def score(weights: Sequence[float] | None = None) -> dict[str, float]:
        w = np.ones(len(keys)) if weights is None else np.asarray(weights, dtype=np.float64)
        out = {}
        for group, mask in groups:
            total = w[mask].sum()
            for metric, hit in metrics.items():
                out[f"{group}/{metric}"] = float(np.dot(hit[mask], w[mask]) / total) if total else float("nan")
        return out
    return score


def summarize(records_: Sequence[Mapping[str, Any]], mode: str, seed: int) -> dict[str, Any]:
    votes = pair_table(records_)
    score = scorer(votes)
    point = score()
    return {"scores": {"overall": point["overall/accuracy"], "values": point}, "num_examples": len(votes),
            "intervals": statistic_intervals(len(votes), score, seed=seed)}


def report(summary: Mapping[str, Any]) -> list[str]:
    values, ci = summary["scores"]["values"], summary["intervals"]
    groups = ["overall", *[c for c in dict.fromkeys(CATEGORIES.values()) if f"{c}/accuracy" in values]]
    lines = ["| category | accuracy (official) | both orders correct (J1) | first order only |", "|---|---|---|---|"]
    for g in groups:
        cells = [format_interval(ci[f"{g}/{m}"]) for m in ("accuracy", "both_correct", "first_order")]
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return lines + ["", "Official score: a pair is correct when its verdicts in the two orders, +1 right, -1 wrong, "
                        "0 none, sum to more than 0; knowledge = mmlu-pro, reasoning, math, coding as JudgeBench "
                        "groups its sources. The reported split is the GPT-4o one (350 pairs)."]


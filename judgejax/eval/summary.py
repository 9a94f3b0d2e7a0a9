"""Scores of a merged run, computed from its per-example records only (so anyone can recompute
them from `results.jsonl`).

RewardBench: `scoring.score_report` over the seeded-order judgements (the official one-order
protocol), with the official tag rule; for generative runs also with the last-tag rule; with both
orders, the subset means over both orders and `scoring.both_order_diagnostics` overall and per
section; and 95% bootstrap intervals of the accuracy and the diagnostics (`bootstrap`; in one
order, those that need both are None). Generic pairwise sets: the plain accuracy per subset, their
mean, and the accuracy over all examples, with the same extras.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from judgejax.eval.bootstrap import run_intervals
from judgejax.eval.examples import REWARDBENCH_TOTAL
from judgejax.eval.repetition import loops
from judgejax.eval.scoring import SUBSET_MAPPING, both_order_diagnostics, score_report

Record = dict[str, Any]
SECTION_OF = {subset: section for section, subsets in SUBSET_MAPPING.items() for subset in subsets}


def pairwise_scores(records: Sequence[Record]) -> dict[str, Any]:
    """Plain mean of `result` per subset, the unweighted mean of the subsets, and the mean over all records."""
    by_subset: dict[str, list[float]] = defaultdict(list)
    for record in records:
        by_subset[str(record["subset"])].append(float(record["result"]))
    subsets = {s: sum(v) / len(v) for s, v in by_subset.items()}
    return {
        "subsets": subsets,
        "subset_mean": sum(subsets.values()) / len(subsets),
        "overall": sum(float(r["result"]) for r in records) / len(records),
        "num_examples": len(records),
    }


def json_ready(value: Any) -> Any:
    """NaN (e.g. P(verdict = A) when no verdict parsed) as None, so the summary is strict JSON."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _with(records: Sequence[Record], field: str, as_field: str) -> list[Record]:
    return [{**r, as_field: r[field]} for r in records]


def _diagnostics(records: Sequence[Record], group_of: Callable[[str], str]) -> dict[str, Any]:
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        groups[group_of(record["subset"])].append(record)
    return {"overall": both_order_diagnostics(records),
            "groups": {name: both_order_diagnostics(group) for name, group in groups.items()}}


def summarize(records: Sequence[Record], *, benchmark: str, mode: str, both_orders: bool) -> dict[str, Any]:
    """The summary of a merged run's records (see the module docstring)."""
    if not records:
        raise ValueError("no records to summarize")
    seeded = [r for r in records if r["seeded"]]
    rewardbench = benchmark == "rewardbench"
    score = (lambda rs: score_report(rs, partial=True)) if rewardbench else pairwise_scores
    summary: dict[str, Any] = {
        "benchmark": benchmark,
        "mode": mode,
        "num_examples": len(seeded),
        "num_judgements": len(records),
        "scores": score(seeded),
    }
    if rewardbench:
        summary["full_benchmark"] = len(seeded) == REWARDBENCH_TOTAL
    if mode == "generative":
        summary["scores_last_tag"] = score(_with(seeded, "result_last", "result"))
        summary["finish_reasons"] = dict(Counter(r["finish_reason"] for r in records))
        summary["cut_off"] = sum(r["finish_reason"] == "length" for r in records)  # judgements ended by max_new_tokens
        summary["loops"] = sum(loops(r["output"]) for r in records)  # judgements repeating themselves (repetition.py)
        summary["mean_output_tokens"] = sum(r["n_tokens"] for r in records) / len(records)
    group_of = SECTION_OF.__getitem__ if rewardbench else str
    if mode != "implicit-reward":
        summary["verdict_counts"] = dict(Counter(r["verdict"] for r in seeded))
        summary["intervals"] = run_intervals(records, group_of)
    if both_orders:
        summary["scores_both_orders"] = score(records)
        summary["diagnostics"] = _diagnostics(records, group_of)
        if mode == "generative":
            summary["scores_both_orders_last_tag"] = score(_with(records, "result_last", "result"))
            summary["diagnostics_last_tag"] = _diagnostics(_with(records, "verdict_last", "verdict"), group_of)
    return json_ready(summary)

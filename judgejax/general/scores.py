"""Score aggregation of judgment records, as the official scripts compute it.

MT-Bench (FastChat `show_result.py --mode single`): drop judgments scored -1; turn 1 and turn 2
scores are the means of their judgments; the MT-Bench score is the mean of all judgments, both
turns pooled; a category's score is the mean of its judgments (both turns).

AlignBench (`show_result.py`): a category's score is the mean over its questions; 中文推理 is the
mean of the 数学计算 and 逻辑推理 category scores, 中文语言 the mean of the other six, 总分 the mean
of the two. The official script averages failed judgments in as -1; here they are excluded
(`official_errors=False`, the default) or averaged in as -1 (`official_errors=True`). A group or
the overall is None while one of its categories has no score.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

from judgejax.general.alignbench_data import GROUPS

ERROR_SCORE = -1


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def mtbench_scores(judgments: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Records with `category`, `turn` (1/2) and `score` -> turn, category and overall scores."""
    judgments = list(judgments)
    valid = [j for j in judgments if j["score"] != ERROR_SCORE]
    by_category: dict[str, list[float]] = defaultdict(list)
    for j in valid:
        by_category[j["category"]].append(j["score"])
    return {
        "overall": _mean([j["score"] for j in valid]),
        "turn_1": _mean([j["score"] for j in valid if j["turn"] == 1]),
        "turn_2": _mean([j["score"] for j in valid if j["turn"] == 2]),
        "categories": {c: _mean(v) for c, v in sorted(by_category.items())},
        "judgments": len(judgments),
        "errors": len(judgments) - len(valid),
        "out_of_range": sum(1 for j in valid if not 1 <= j["score"] <= 10),
    }


def alignbench_scores(judgments: Iterable[dict[str, Any]], official_errors: bool = False) -> dict[str, Any]:
    """Records with `category`, `score` and `rating` -> category, group and overall scores, plus
    per-dimension means over parsed judgments (AlignBench's dimension_calculate.py)."""
    judgments = list(judgments)
    kept = judgments if official_errors else [j for j in judgments if j["score"] != ERROR_SCORE]
    by_category: dict[str, list[float]] = defaultdict(list)
    for j in kept:
        by_category[j["category"]].append(j["score"])
    categories = {c: _mean(v) for c, v in by_category.items()}
    groups = {}
    for group, members in GROUPS.items():
        member_scores = [categories.get(c) for c in members]
        groups[group] = None if None in member_scores else sum(member_scores) / len(member_scores)
    overall = None if None in groups.values() else sum(groups.values()) / len(groups)
    dimensions: dict[str, list[float]] = defaultdict(list)
    for j in judgments:
        if j["score"] != ERROR_SCORE:
            for key, value in j["rating"].items():
                if isinstance(value, (int, float)) and "," not in key:
                    dimensions[key].append(value)
    return {
        "overall": overall,
        "groups": groups,
        "categories": categories,
        "dimensions": {k: _mean(v) for k, v in dimensions.items()},
        "judgments": len(judgments),
        "errors": sum(1 for j in judgments if j["score"] == ERROR_SCORE),
        "errors_rule": "averaged in as -1 (official show_result.py)" if official_errors else "excluded",
    }

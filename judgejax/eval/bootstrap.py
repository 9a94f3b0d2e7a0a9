"""95% bootstrap intervals for a judge's scores, and paired intervals for the difference of two
judges on the same examples.

The unit resampled is the example, its two A/B-order judgements together, or a cluster of
examples that are not independent (the pairs of answers to one prompt: `cluster_of`). A run's metrics:
accuracy (the seeded order alone, the official one-order protocol), both-order accuracy
(`mean_accuracy`: both orders' results), both_correct, consistency, p_verdict_a and
parse_error_rate, as in `scoring.both_order_diagnostics`. A run that judged each example in its
seeded order alone has them all but both_correct and consistency (None): its mean_accuracy is its
accuracy. Intervals are percentile intervals of
`resamples` draws from a seeded generator, so a rerun prints the same numbers. A difference of
two judges resamples the examples both judged, with the same draws for both.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from judgejax.eval.scoring import example_counts, verdict_pairs

Record = Mapping[str, Any]
METRICS = ("accuracy", "mean_accuracy", "both_correct", "consistency", "p_verdict_a", "parse_error_rate")
RESAMPLES = 2000
LEVEL = 0.95


def example_table(records: Sequence[Record]) -> dict[tuple[str, Any], np.ndarray]:
    """Per (subset, id) example: [seeded-order result, sum of its results, both correct, same pick,
    A verdicts, parsed verdicts, unparsed verdicts, judgements (2, or 1 in a one-order run), 1 (the
    example count)]."""
    seeded = {(r["subset"], r["id"]): float(r["result"]) for r in records if r["seeded"]}
    return {key: np.array([seeded[key], *example_counts(by_order), len(by_order), 1.0], dtype=np.float64)
            for key, by_order in verdict_pairs(records, one_order=True).items()}


def _metrics(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics from column sums over a set of examples (sums: [..., 9])."""
    s = np.moveaxis(sums, -1, 0)
    judgements, n = s[7], s[8]
    both_orders = judgements == 2 * n
    with np.errstate(invalid="ignore", divide="ignore"):
        p_a = np.where(s[5] > 0, s[4] / np.maximum(s[5], 1), np.nan)
    return {"accuracy": s[0] / n, "mean_accuracy": s[1] / judgements,
            "both_correct": np.where(both_orders, s[2] / n, np.nan),
            "consistency": np.where(both_orders, s[3] / n, np.nan), "p_verdict_a": p_a,
            "parse_error_rate": s[6] / judgements}


def _clusters(tables: Sequence[Mapping[Any, np.ndarray]], keys: Sequence[Any],
              cluster_of: Callable[[Any], Any] | None) -> list[np.ndarray]:
    """Each table's rows of `keys` summed per cluster (default: each example its own), clusters in
    one order for every table."""
    members: dict[Any, list[Any]] = defaultdict(list)
    for key in keys:
        members[key if cluster_of is None else cluster_of(key)].append(key)
    return [np.stack([sum(table[k] for k in group) for group in members.values()]) for table in tables]


def _weights(clusters: int, resamples: int, seed: int) -> np.ndarray:
    """How often each cluster is drawn in each resample: [resamples, clusters]."""
    return np.random.default_rng(seed).multinomial(clusters, np.full(clusters, 1 / clusters), size=resamples)


def _interval(values: np.ndarray, level: float) -> list[float] | None:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return [float(lo), float(hi)]


def _point(value: np.ndarray) -> float | None:
    return None if np.isnan(value) else float(value)


def intervals(table: Mapping[Any, np.ndarray], *, cluster_of: Callable[[Any], Any] | None = None,
              resamples: int = RESAMPLES, seed: int = 0, level: float = LEVEL) -> dict[str, dict[str, Any]]:
    """{metric: {"value", "ci": [lo, hi]}} over the examples of `table` (see `example_table`),
    resampling whole clusters (`cluster_of(key)`; examples that share a prompt are not independent)."""
    [rows] = _clusters([table], list(table), cluster_of)
    point = _metrics(rows.sum(0))
    boot = _metrics(_weights(len(rows), resamples, seed) @ rows)
    return {m: {"value": _point(point[m]), "ci": _interval(boot[m], level)} for m in METRICS}


def paired_difference(table_a: Mapping[Any, np.ndarray], table_b: Mapping[Any, np.ndarray], *,
                      cluster_of: Callable[[Any], Any] | None = None, resamples: int = RESAMPLES, seed: int = 0,
                      level: float = LEVEL) -> dict[str, Any]:
    """{metric: {"value", "ci"}} of judge b minus judge a over the examples both judged: the same
    clusters drawn for both in every resample."""
    keys = sorted(set(table_a) & set(table_b), key=str)
    if not keys:
        raise ValueError("the two runs share no example")
    a, b = _clusters([table_a, table_b], keys, cluster_of)
    weights = _weights(len(a), resamples, seed)
    point_a, point_b = _metrics(a.sum(0)), _metrics(b.sum(0))
    boot_a, boot_b = _metrics(weights @ a), _metrics(weights @ b)
    return {m: {"value": _point(point_b[m] - point_a[m]), "ci": _interval(boot_b[m] - boot_a[m], level)}
            for m in METRICS} | {"num_examples": len(keys), "num_clusters": len(a)}


def mean_interval(values_by_cluster: Mapping[Any, Sequence[float]], *, resamples: int = RESAMPLES, seed: int = 0,
                  level: float = LEVEL) -> dict[str, Any]:
    """{"value", "ci"} of the mean of all values, resampling whole clusters (values that are not
    independent, such as one pair's two orders, share a cluster)."""
    sums = np.array([[sum(v), len(v)] for v in values_by_cluster.values()], dtype=np.float64)
    drawn = _weights(len(sums), resamples, seed) @ sums
    return {"value": float(sums[:, 0].sum() / sums[:, 1].sum()), "ci": _interval(drawn[:, 0] / drawn[:, 1], level)}


def statistic_intervals(clusters: int, statistic: Callable[[np.ndarray], Mapping[str, float]], *,
                        resamples: int = RESAMPLES, seed: int = 0, level: float = LEVEL) -> dict[str, dict[str, Any]]:
    """{name: {"value", "ci"}} of each value `statistic(weights)` returns, where weights[i] is how
    often cluster i is drawn (all ones for the point estimate): for scores that are not a mean of
    per-example counts (RewardBench 2's Ties formula, RM-Bench's matrix, JudgeBench's votes)."""
    point = statistic(np.ones(clusters))
    draws = [statistic(w) for w in _weights(clusters, resamples, seed)]
    return {name: {"value": _point(np.float64(value)),
                   "ci": _interval(np.array([d[name] for d in draws], dtype=np.float64), level)}
            for name, value in point.items()}


def grouped(table: Mapping[tuple[str, Any], np.ndarray], group_of: Callable[[str], str]) -> dict[str, dict]:
    """The table split by the group of each example's subset."""
    groups: dict[str, dict] = defaultdict(dict)
    for key, row in table.items():
        groups[group_of(key[0])][key] = row
    return dict(groups)


def run_intervals(records: Sequence[Record], group_of: Callable[[str], str], *, seed: int = 0,
                  cluster_of: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Intervals overall and per group (RewardBench section, or subset) of a run."""
    table = example_table(records)
    return {"overall": intervals(table, cluster_of=cluster_of, seed=seed),
            "groups": {name: intervals(part, cluster_of=cluster_of, seed=seed)
                       for name, part in sorted(grouped(table, group_of).items())},
            "resamples": RESAMPLES, "level": LEVEL, "seed": seed, "clustered": cluster_of is not None}


def run_differences(records_a: Sequence[Record], records_b: Sequence[Record], group_of: Callable[[str], str], *,
                    seed: int = 0, cluster_of: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Paired differences (b - a) overall and per group."""
    table_a, table_b = example_table(records_a), example_table(records_b)
    groups_a, groups_b = grouped(table_a, group_of), grouped(table_b, group_of)
    return {"overall": paired_difference(table_a, table_b, cluster_of=cluster_of, seed=seed),
            "groups": {name: paired_difference(groups_a[name], groups_b[name], cluster_of=cluster_of, seed=seed)
                       for name in sorted(set(groups_a) & set(groups_b))},
            "resamples": RESAMPLES, "level": LEVEL, "seed": seed, "clustered": cluster_of is not None}


def format_interval(metric: dict | None, scale: float = 100, digits: int = 1) -> str:
    """"value [lo, hi]" of one metric of `intervals` ("–" when it has no value)."""
    if not metric or metric.get("value") is None:
        return "–"
    v, ci = metric["value"], metric.get("ci")
    text = f"{scale * v:.{digits}f}"
    return text + (f" [{scale * ci[0]:.{digits}f}, {scale * ci[1]:.{digits}f}]" if ci else "")


def interval_table(intervals_of_run: dict[str, Any]) -> list[str]:
    """A Markdown table of `run_intervals`: overall, then each group."""
    lines = ["| group | accuracy (seeded order) | both-order accuracy | both correct | consistency | P(verdict = A) | "
             "parse errors |", "|---|---|---|---|---|---|---|"]
    for name, ci in [("all", intervals_of_run["overall"]), *intervals_of_run["groups"].items()]:
        cells = [format_interval(ci[m]) if m != "p_verdict_a" else format_interval(ci[m], 1, 3) for m in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines

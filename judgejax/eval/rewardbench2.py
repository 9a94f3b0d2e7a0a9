"""RewardBench 2 (allenai/reward-bench-2, ODC-By): loading its published schema, the judgements
of each mode, and the scores (`rb2_scoring`, as the official code computes them).

Schema: id, prompt, chosen (list), rejected (list), num_correct, num_rejected, total_completions,
models, subset. Outside Ties a prompt has one chosen and (at least) three rejected answers; a Ties
row's id is "ref:N" (one correct answer) or "tied:N" (several) and its chosen list holds every
correct answer.

Modes: rankings (official default: the four answers shown at once, the correct one at a seeded
slot), ratings (official `--score_w_ratings`: every answer rated alone), pairwise (judgejax's own:
the correct answer against each rejected one in both orders; the prompt counts only if it wins
every pair in both orders). Ties is rated in every mode, with its own rating prompt.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from judgejax.data.errors import DataError, RowRef
from judgejax.eval.answers import RankingItem, RatingItem, seeded_slot, shown_order
from judgejax.eval.bad_input import BadInput, field, read_usable, records, text, texts
from judgejax.eval.bootstrap import format_interval, statistic_intervals
from judgejax.eval.examples import Item, PairExample, SubsetKeyed, check_unique
from judgejax.eval.rb2_scoring import (RATING_ERROR, SUBSETS, TIES, TIES_WEIGHTS, overall, pairwise_result,
                                       prompt_stats, ratings_result, ties_key, ties_score)
from judgejax.judge.templates import RANKING_LETTERS, swap_for

MODES = ("rankings", "ratings", "pairwise")
REJECTED_SHOWN = len(RANKING_LETTERS) - 1


@dataclass(frozen=True)
class RB2Row(SubsetKeyed):
    row: int
    subset: str
    id: int | str
    prompt: str
    chosen: tuple[str, ...]
    rejected: tuple[str, ...]

    @property
    def draw_key(self) -> str:
        """A Ties prompt's ref:N and tied:N rows rank together in a per-subset draw (a limit of 2k keeps k pairs)."""
        return f"{TIES}:{ties_key(self.id)[1]}" if self.subset == TIES else self.swap_key


def _parse(index: int, ref: RowRef, record: Mapping[str, Any]) -> RB2Row:
    subset = field(record, "subset", ref)
    if subset not in SUBSETS:
        raise DataError(ref, "subset", "unknown_subset", f"subset {subset!r} is none of {SUBSETS}")
    identifier = field(record, "id", ref)
    prompt = text(record, "prompt", ref)
    chosen, rejected = texts(record, "chosen", ref), texts(record, "rejected", ref)
    if not chosen:
        raise DataError(ref, "chosen", "no_chosen", "no chosen answer")
    if "num_correct" in record and record["num_correct"] != len(chosen):
        raise DataError(ref, "num_correct", "num_correct_mismatch",
                        f"num_correct {record['num_correct']!r} but {len(chosen)} chosen answers")
    if subset == TIES:
        try:
            kind, _ = ties_key(identifier)
        except ValueError as error:
            raise DataError(ref, "id", "bad_ties_id", str(error)) from None
        if kind == "tied" and len(chosen) < 2:
            raise DataError(ref, "chosen", "tied_one_correct", "a tied:N row needs at least two correct answers")
        if not rejected:
            raise DataError(ref, "rejected", "too_few_rejected", "no rejected answer")
    else:
        if len(chosen) != 1:
            raise DataError(ref, "chosen", "several_chosen", f"{len(chosen)} chosen answers; {subset} has one")
        if len(rejected) < REJECTED_SHOWN:
            raise DataError(ref, "rejected", "too_few_rejected", f"{len(rejected)} rejected answers; need {REJECTED_SHOWN}")
    return RB2Row(row=index, subset=subset, id=identifier, prompt=prompt, chosen=chosen, rejected=rejected)


def load(path: str | Path) -> tuple[list[RB2Row], BadInput]:
    """The usable prompts of a RewardBench 2 file (parquet, jsonl, json or a `datasets` folder)."""
    rows, bad = read_usable(records([Path(path)]), _parse, str(path))
    check_unique(rows, path)
    return rows, bad


def plan(rows: Sequence[RB2Row], mode: str, seed: int) -> list[Item | RatingItem | RankingItem]:
    """The judgements of `mode` (see the module docstring); `row` numbers them, each pair's two
    orders sharing one number."""
    if mode not in MODES:
        raise ValueError(f"RewardBench 2 mode {mode!r}: choose one of {MODES}")
    items: list[Item | RatingItem | RankingItem] = []
    unit = 0
    for r in rows:
        source = (("source_row", r.row),)
        if r.subset == TIES or mode == "ratings":
            for i, answer in enumerate(r.chosen + r.rejected):
                items.append(RatingItem(unit, r.subset, r.id, r.prompt, answer,
                                        source + (("answer", i), ("correct", i < len(r.chosen))), ties=r.subset == TIES))
                unit += 1
        elif mode == "rankings":
            slot = seeded_slot(seed, r.swap_key)
            items.append(RankingItem(unit, r.subset, r.id, r.prompt,
                                     shown_order(r.chosen[0], r.rejected[:REJECTED_SHOWN], slot), slot, source))
            unit += 1
        else:
            for j, rejected in enumerate(r.rejected):
                example = PairExample(row=unit, subset=r.subset, id=r.id, prompt=r.prompt, chosen=r.chosen[0],
                                      rejected=rejected, meta=source + (("rejected_index", j),))
                swapped = swap_for(seed, f"{r.swap_key}:{j}")
                items += [Item(example, swapped, True), Item(example, not swapped, False)]
                unit += 1
    return items


def prompt_results(records_: Sequence[Mapping[str, Any]], mode: str) -> tuple[dict[tuple[str, Any], float],
                                                                               dict[str, dict[int, Any]]]:
    """Per prompt outside Ties its result ((subset, id) -> 1 / 0 / 1/k / 0.25), and the Ties
    prompts' stats ({"ref": {N: stats}, "tied": {N: stats}})."""
    ratings: dict[tuple[str, Any], dict[int, tuple[bool, int | None]]] = defaultdict(dict)
    pairs: dict[tuple[str, Any], dict[int, list[bool]]] = defaultdict(lambda: defaultdict(list))
    results: dict[tuple[str, Any], float] = {}
    for r in records_:
        key = (r["subset"], r["id"])
        if "rating" in r:
            ratings[key][r["answer"]] = (r["correct"], r["rating"])
        elif "rejected_index" in r:
            pairs[key][r["rejected_index"]].append(r["verdict"] == r["chosen_position"])
        else:
            results[key] = float(r["result"])
    ties: dict[str, dict[int, Any]] = {"ref": {}, "tied": {}}
    for key, by_answer in ratings.items():
        answers = [by_answer[i] for i in sorted(by_answer)]
        if key[0] == TIES:
            kind, number = ties_key(key[1])
            scores = [RATING_ERROR if rating is None else rating for _, rating in answers]
            ties[kind][number] = prompt_stats(sum(correct for correct, _ in answers), scores)
        else:
            results[key] = ratings_result([rating for _, rating in answers])
    for key, by_pair in pairs.items():
        if any(len(orders) != 2 for orders in by_pair.values()):
            raise ValueError(f"RewardBench 2 prompt {key}: every pair must be judged in both orders")
        results[key] = pairwise_result([all(orders) for orders in by_pair.values()])
    return results, ties


def scorer(results: Mapping[tuple[str, Any], float], ties: Mapping[str, Mapping[int, Any]]):
    """(clusters, `score(weights=None)`): subset scores, the Ties terms and the overall score, where
    weights[i] is how often cluster i (a prompt outside Ties, or a Ties prompt N with its ref and
    tied rows) is drawn by a bootstrap."""
    keys = list(results)
    numbers = sorted(set(ties["ref"]) | set(ties["tied"]))
    values = np.array([results[k] for k in keys], dtype=np.float64)
    masks = [(s, np.array([k[0] == s for k in keys], bool)) for s in SUBSETS if s != TIES]
    masks = [(s, m) for s, m in masks if m.any()]

    def score(weights: Sequence[float] | None = None) -> dict[str, float]:
        w = np.ones(len(keys) + len(numbers)) if weights is None else np.asarray(weights, dtype=np.float64)
        out = {}
        for subset, mask in masks:
            total = w[:len(keys)][mask].sum()
            out[subset] = float(np.dot(values[mask], w[:len(keys)][mask]) / total) if total else float("nan")
        if numbers:
            terms = ties_score(ties["ref"], ties["tied"], dict(zip(numbers, w[len(keys):])))
            out[TIES] = terms["score"]
            out |= {f"{TIES}/{k}": v for k, v in terms.items() if k != "score"}
        out["overall"] = overall({s: out[s] for s in SUBSETS if s in out})
        return out
    return len(keys) + len(numbers), score


def summarize(records_: Sequence[Mapping[str, Any]], mode: str, seed: int) -> dict[str, Any]:
    results, ties = prompt_results(records_, mode)
    clusters, score = scorer(results, ties)
    point = score()
    return {"scores": {"overall": point["overall"], "values": point,
                       "missing_subsets": [s for s in SUBSETS if s not in point]},
            "num_examples": len(results) + len(ties["ref"]) + len(ties["tied"]),
            "intervals": statistic_intervals(clusters, score, seed=seed)}


def report(summary: Mapping[str, Any]) -> list[str]:
    ci = summary["intervals"]
    names = ["overall", *[s for s in SUBSETS if s in ci]]
    lines = ["| subset | score |", "|---|---|", *[f"| {n} | {format_interval(ci[n])} |" for n in names], "",
             "Ties terms: " + ", ".join(f"{k} {format_interval(ci[f'{TIES}/{k}'])}" for k in TIES_WEIGHTS
                                        if f"{TIES}/{k}" in ci) + "."]
    if summary["scores"]["missing_subsets"]:
        lines += ["", f"**Partial**: no prompts of {', '.join(summary['scores']['missing_subsets'])}; the overall "
                      "score is the mean of the subsets present and not comparable with the published ones."]
    return lines

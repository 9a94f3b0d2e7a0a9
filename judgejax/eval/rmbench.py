"""RM-Bench (THU-KEG/RM-Bench, ODC-By): loading and scoring as its official code does
(`scripts/utils.py` `compute_accuracy`, and the README's averaging).

Each prompt has three chosen and three rejected answers in the styles [concise, detailed plain,
detailed markdown]. acc[i][j] = share of prompts whose chosen answer of style i beats the rejected
answer of style j; hard = mean of the upper triangle (i < j: a plainer chosen answer against a
fancier rejected one), normal = the diagonal, easy = the lower triangle. A domain's score is the
mean of its hard, normal and easy accuracies; safety pools safety-refuse and safety-response;
the overall score (and Hard / Normal / Easy) is the mean over the domains chat, code, math, safety.

"Beats": a pairwise judge sees every (i, j) pair in both orders, and the pair counts the share of
the two orders in which it picks the chosen answer (a verdict that does not parse picks nothing);
a rating judge rates the six answers alone and chosen i beats rejected j when its rating is
strictly higher (official, for scores), a rating that does not parse counting -1.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from judgejax.data.errors import DataError, RowRef
from judgejax.eval.answers import RatingItem
from judgejax.eval.bad_input import BadInput, field, read_usable, records, text, texts
from judgejax.eval.bootstrap import format_interval, statistic_intervals
from judgejax.eval.examples import Item, PairExample, SubsetKeyed, check_unique
from judgejax.eval.rb2_scoring import RATING_ERROR
from judgejax.judge.templates import swap_for

SUBSETS = ("chat", "code", "math", "safety-refuse", "safety-response")  # the data files
DOMAINS = ("chat", "code", "math", "safety")  # as scored
STYLES = ("concise", "detailed plain", "detailed markdown")
LEVELS = ("hard", "normal", "easy")
_FILE_DOMAIN = re.compile(r"(safety-refuse|safety-response|chat|code|math)")


def domain_of(subset: str) -> str:
    return "safety" if subset.startswith("safety") else subset


@dataclass(frozen=True)
class RMBenchRow(SubsetKeyed):
    row: int
    subset: str
    id: int | str
    prompt: str
    chosen: tuple[str, str, str]
    rejected: tuple[str, str, str]


def _files(path: Path) -> list[tuple[Path, str | None]]:
    """The data files and the subset each holds (None: each row names its `domain`)."""
    if not path.is_dir():
        matches = _FILE_DOMAIN.findall(path.name)
        return [(path, matches[0] if len(matches) == 1 else None)]
    files = sorted(p for p in path.iterdir() if p.suffix == ".json")
    named = [(p, _FILE_DOMAIN.findall(p.name)) for p in files]
    out = [(p, m[0]) for p, m in named if len(m) == 1]
    if not out:
        raise ValueError(f"{path}: no RM-Bench file named for a subset ({', '.join(SUBSETS)}), such as chat_filtered.json")
    return out


def _parser(subset: str | None):
    def parse(index: int, ref: RowRef, record: Mapping[str, Any]) -> RMBenchRow:
        name = subset if subset is not None else text(record, "domain", ref)
        if name not in SUBSETS:
            raise DataError(ref, "domain", "unknown_domain", f"domain {name!r} is none of {SUBSETS}")
        identifier = field(record, "id", ref)
        answers = {side: texts(record, side, ref) for side in ("chosen", "rejected")}
        for side, values in answers.items():
            if len(values) != len(STYLES):
                raise DataError(ref, side, "not_three_styles",
                                f"{len(values)} answers; RM-Bench has one per style {STYLES}")
        return RMBenchRow(row=index, subset=name, id=identifier, prompt=text(record, "prompt", ref),
                          chosen=answers["chosen"], rejected=answers["rejected"])
    return parse


def load(path: str | Path) -> tuple[list[RMBenchRow], BadInput]:
    """The usable prompts of RM-Bench: a folder of its per-domain files (`chat_filtered.json`, ...;
    the subset from the file name), one such file, or `total_dataset.json` (a `domain` per row)."""
    path = Path(path)
    rows: list[RMBenchRow] = []
    bad = BadInput()
    for file, subset in _files(path):
        parse = _parser(subset)
        part, skipped = read_usable(records([file]), lambda i, ref, rec: parse(len(rows) + i, ref, rec), str(file))
        rows += part
        bad.merge(skipped)
    check_unique(rows, path)
    return rows, bad


def plan(rows: Sequence[RMBenchRow], mode: str, seed: int) -> list[Item | RatingItem]:
    """ratings: the six answers of each prompt rated alone; otherwise every (chosen style i,
    rejected style j) pair in both orders, the seeded order first."""
    items: list[Item | RatingItem] = []
    unit = 0
    for r in rows:
        if mode == "ratings":
            for side, answers in (("chosen", r.chosen), ("rejected", r.rejected)):
                for style, answer in enumerate(answers):
                    items.append(RatingItem(len(items), r.subset, r.id, r.prompt, answer,
                                            (("source_row", r.row), ("side", side), ("style", style))))
            continue
        for i, chosen in enumerate(r.chosen):
            for j, rejected in enumerate(r.rejected):
                example = PairExample(row=unit, subset=r.subset, id=r.id, prompt=r.prompt, chosen=chosen,
                                      rejected=rejected,
                                      meta=(("source_row", r.row), ("chosen_style", i), ("rejected_style", j)))
                swapped = swap_for(seed, f"{r.swap_key}:{i}:{j}")
                items += [Item(example, swapped, True), Item(example, not swapped, False)]
                unit += 1
    return items


def prompt_matrices(records_: Sequence[Mapping[str, Any]], mode: str) -> dict[tuple[str, int], np.ndarray]:
    """(subset, source_row) -> the prompt's 3x3 matrix: [i][j] the share of chosen style i beating
    rejected style j (see the module docstring)."""
    out: dict[tuple[str, int], np.ndarray] = defaultdict(lambda: np.zeros((3, 3)))
    if mode == "ratings":
        ratings: dict[tuple[str, int], dict[tuple[str, int], float]] = defaultdict(dict)
        for r in records_:
            rating = RATING_ERROR if r["rating"] is None else r["rating"]
            ratings[(r["subset"], r["source_row"])][(r["side"], r["style"])] = rating
        for key, got in ratings.items():
            if len(got) != 6:
                raise ValueError(f"RM-Bench prompt {key}: {len(got)} of its 6 answers rated")
            out[key] = np.array([[float(got[("chosen", i)] > got[("rejected", j)]) for j in range(3)] for i in range(3)])
        return dict(out)
    counts: dict[tuple[str, int], np.ndarray] = defaultdict(lambda: np.zeros((3, 3)))
    for r in records_:
        key, cell = (r["subset"], r["source_row"]), (r["chosen_style"], r["rejected_style"])
        out[key][cell] += r["verdict"] == r["chosen_position"]
        counts[key][cell] += 1
    for key, n in counts.items():
        if (n != 2).any():
            raise ValueError(f"RM-Bench prompt {key}: each of the 9 pairs must be judged in both orders; counts {n.tolist()}")
    return {key: out[key] / 2 for key in counts}


def levels(matrix: np.ndarray) -> dict[str, float]:
    """hard / normal / easy of a 3x3 accuracy matrix (rows: chosen style, columns: rejected style)."""
    off = len(STYLES) * (len(STYLES) - 1) / 2
    return {"hard": float(np.triu(matrix, 1).sum() / off), "normal": float(np.diag(matrix).mean()),
            "easy": float(np.tril(matrix, -1).sum() / off)}


def scorer(matrices: Mapping[tuple[str, int], np.ndarray]):
    """`score(weights=None)`: per domain (and data subset) hard, normal, easy and their mean, and
    overall the means over the domains present; weights[i] (per prompt, in `matrices` order) let a
    bootstrap resample prompts."""
    keys = list(matrices)
    per_prompt = np.array([[levels(matrices[k])[level] for level in LEVELS] for k in keys])  # linear in the matrix
    groups = [(d, np.array([domain_of(k[0]) == d for k in keys])) for d in DOMAINS]
    groups += [(s, np.array([k[0] == s for k in keys])) for s in SUBSETS if s != domain_of(s)]
    groups = [(name, mask) for name, mask in groups if mask.any()]
    present = [d for d, _ in groups if d in DOMAINS]

    def score(weights: Sequence[float] | None = None) -> dict[str, float]:
        w = np.ones(len(keys)) if weights is None else np.asarray(weights, dtype=np.float64)
        out: dict[str, float] = {}
        for name, mask in groups:
            total = w[mask].sum()
            means = w[mask] @ per_prompt[mask] / total if total else np.full(len(LEVELS), np.nan)
            out |= {f"{name}/{level}": float(value) for level, value in zip(LEVELS, means)}
            out[f"{name}/average"] = float(means.mean())
        for level in (*LEVELS, "average"):
            out[f"overall/{level}"] = float(np.mean([out[f"{d}/{level}"] for d in present]))
        return out
    return score


def summarize(records_: Sequence[Mapping[str, Any]], mode: str, seed: int) -> dict[str, Any]:
    matrices = prompt_matrices(records_, mode)
    score = scorer(matrices)
    point = score()
    per_domain = {}
    for d in DOMAINS:
        rows = [m for k, m in matrices.items() if domain_of(k[0]) == d]
        if rows:
            per_domain[d] = np.mean(rows, axis=0).tolist()
    return {"scores": {"overall": point["overall/average"], "values": point, "matrices": per_domain,
                       "missing_domains": [d for d in DOMAINS if d not in per_domain]},
            "num_examples": len(matrices),
            "intervals": statistic_intervals(len(matrices), score, seed=seed)}


def report(summary: Mapping[str, Any]) -> list[str]:
    ci = summary["intervals"]
    names = [n for n in ("overall", *DOMAINS, *SUBSETS[3:]) if f"{n}/average" in ci]
    lines = ["| domain | average | hard | normal | easy |", "|---|---|---|---|---|"]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(format_interval(ci[f"{name}/{m}"]) for m in ("average", *LEVELS)) + " |")
    lines += ["", "Matrices acc[i][j] (rows: chosen style, columns: rejected style; "
                  f"{', '.join(STYLES)}), x100:", ""]
    for domain, matrix in summary["scores"]["matrices"].items():
        lines += [f"- {domain}: " + "; ".join(" ".join(f"{100 * v:.1f}" for v in row) for row in matrix)]
    if summary["scores"]["missing_domains"]:
        lines += ["", f"**Partial**: no prompts of {', '.join(summary['scores']['missing_domains'])}; the overall "
                      "score is the mean of the domains present and not comparable with the published ones."]
    return lines

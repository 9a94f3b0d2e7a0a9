"""PRM800K phase-1 train step ratings, stepwise-critic layout (xhghhh/Enhancing-PRM800K, MIT; upstream openai/prm800k,
MIT).

Each record rates one candidate next step (`next_response`, rating 1 good / 0 neutral / -1 bad / null) of a MATH
problem (`instruction`) after the previous steps (`responses`). Construction, one pair per step group:
1. Group the records by (instruction, previous steps): the candidate steps a labeller rated at one point of one
   solution. Each group with at least one step rated 1 or -1 is a candidate.
2. Steps whose stripped text occurs with both rating 1 and rating -1 in the group contradict each other and are
   left out. Neutral (0) and unrated steps are never used.
3. Chosen step: the first good step (rating 1) that the labeller continued from (`is_preferred_response`), else
   the first good step in file order. Rejected step: the first bad step (rating -1) in file order. A group without
   both is dropped as "no_good_vs_bad_step".
4. prompt = the problem; chosen = the previous steps and the chosen step, rejected = the previous steps and the
   rejected step, steps stripped and separated by blank lines. The two answers are continuations of the same
   partial solution that differ only in their last step: a correct one and a flawed one.
The repo's added `error_reason` column is not used.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from judgejax.data.errors import DataError, RowRef
from judgejax.sources.pair import Pair, mapping, row_index, string_field, user_prompt
from judgejax.sources.source import Source
from judgejax.sources.tally import OnError, Tally, parsed_records

FILE = "prm800k/phase1_train_plus.stepwise-critic.parquet"


@dataclass(frozen=True)
class Step:
    index: int  # 0-based parquet row
    ref: RowRef
    problem: str
    previous: tuple[str, ...]
    text: str
    rating: float | None
    preferred: bool


def _parse(record: object, ref: RowRef) -> Step:
    record = mapping(record, ref)
    previous = record.get("responses")
    if previous is None:
        raise DataError(ref, "responses", "missing_field", "field is missing or null")
    if not isinstance(previous, (list, tuple)) or not all(isinstance(s, str) for s in previous):
        raise DataError(ref, "responses", "wrong_type", "expected a list of strings (the previous steps)")
    rating = record.get("rating")
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, (int, float))):
        raise DataError(ref, "rating", "wrong_type", f"expected a number or null, got {rating!r}")
    if rating not in (None, 1, 0, -1):
        raise DataError(ref, "rating", "bad_value", f"expected 1, 0, -1 or null, got {rating!r}")
    preferred = record.get("is_preferred_response")
    if not isinstance(preferred, bool):
        raise DataError(ref, "is_preferred_response", "wrong_type", f"expected true or false, got {preferred!r}")
    return Step(row_index(ref), ref, string_field(record, "instruction", ref), tuple(previous),
                string_field(record, "next_response", ref), rating, preferred)


def _answer(step: Step) -> str:
    return "\n\n".join(s.strip() for s in (*step.previous, step.text))


def _pair(chosen: Step, rejected: Step) -> Pair:
    return Pair(
        id=f"prm800k/{chosen.index}-{rejected.index}",
        source="prm800k",
        source_row=f"{FILE} rows {chosen.index} (chosen step), {rejected.index} (rejected step)",
        domain="math",
        prompt_messages=user_prompt(chosen.problem, chosen.ref, "instruction"),
        chosen=_answer(chosen),
        rejected=_answer(rejected),
        exclusion_keys=frozenset({(FILE, "instruction", chosen.problem)}),
    )


def pairs(source_dir: Path, on_error: OnError, tally: Tally) -> Iterator[Pair]:
    groups: dict[tuple[str, tuple[str, ...]], list[Step]] = {}
    for step in parsed_records(source_dir / FILE, _parse, on_error, tally):
        groups.setdefault((step.problem, step.previous), []).append(step)
    for steps in groups.values():
        good = [s for s in steps if s.rating == 1]
        bad = [s for s in steps if s.rating == -1]
        if not good and not bad:
            continue
        contradicted = {s.text.strip() for s in good} & {s.text.strip() for s in bad}
        good = [s for s in good if s.text.strip() not in contradicted]
        bad = [s for s in bad if s.text.strip() not in contradicted]
        if not good or not bad:
            tally.dropped["no_good_vs_bad_step"] += 1
            continue
        yield _pair(next((s for s in good if s.preferred), good[0]), bad[0])


SOURCE = Source("prm800k", "math", (FILE,), pairs)

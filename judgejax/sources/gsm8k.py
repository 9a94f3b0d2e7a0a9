"""GSM8K test questions with four labelled model solutions each (openai/grade-school-math, MIT).

One pair per question: chosen = the human reference solution `ground_truth`; rejected = the first solution, in the
order 175b_verification, 175b_finetuning, 6b_verification, 6b_finetuning (stronger models first, so the flaw is
harder to spot), that is labelled `is_correct: false` AND ends in a final answer line "A: <x>" whose number differs
from the reference's. A solution cut off before its final answer is never the rejected one. A question without such
a solution is dropped as "no_wrong_final_answer". The calculator annotations "<<expr=value>>" are removed from both
answers (they are a training artefact, not part of the written solution).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

from judgejax.data.errors import DataError, RowRef
from judgejax.sources.pair import Pair, mapping, row_index, row_key, string_field, user_prompt
from judgejax.sources.source import Source
from judgejax.sources.tally import OnError, Tally, parsed_records

FILE = "gsm8k/example_model_solutions.jsonl"
SOLUTIONS = ("175b_verification", "175b_finetuning", "6b_verification", "6b_finetuning")
FINAL = re.compile(r"(?:^|\n)A:[ \t]*([^\n]*?)\s*$")
CALCULATOR = re.compile(r"<<[^<>]*>>")


def final_answer(solution: str) -> str | None:
    """The answer on the solution's last line "A: <x>", or None when the solution has no such line."""
    match = FINAL.search(solution)
    return match.group(1) if match and match.group(1) else None


def same_answer(a: str, b: str) -> bool:
    """Equal as numbers (integers, decimals, fractions such as 7/14) after removing thousands commas, a leading "$"
    and a final "."; else equal as text."""
    def number(text: str) -> Fraction | str:
        cleaned = text.replace(",", "").removeprefix("$").rstrip(".")
        try:
            return Fraction(cleaned)
        except (ValueError, ZeroDivisionError):
            return cleaned
    return number(a) == number(b)


def strip_calculator(solution: str) -> str:
    return CALCULATOR.sub("", solution).strip()


def _solution(record: dict, name: str, ref: RowRef) -> tuple[bool, str]:
    value = record.get(name)
    if value is None:
        raise DataError(ref, name, "missing_field", "field is missing or null")
    if not isinstance(value, dict):
        raise DataError(ref, name, "wrong_type", f"expected an object {{is_correct, solution}}, got {type(value).__name__}")
    if not isinstance(value.get("is_correct"), bool):
        raise DataError(ref, f"{name}.is_correct", "wrong_type", f"expected true or false, got {value.get('is_correct')!r}")
    return value["is_correct"], string_field(value, "solution", ref, parent=name)


def _parse(record: object, ref: RowRef) -> Pair | None:
    record = mapping(record, ref)
    question = string_field(record, "question", ref)
    reference = string_field(record, "ground_truth", ref)
    expected = final_answer(reference)
    if expected is None:
        raise DataError(ref, "ground_truth", "no_final_answer", 'the reference solution has no final "A: <answer>" line')
    solutions = {name: _solution(record, name, ref) for name in SOLUTIONS}
    for name in SOLUTIONS:
        is_correct, solution = solutions[name]
        answer = final_answer(solution)
        if not is_correct and answer is not None and not same_answer(answer, expected):
            index = row_index(ref)
            return Pair(
                id=f"gsm8k/{index}",
                source="gsm8k",
                source_row=f"{FILE} row {index} (chosen: ground_truth, rejected: {name})",
                domain="math",
                prompt_messages=user_prompt(question, ref, "question"),
                chosen=strip_calculator(reference),
                rejected=strip_calculator(solution),
                exclusion_keys=frozenset({row_key(FILE, ref)}),
            )
    return None


def pairs(source_dir: Path, on_error: OnError, tally: Tally) -> Iterator[Pair]:
    return parsed_records(source_dir / FILE, _parse, on_error, tally, no_result="no_wrong_final_answer")


SOURCE = Source("gsm8k", "math", (FILE,), pairs)

"""MT-Bench files: the 80 two-turn questions, GPT-4 reference answers and judge prompts shipped in
`judgejax/general_data/mt_bench/` (FastChat, Apache-2.0), and answer files in FastChat's
`model_answer` format."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from judgejax.data.errors import DataError
from judgejax.data.shipped import shipped
from judgejax.general.records import field, question_records, read_objects

SHIPPED = shipped("general_data", "mt_bench")
QUESTIONS = SHIPPED / "question.jsonl"
REFERENCES = SHIPPED / "reference_answer" / "gpt-4.jsonl"
JUDGE_PROMPTS = SHIPPED / "judge_prompts.jsonl"

CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
# FastChat's `temperature_config` (fastchat/llm_judge/common.py); other categories get 0.7, and a
# temperature below 1e-4 means greedy decoding.
TEMPERATURE = {
    "writing": 0.7, "roleplay": 0.7,
    "extraction": 0.0, "math": 0.0, "coding": 0.0, "reasoning": 0.0,
    "stem": 0.1, "humanities": 0.1,
}
DEFAULT_TEMPERATURE = 0.7
# Categories graded against the reference answers (FastChat's NEED_REF_CATS).
NEED_REF_CATEGORIES = frozenset({"math", "reasoning", "coding"})
SINGLE_PROMPTS = ("single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn")


@dataclasses.dataclass(frozen=True)
class Question:
    id: int
    category: str
    turns: tuple[str, str]


def temperature_for(category: str) -> float:
    return TEMPERATURE.get(category, DEFAULT_TEMPERATURE)


def load_questions(path: str | Path = QUESTIONS) -> list[Question]:
    questions = []
    for ref, record, qid in question_records(path):
        turns = _two_turns(ref, field(ref, record, "turns", list), "turns")
        questions.append(Question(qid, field(ref, record, "category", str), turns))
    return questions


def mtbench_references() -> list[tuple[str, str]]:
    """(key, first turn) for every shipped MT-Bench question: what decontamination checks against."""
    return [(f"mt-bench:{q.id}", q.turns[0]) for q in load_questions()]


def load_reference_answers(path: str | Path = REFERENCES) -> dict[int, tuple[str, str]]:
    """question id -> the reference's two turns."""
    return {qid: turns for qid, (turns, _) in load_answers(path).items()}


def load_answers(path: str | Path) -> dict[int, tuple[tuple[str, str], str]]:
    """question id -> (the two answer turns of choice 0, model_id) from a FastChat-format file."""
    answers = {}
    for ref, record in read_objects(path):
        qid = field(ref, record, "question_id", int)
        if qid in answers:
            raise DataError(ref, "question_id", "duplicate", f"question {qid} answered twice")
        choices = field(ref, record, "choices", list)
        if not choices or not isinstance(choices[0], dict):
            raise DataError(ref, "choices", "bad_value", "expected a non-empty list of {index, turns}")
        turns = _two_turns(ref, choices[0].get("turns"), "choices[0].turns")
        answers[qid] = (turns, str(record.get("model_id", "")))
    return answers


def load_judge_prompts(path: str | Path = JUDGE_PROMPTS) -> dict[str, dict[str, str]]:
    """name -> the prompt record (system_prompt, prompt_template, output_format, ...)."""
    prompts = {}
    for ref, record in read_objects(path):
        name = field(ref, record, "name", str)
        for key in ("system_prompt", "prompt_template", "output_format", "type"):
            field(ref, record, key, str)
        prompts[name] = record
    missing = [name for name in SINGLE_PROMPTS if name not in prompts]
    if missing:
        raise ValueError(f"{path}: judge prompts {missing} are missing")
    return prompts


def _two_turns(ref, turns, name: str) -> tuple[str, str]:
    if not isinstance(turns, list) or len(turns) != 2 or not all(isinstance(t, str) for t in turns):
        raise DataError(ref, name, "bad_value", f"expected a list of 2 strings, got {turns!r:.120}")
    return turns[0], turns[1]

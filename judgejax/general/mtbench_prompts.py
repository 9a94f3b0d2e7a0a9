"""MT-Bench single-answer grading: which official prompt grades which turn, the filled prompt, and
the `[[rating]]` parser, as FastChat's `gen_judgment.py` / `common.py` define them.

Prompt choice: turn 1 is graded with `single-v1` (question 1 and answer 1 only), turn 2 with
`single-v1-multi-turn` (the whole two-turn conversation, focus on the second answer); for math,
reasoning and coding the `single-math-v1*` variants add the GPT-4 reference answer (turn 1: its
first turn as `ref_answer_1`; turn 2: both turns). Messages: system = the prompt's `system_prompt`,
user = its filled `prompt_template`.
"""

from __future__ import annotations

import dataclasses
import re

from judgejax.general.mtbench_data import NEED_REF_CATEGORIES, Question

Message = dict[str, str]
ERROR_SCORE = -1  # the score of a judgment without a parseable rating, as in FastChat's files
_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")


@dataclasses.dataclass(frozen=True)
class JudgeRequest:
    prompt_name: str
    user_prompt: str
    messages: list[Message]


def prompt_name(category: str, turn: int) -> str:
    if turn not in (1, 2):
        raise ValueError(f"turn must be 1 or 2, got {turn}")
    base = "single-math-v1" if category in NEED_REF_CATEGORIES else "single-v1"
    return base + ("-multi-turn" if turn == 2 else "")


def judge_request(
    prompts: dict[str, dict[str, str]],
    question: Question,
    answer: tuple[str, str],
    reference: tuple[str, str] | None,
    turn: int,
) -> JudgeRequest:
    """The chat messages asking the judge to rate `answer` at `turn` (1 or 2)."""
    name = prompt_name(question.category, turn)
    template = prompts[name]
    fields: dict[str, str] = {}
    if question.category in NEED_REF_CATEGORIES:
        if reference is None:
            raise ValueError(f"question {question.id} ({question.category}) is graded against a reference "
                             "answer, but the reference file has none for it")
        fields.update(ref_answer_1=reference[0], ref_answer_2=reference[1])
    if turn == 1:
        fields.update(question=question.turns[0], answer=answer[0])
    else:
        fields.update(question_1=question.turns[0], question_2=question.turns[1],
                      answer_1=answer[0], answer_2=answer[1])
    user = template["prompt_template"].format(**fields)
    messages = [{"role": "system", "content": template["system_prompt"]}, {"role": "user", "content": user}]
    return JudgeRequest(name, user, messages)


def parse_rating(judgment: str) -> int | float:
    """The first `[[n]]` in the judgment, else the first `[n]`, else ERROR_SCORE (-1).

    As FastChat: the first match wins (a judgment that rates twice keeps its first rating), the
    number may be fractional (`[[7.5]]`), and it is not clamped to 1..10."""
    match = _RATING.search(judgment) or _RATING_BACKUP.search(judgment)
    if match is None:
        return ERROR_SCORE
    text = match.group(1)
    return float(text) if "." in text else int(text)

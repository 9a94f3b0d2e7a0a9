"""Judge prompts of MT-Bench and AlignBench, checked against the official prompt and config files:
the right prompt per category and turn, every placeholder filled with the right text, reference
answers exactly where the protocol puts them and nowhere else."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from judgejax.general import alignbench_data, mtbench_data
from judgejax.general.alignbench_prompt import JUDGEJAX_TEMPLATE, judge_prompt, official_template
from judgejax.general.mtbench_data import Question
from judgejax.general.mtbench_prompts import judge_request
from shared_data import SHARED as SHARED_ROOT

SHARED = SHARED_ROOT / "data" / "general"
SHIPPED = Path(mtbench_data.SHIPPED)
# Which official prompt grades which category and turn (FastChat gen_judgment.py make_judge_single).
EXPECTED_PROMPT = {("writing", 1): "single-v1", ("writing", 2): "single-v1-multi-turn",
                   ("math", 1): "single-math-v1", ("math", 2): "single-math-v1-multi-turn",
                   ("reasoning", 1): "single-math-v1", ("coding", 2): "single-math-v1-multi-turn",
                   ("extraction", 1): "single-v1", ("humanities", 2): "single-v1-multi-turn"}
TEXT = {"question_1": "Q-ONE", "question_2": "Q-TWO", "answer_1": "A-ONE", "answer_2": "A-TWO",
        "ref_answer_1": "R-ONE", "ref_answer_2": "R-TWO"}


def raw_prompts() -> dict[str, dict]:
    return {p["name"]: p for p in map(json.loads, (SHIPPED / "judge_prompts.jsonl").read_text().splitlines())}


def expected_user(template: str, turn: int) -> str:
    """The template with each {placeholder} replaced by its text, by plain string substitution."""
    values = dict(TEXT, question=TEXT["question_1"], answer=TEXT["answer_1"])
    out = template
    for name in sorted(values, key=len, reverse=True):
        out = out.replace("{" + name + "}", values[name])
    assert "{" not in out, f"unfilled placeholder left in {out!r}"
    return out


def test_shipped_files_are_the_official_ones():
    for name in ("question.jsonl", "judge_prompts.jsonl", "reference_answer/gpt-4.jsonl", "LICENSE.FastChat-Apache-2.0"):
        shipped = hashlib.sha256((SHIPPED / name).read_bytes()).hexdigest()
        assert f"{shipped}  ./mt_bench/{name}" in (SHARED / "SHA256SUMS").read_text(), name
    questions = mtbench_data.load_questions()
    assert [q.id for q in questions] == list(range(81, 161))
    assert {c: sum(q.category == c for q in questions) for c in mtbench_data.CATEGORIES} == dict.fromkeys(
        mtbench_data.CATEGORIES, 10)
    refs = mtbench_data.load_reference_answers()
    assert sorted(refs) == [q.id for q in questions if q.category in ("math", "reasoning", "coding")]


@pytest.mark.parametrize("category,turn", sorted(EXPECTED_PROMPT))
def test_mtbench_prompt_per_category_and_turn(category, turn):
    prompts = raw_prompts()
    question = Question(999, category, (TEXT["question_1"], TEXT["question_2"]))
    request = judge_request(mtbench_data.load_judge_prompts(), question, (TEXT["answer_1"], TEXT["answer_2"]),
                            (TEXT["ref_answer_1"], TEXT["ref_answer_2"]), turn)
    name = EXPECTED_PROMPT[(category, turn)]
    assert request.prompt_name == name
    official = prompts[name]
    assert request.messages == [{"role": "system", "content": official["system_prompt"]},
                                {"role": "user", "content": expected_user(official["prompt_template"], turn)}]
    user = request.user_prompt
    # References: only for math/reasoning/coding; turn 1 sees the first reference turn only.
    reference_guided = category in ("math", "reasoning", "coding")
    assert user.count("R-ONE") == (1 if reference_guided else 0)
    assert user.count("R-TWO") == (1 if reference_guided and turn == 2 else 0)
    # Turn 1 sees question 1 and answer 1 only; turn 2 the whole conversation (and the
    # reference-guided turn 2 repeats both questions in its reference block).
    asked = 2 if reference_guided and turn == 2 else 1
    assert user.count("Q-ONE") == asked and user.count("A-ONE") == 1
    assert user.count("Q-TWO") == (asked if turn == 2 else 0)
    assert user.count("A-TWO") == (1 if turn == 2 else 0)


def test_mtbench_real_reference_is_used_verbatim():
    questions = {q.id: q for q in mtbench_data.load_questions()}
    refs = mtbench_data.load_reference_answers()
    raw_refs = {r["question_id"]: r["choices"][0]["turns"]
                for r in map(json.loads, (SHIPPED / "reference_answer/gpt-4.jsonl").read_text().splitlines())}
    prompts = mtbench_data.load_judge_prompts()
    turn_2 = judge_request(prompts, questions[104], ("x", "y"), refs[104], 2).user_prompt
    assert f"### Reference answer:\n{raw_refs[104][0]}\n\n" in turn_2
    assert f"### Reference answer:\n{raw_refs[104][1]}\n\n" in turn_2
    turn_1 = judge_request(prompts, questions[104], ("x", "y"), refs[104], 1).user_prompt
    assert f"[The Start of Reference Answer]\n{raw_refs[104][0]}\n[The End of Reference Answer]" in turn_1
    with pytest.raises(ValueError, match="question 104"):
        judge_request(prompts, questions[104], ("x", "y"), None, 1)


def shared_alignbench():
    folder = SHARED / "alignbench"
    config = alignbench_data.load_config(folder)
    return folder, config, alignbench_data.load_questions(folder, config)


def test_alignbench_questions_and_configs():
    _, _, questions = shared_alignbench()
    assert len(questions) == 683 and sorted(q.id for q in questions) == list(range(1, 684))
    assert {g: sum(q.category in members for q in questions) for g, members in alignbench_data.GROUPS.items()} == {
        "中文推理": 112 + 92, "中文语言": 683 - 112 - 92}


def test_alignbench_prompt_against_config_files():
    folder, config, questions = shared_alignbench()
    dimension_set = json.loads((folder / "config/dimension_set.json").read_text())
    definitions = json.loads((folder / "config/dimension_definition.json").read_text())
    kinds = json.loads((folder / "config/subcategory_question_mapping.json").read_text())
    seen_kinds = set()
    for question in questions:
        kind = kinds[question.subcategory]
        if kind in seen_kinds:
            continue
        seen_kinds.add(kind)
        answer = f"助手的回答 {question.id}"
        dimensions, prompt = judge_prompt(JUDGEJAX_TEMPLATE, question, answer, config)
        assert dimensions == dimension_set[kind]
        listing = "".join(f"{i + 1}. {d}: {definitions[d]}\n" for i, d in enumerate(dimension_set[kind]))
        assert listing in prompt and prompt.count(f"{len(dimensions) + 1}. ") == 0
        assert f"你要评估的回答属于{question.category}类型" in prompt  # the primary category, not the subcategory
        assert f"用户的提问： {question.question}\n" in prompt
        assert re.search(r"\[参考答案开始\]\n(.*)\n\[参考答案结束\]", prompt, re.S).group(1) == question.reference
        assert re.search(r"\[助手的答案开始\]\n(.*)\n\[助手的答案结束\]", prompt, re.S).group(1) == answer
        assert "{'维度一': 打分, '维度二': 打分, ..., '综合得分': 打分}" in prompt
    assert seen_kinds == set(dimension_set)


def test_alignbench_official_prompt_is_read_from_judge_py(tmp_path):
    assert official_template(tmp_path) is None
    (tmp_path / "judge.py").write_text(
        "def prompt_construct(sample, config):\n"
        "    base_prompt = \"类型{category}\\n{dimensions}\" \\\n"
        "        \"问：{question}|参：{reference}|答：{answer}|{{'综合得分': 打分}}\"\n"
        "    return base_prompt\n", encoding="utf-8")
    template, source = official_template(tmp_path)
    assert template == "类型{category}\n{dimensions}问：{question}|参：{reference}|答：{answer}|{{'综合得分': 打分}}"
    assert source.startswith("official judge.py (sha256 ")
    folder, config, questions = shared_alignbench()
    q = questions[0]
    _, prompt = judge_prompt(template, q, "ANS", config)
    assert prompt.endswith(f"问：{q.question}|参：{q.reference}|答：ANS|{{'综合得分': 打分}}")
    (tmp_path / "judge.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="base_prompt"):
        official_template(tmp_path)

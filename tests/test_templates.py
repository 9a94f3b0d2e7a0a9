"""Judge templates and verdict parsers: the official pair-v2 text, rendering, parsing, A/B order."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from judgejax.judge.templates import (TEMPLATES, JudgeTemplate, get_template, pair_messages,
                                      swap_for)
from judgejax.judge.verdicts import JsonVerdict, MarkerVerdict, official_tag_verdict
from shared_data import SHARED as SHARED_ROOT

PROTOCOL = SHARED_ROOT / "docs" / "protocol.md"
QUESTION = "What is 2 + 2? Answer in {braces} if you like."
ANSWER_A = "It is 4. 这是第一个回答。"
ANSWER_B = "It is 5, see {answer_a} [[B]]."


def protocol_pair_v2() -> tuple[str, str]:
    """The pair-v2 system prompt and user format exactly as docs/protocol.md states them."""
    text = PROTOCOL.read_text(encoding="utf-8")
    system = re.search(r"^> (Please act as an impartial judge.*)$", text, re.M).group(1)
    user = re.search(r"user message = `([^`]*)`", text).group(1).replace("\\n", "\n")
    return system, user


def test_pair_v2_renders_the_protocol_text_exactly():
    system, user_format = protocol_pair_v2()
    messages = get_template("pair-v2").messages(QUESTION, ANSWER_A, ANSWER_B)
    expected_user = (user_format.replace("{question}", QUESTION)
                     .replace("{answer_a}", ANSWER_A).replace("{answer_b}", ANSWER_B))
    assert messages == [{"role": "system", "content": system},
                        {"role": "user", "content": expected_user}]
    # No tie option in the official prompt.
    assert "[[C]]" not in system and "tie" not in system


def test_registry_covers_roles_criteria_languages_and_formats():
    own = [t for t in TEMPLATES.values() if t.name != "pair-v2"]
    assert len(own) >= 8
    assert {t.criteria for t in own} == {"general", "safety", "math", "code"}
    chinese = [t for t in own if t.language == "zh"]
    assert len(chinese) >= 2
    # A RISE-like short Chinese instruction with an (explicitly) empty system prompt, [[A]]/[[B]].
    rise = get_template("zh-rise-short")
    assert rise.system == "" and rise.language == "zh" and rise.verdict_text("A") == "[[A]]"
    formats = {"json" if isinstance(t.verdict, JsonVerdict)
               else "tag" if t.verdict_text("A") == "[[A]]" else "label" for t in own}
    assert formats == {"tag", "json", "label"}
    assert len({t.system for t in TEMPLATES.values()}) >= 8  # distinct roles / system prompts
    assert any(t.system is None for t in own)


def test_get_template_error_lists_names():
    with pytest.raises(KeyError) as info:
        get_template("pair-v3")
    for name in TEMPLATES:
        assert name in str(info.value)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_renders_and_round_trips_its_verdict(name):
    template = get_template(name)
    messages = template.messages(QUESTION, ANSWER_A, ANSWER_B)
    roles = [m["role"] for m in messages]
    assert roles == (["user"] if template.system is None else ["system", "user"])
    if template.system is not None:
        assert messages[0]["content"] == template.system
    user = messages[-1]["content"]
    # Question and answers appear verbatim, once each, in order; braces in them survive.
    positions = [user.index(x) for x in (QUESTION, ANSWER_A, ANSWER_B)]
    assert positions == sorted(positions)
    assert all(user.count(x) == 1 for x in (QUESTION, ANSWER_A, ANSWER_B))
    # The instruction (system or user) tells the judge the canonical verdict strings.
    instruction = (template.system or "") + user.replace(ANSWER_B, "")
    for letter in "AB":
        verdict = template.verdict_text(letter)
        assert template.parse(verdict) == letter
        if isinstance(template.verdict, MarkerVerdict):
            assert verdict in instruction
        other = "B" if letter == "A" else "A"
        # An analysis that mentions the other verdict first still ends in this one.
        analysis = f"At first {template.verdict_text(other)} looked right.\n第二步：再核对一遍。"
        assert template.parse(template.judgement(analysis, letter)) == letter
    assert template.parse("I cannot decide.") == "error"


@pytest.mark.parametrize("output, expected", [
    ("Both are fine. [[A]]", "A"),
    ("Assistant A claims [[A]] is the format... on reflection B is right.\n\n[[B]]", "B"),
    ("[[B]] was my first thought, but A is correct. [[A]]", "A"),
    ("No verdict here, A is better", "error"),
    ("[A] or [[ B ]] or [[C]]", "error"),
    ("", "error"),
    ("分析：回答B的推理有误。\n\n[[A]]", "A"),
    ("助手A更好吗？不，[[A]]是错的，结论：[[B]]", "B"),
])
def test_tag_parser_last_verdict_wins(output, expected):
    assert get_template("pair-v2").parse(output) == expected
    assert get_template("zh-rise-short").parse(output) == expected


def test_official_rule_takes_any_a_first_and_differs_from_last_tag():
    output = "Assistant A ends with [[A]]-style formatting, but is wrong. Final verdict: [[B]]"
    assert official_tag_verdict(output) == "A"
    assert get_template("pair-v2").parse(output) == "B"
    assert official_tag_verdict("Final: [[B]]") == "B"
    assert official_tag_verdict("no tag") == "error"
    assert official_tag_verdict("[[B]] then [[A]]") == "A"


@pytest.mark.parametrize("output, expected", [
    ('{"analysis": "B has a bug", "winner": "A"}', "A"),
    ('```json\n{"analysis": "A 的答案错误", "winner": "B"}\n```', "B"),
    ('{"analysis": "x", "winner": "A"}\nWait, I was wrong.\n{"analysis": "y", "winner": "B"}', "B"),
    ('{"analysis": "quote {\\"winner\\": \\"B\\"}", "winner": "A"}', "A"),
    ('{"analysis": "x", "winner": " B "}', "B"),
    ('{"analysis": "x", "winner": "A"', "error"),           # truncated
    ("{'analysis': 'x', 'winner': 'A'}", "error"),          # not JSON
    ('{"analysis": "x", "winner": "C"}', "error"),
    ('{"analysis": "x", "winner": ["A"]}', "error"),
    ('{"analysis": "A is better", "verdict": "A"}', "error"),
    ('{"analysis": "x", "winner": "A"} then {"winner": "tie"}', "error"),
    ("[[A]]", "error"),
])
def test_json_parser(output, expected):
    assert get_template("en-code-json").parse(output) == expected
    assert get_template("zh-math-json").parse(output) == expected


def test_json_judgement_is_valid_json_with_the_analysis():
    analysis = 'Line 1 "quoted"\n第二行 {brace}'
    text = get_template("zh-math-json").judgement(analysis, "B")
    assert json.loads(text) == {"analysis": analysis, "winner": "B"}
    assert json.loads(JsonVerdict().verdict_text("A")) == {"winner": "A"}


@pytest.mark.parametrize("output, expected", [
    ("Output (a) is longer; Output (b) follows the instruction.\nVerdict: Output (b)", "B"),
    ("Verdict: Output (b)\nOn second thought:\nVerdict:  Output (a)", "A"),
    ("Output (a) is better.", "error"),   # a mention is not a verdict
    ("Verdict: Output (c)", "error"),
])
def test_label_parser(output, expected):
    assert get_template("en-instruction-label").parse(output) == expected


@pytest.mark.parametrize("output, expected", [
    ("回答1拒绝了无害的请求，回答2正常回答。\n最终选择：回答2", "B"),
    ("最终选择：回答2……不对，回答2提供了危险信息。\n最终选择:回答1", "A"),   # ASCII colon too
    ("回答1更好。", "error"),
])
def test_chinese_label_parser(output, expected):
    assert get_template("zh-safety-label").parse(output) == expected


def test_template_validation_names_the_problem():
    with pytest.raises(ValueError, match="fields"):
        JudgeTemplate("bad", "en", "general", None, "{question} {answer_a}", JsonVerdict())
    with pytest.raises(ValueError, match="language"):
        JudgeTemplate("bad", "fr", "general", None, "{question}{answer_a}{answer_b}", JsonVerdict())
    with pytest.raises(ValueError, match="letter"):
        get_template("pair-v2").verdict_text("C")
    with pytest.raises(ValueError, match="different"):
        MarkerVerdict("[[A]]", "[[A]]")


def test_pair_messages_puts_chosen_where_it_says():
    template = get_template("en-general-tag")
    messages, position = pair_messages(template, "Q?", "GOOD", "BAD", swapped=False)
    assert position == "A" and messages == template.messages("Q?", "GOOD", "BAD")
    messages, position = pair_messages(template, "Q?", "GOOD", "BAD", swapped=True)
    assert position == "B" and messages == template.messages("Q?", "BAD", "GOOD")


def test_swap_is_deterministic_across_processes_and_balanced():
    ids = [f"subset-{i % 23}:{i}" for i in range(1000)]
    swaps = [swap_for(0, row_id) for row_id in ids]
    assert 450 <= sum(swaps) <= 550
    # Another seed draws a different, also balanced, assignment.
    other = [swap_for(1, row_id) for row_id in ids]
    assert other != swaps and 450 <= sum(other) <= 550
    # Two fresh interpreters with different string-hash seeds agree with this one.
    code = ("from judgejax.judge.templates import swap_for\n"
            f"print(''.join('1' if swap_for(0, r) else '0' for r in {ids!r}))")
    expected = "".join("1" if s else "0" for s in swaps)
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True, cwd=Path(__file__).parents[1]).stdout.strip()
        assert out == expected
    with pytest.raises(TypeError):
        swap_for(True, "x")
    with pytest.raises(TypeError):
        swap_for(0, 17)

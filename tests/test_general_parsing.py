"""Rating parsers on crafted judge outputs, against the official rules: FastChat's `[[rating]]`
(first `[[n]]`, else first `[n]`, else -1) and AlignBench's dict of scores (last `{...}` group,
single-quoted keys, '综合得分' or a fallback search, else -1)."""

from __future__ import annotations

import ast
import re

import pytest

from judgejax.general.alignbench_prompt import parse_judgment
from judgejax.general.mtbench_prompts import parse_rating


def fastchat_rating(judgment: str):
    """FastChat common.py run_judge_single's parsing, restated from its two patterns."""
    match = re.search(r"\[\[(\d+\.?\d*)\]\]", judgment) or re.search(r"\[(\d+\.?\d*)\]", judgment)
    return ast.literal_eval(match.groups()[0]) if match else -1


MTBENCH_CASES = [
    ("The answer is accurate. [[7]]", 7),
    ("Mostly right. [[7.5]]", 7.5),
    ("Short explanation.\n\nRating: [[10]]", 10),
    ("A fine answer, but I will not rate it.", -1),  # none: an error, never guessed
    ('Format "[[rating]]" noted. Rating: [[4]]', 4),  # the quoted format has no digits
    ("First [[3]], on reflection [[8]]", 3),  # several: the first wins
    ("Score [2] in the text, final [[6]]", 6),  # a double-bracket rating beats an earlier [n]
    ("Rating: [9]", 9),  # backup pattern
    ("Rating: [[ 7 ]]", -1),
    ("Rating: [[11]]", 11),  # not clamped
    ("[Supervisor's Name] ... [[2]]", 2),
    ("Rating: [[8.]]", 8.0),
]


@pytest.mark.parametrize("judgment,expected", MTBENCH_CASES)
def test_mtbench_rating(judgment, expected):
    assert parse_rating(judgment) == expected
    assert parse_rating(judgment) == fastchat_rating(judgment)
    assert type(parse_rating(judgment)) is type(fastchat_rating(judgment))


ALIGNBENCH_CASES = [
    ("分析……\n{'事实正确性': 9, '满足用户需求': 6, '清晰度': 8, '完备性': 7, '综合得分': 7}",
     {"事实正确性": 9, "满足用户需求": 6, "清晰度": 8, "完备性": 7, "综合得分": 7}, 7),
    # JSON double quotes do not parse.
    ('{"事实正确性": 9, "综合得分": 7}', {}, -1),
    # The last dict wins.
    ("先给出 {'综合得分': 3}，修正后 {'事实正确性': 8, '综合得分': 8}", {"事实正确性": 8, "综合得分": 8}, 8),
    # The last {...} has no overall: fall back to the first "'综合得分': n" anywhere (decimals allowed).
    ("综合 '综合得分': 6.5 见下 {'事实正确性': 5}", {"事实正确性": 5}, 6.5),
    # A dict across lines is not one {...} group (no DOTALL): the fallback finds the overall.
    ("{\n'事实正确性': 9,\n'综合得分': 7\n}", {}, 7.0),
    # No space after the colon: not a pair, and the fallback needs the space too.
    ("{'事实正确性':9, '综合得分':7}", {}, -1),
    ("没有打分。", {}, -1),
]


@pytest.mark.parametrize("judgment,rating,score", ALIGNBENCH_CASES)
def test_alignbench_rating(judgment, rating, score):
    assert parse_judgment(judgment) == (rating, score)
    assert type(parse_judgment(judgment)[1]) is type(score)


def test_bad_answer_file_names_file_line_and_field(tmp_path):
    from judgejax.data.errors import DataError
    from judgejax.general.mtbench_data import load_answers

    path = tmp_path / "answers.jsonl"
    path.write_text('{"question_id": 81, "choices": [{"index": 0, "turns": ["a", "b"]}]}\n'
                    '{"question_id": 82, "choices": [{"index": 0, "turns": ["only one"]}]}\n')
    with pytest.raises(DataError, match=rf"{path} line 2, field 'choices\[0\]\.turns'.*2 strings"):
        load_answers(path)
    path.write_text('{"question_id": "81"}\n')
    with pytest.raises(DataError, match=rf"{path} line 1, field 'question_id'"):
        load_answers(path)

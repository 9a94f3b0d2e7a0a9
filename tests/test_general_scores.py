"""Aggregation of judgments into scores, on small examples computed by hand, and for MT-Bench also
against FastChat show_result.py's pandas operations on the same records."""

from __future__ import annotations

import pandas as pd
import pytest

from judgejax.general.scores import alignbench_scores, mtbench_scores


def mt(qid, category, turn, score):
    return {"question_id": qid, "category": category, "turn": turn, "score": score, "model": "m"}


MT_JUDGMENTS = [
    mt(81, "writing", 1, 8), mt(81, "writing", 2, 6),
    mt(82, "writing", 1, -1), mt(82, "writing", 2, 4),  # one rating error
    mt(111, "math", 1, 10), mt(111, "math", 2, 7.5),
]


def test_mtbench_hand_computed():
    s = mtbench_scores(MT_JUDGMENTS)
    # Valid scores 8, 6, 4, 10, 7.5 (the -1 dropped).
    assert s["overall"] == pytest.approx((8 + 6 + 4 + 10 + 7.5) / 5) == pytest.approx(7.1)
    assert s["turn_1"] == pytest.approx((8 + 10) / 2)
    assert s["turn_2"] == pytest.approx((6 + 4 + 7.5) / 3)
    assert s["categories"] == {"math": pytest.approx(8.75), "writing": pytest.approx(6.0)}
    assert (s["judgments"], s["errors"], s["out_of_range"]) == (6, 1, 0)
    # The pooled mean differs from the mean of the two turn means once a turn loses a judgment.
    assert s["overall"] != pytest.approx((s["turn_1"] + s["turn_2"]) / 2)


def test_mtbench_matches_fastchat_show_result():
    df = pd.DataFrame(MT_JUDGMENTS)[["model", "score", "turn"]]
    df = df[df["score"] != -1]
    s = mtbench_scores(MT_JUDGMENTS)
    assert s["turn_1"] == pytest.approx(df[df["turn"] == 1].groupby(["model", "turn"]).mean()["score"].iloc[0])
    assert s["turn_2"] == pytest.approx(df[df["turn"] == 2].groupby(["model", "turn"]).mean()["score"].iloc[0])
    assert s["overall"] == pytest.approx(df[["model", "score"]].groupby(["model"]).mean()["score"].iloc[0])


def ab(category, score, rating=None):
    return {"category": category, "score": score, "rating": rating or {}}


AB_JUDGMENTS = [
    ab("数学计算", 6, {"事实正确性": 6, "综合得分": 6}), ab("数学计算", 8, {"事实正确性": 9, "综合得分": 8}),
    ab("逻辑推理", 5, {"事实正确性": 4, "综合得分": 5}), ab("逻辑推理", -1, {"事实正确性": 1}),  # a failed parse
    ab("基本任务", 7), ab("中文理解", 6), ab("综合问答", 8),
    ab("文本写作", 9), ab("文本写作", 7), ab("角色扮演", 4), ab("专业能力", 6),
]


def test_alignbench_hand_computed():
    s = alignbench_scores(AB_JUDGMENTS)
    assert s["categories"]["数学计算"] == 7 and s["categories"]["逻辑推理"] == 5 and s["categories"]["文本写作"] == 8
    assert s["groups"]["中文推理"] == pytest.approx((7 + 5) / 2)  # 6
    assert s["groups"]["中文语言"] == pytest.approx((7 + 6 + 8 + 8 + 4 + 6) / 6)  # 6.5
    assert s["overall"] == pytest.approx((6 + 6.5) / 2)  # not the mean over questions
    assert (s["judgments"], s["errors"]) == (11, 1)
    # Per-dimension means skip the failed judgment (dimension_calculate.py).
    assert s["dimensions"] == {"事实正确性": pytest.approx((6 + 9 + 4) / 3), "综合得分": pytest.approx((6 + 8 + 5) / 3)}


def test_alignbench_official_rule_averages_failures_in():
    s = alignbench_scores(AB_JUDGMENTS, official_errors=True)
    assert s["categories"]["逻辑推理"] == pytest.approx((5 - 1) / 2)
    assert s["groups"]["中文推理"] == pytest.approx((7 + 2) / 2)
    assert s["overall"] == pytest.approx((4.5 + 6.5) / 2)


def test_alignbench_missing_category_leaves_overall_open():
    s = alignbench_scores([j for j in AB_JUDGMENTS if j["category"] != "角色扮演"])
    assert s["groups"]["中文推理"] == pytest.approx(6) and s["groups"]["中文语言"] is None and s["overall"] is None

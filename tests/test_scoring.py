"""RewardBench v1 scoring against published results, hand computations and the real data."""
import math

import pandas as pd
import pytest

from judgejax.eval.scoring import (EXAMPLE_COUNTS, SUBSET_MAPPING, both_order_diagnostics,
                                   example_result, missing_subsets, overall, scalar_result,
                                   score_report, section_scores, subset_scores)
from judgejax.judge.templates import get_template, pair_messages, swap_for
from shared_data import SHARED as SHARED_ROOT

DATA = SHARED_ROOT / "data" / "rewardbench" / "rewardbench_filtered.parquet"

# Published RewardBench results of generative judges: per-subset accuracies (%) and section
# scores (Chat, Chat Hard, Safety, Reasoning, Avg.), from "Eliminating Position Bias of Language
# Models: A Mechanistic Approach" (Wang et al., arXiv 2407.01100), Appendix D: Table 5 (sections)
# and Tables 8-15 (subsets), columns "Vanilla" and "PINE". Both are rounded to one decimal, so a
# recomputed section can differ from the published one by up to 0.05 + 0.05. Left out: the
# Llama-3-8B-Instruct PINE column, whose Table 7 subsets do not add up to its Table 5 row
# (Chat Hard 41.9 vs 41.5, Safety 67.1 vs 66.5 under any weighting).
PUBLISHED_SUBSET_ORDER = (
    "alpacaeval-easy alpacaeval-hard alpacaeval-length donotanswer hep-cpp hep-go hep-java hep-js "
    "hep-python hep-rust llmbar-adver-GPTInst llmbar-adver-GPTOut llmbar-adver-manual "
    "llmbar-adver-neighbor llmbar-natural math-prm mt-bench-easy mt-bench-hard mt-bench-med "
    "refusals-dangerous refusals-offensive xstest-should-refuse xstest-should-respond").split()
PUBLISHED = {
    "Llama-3-8B-Instruct vanilla": (
        [91.0, 91.6, 71.6, 45.2, 78.7, 77.1, 73.5, 74.4, 79.0, 74.4, 23.4, 63.8, 40.2, 20.9, 66.0,
         54.5, 92.9, 68.9, 83.8, 71.5, 76.0, 70.5, 72.0], (85.3, 41.6, 67.0, 65.3, 64.8)),
    "Llama-3-70B-Instruct vanilla": (
        [100.0, 100.0, 91.1, 47.1, 92.7, 89.9, 92.1, 93.3, 90.9, 89.0, 55.4, 73.4, 53.3, 32.8,
         83.0, 66.4, 100.0, 78.4, 97.5, 63.5, 66.5, 68.8, 96.8], (97.4, 58.3, 69.6, 78.9, 76.0)),
    "Llama-3-70B-Instruct PINE": (
        [100.0, 100.0, 89.5, 48.2, 92.1, 97.0, 97.0, 95.1, 95.4, 91.5, 57.6, 76.6, 47.8, 28.7,
         84.0, 80.5, 100.0, 75.7, 97.5, 62.5, 66.5, 63.3, 96.4], (96.9, 57.4, 67.7, 87.6, 77.4)),
    "Qwen1.5-1.8B-Chat vanilla": (
        [47.5, 56.3, 50.0, 54.0, 49.4, 54.3, 52.7, 48.2, 49.4, 54.6, 44.0, 55.3, 44.6, 56.7, 49.0,
         45.5, 39.3, 54.1, 46.2, 48.5, 49.5, 53.2, 52.2], (49.7, 50.9, 52.0, 48.4, 50.3)),
    "Qwen1.5-1.8B-Chat PINE": (
        [17.0, 13.7, 45.8, 52.6, 51.5, 48.8, 49.4, 47.6, 52.1, 50.3, 76.6, 40.4, 64.1, 66.8, 51.5,
         70.2, 57.1, 35.1, 45.0, 88.0, 54.5, 53.9, 68.8], (30.0, 59.9, 61.4, 60.1, 52.9)),
    "Qwen1.5-4B-Chat vanilla": (
        [59.5, 62.1, 60.5, 54.4, 50.0, 50.3, 49.1, 49.7, 50.0, 50.6, 36.4, 54.3, 51.1, 52.2, 48.0,
         58.2, 44.6, 58.1, 56.2, 43.0, 47.0, 53.6, 51.0], (58.9, 48.7, 50.9, 54.1, 53.1)),
    "Qwen1.5-4B-Chat PINE": (
        [77.5, 80.5, 70.0, 18.4, 50.0, 51.8, 51.2, 49.4, 53.0, 50.6, 38.6, 51.1, 39.1, 42.5, 53.5,
         70.9, 75.0, 48.6, 50.0, 31.0, 71.0, 64.3, 71.0], (73.0, 45.2, 53.7, 61.0, 58.2)),
    "Qwen1.5-7B-Chat vanilla": (
        [74.0, 90.0, 65.8, 19.9, 60.4, 61.9, 56.1, 59.5, 63.4, 62.8, 40.2, 53.2, 35.9, 21.6, 71.0,
         57.9, 87.5, 62.2, 77.5, 49.0, 86.0, 74.0, 75.6], (77.5, 44.2, 62.6, 59.3, 60.9)),
    "Qwen1.5-7B-Chat PINE": (
        [91.0, 96.8, 74.7, 11.0, 76.8, 69.2, 74.1, 68.6, 66.8, 65.9, 23.4, 45.7, 35.9, 19.8, 70.0,
         55.8, 85.7, 55.4, 72.5, 40.5, 86.0, 63.6, 86.6], (85.8, 38.7, 58.6, 63.0, 61.5)),
    "Qwen1.5-32B-Chat vanilla": (
        [97.0, 98.9, 81.1, 44.5, 87.8, 80.5, 88.7, 84.5, 86.3, 82.0, 43.5, 68.1, 32.6, 25.0, 83.0,
         48.7, 96.4, 81.1, 92.5, 80.0, 99.0, 90.6, 84.4], (92.7, 51.2, 80.5, 66.8, 72.8)),
    "Qwen1.5-32B-Chat PINE": (
        [97.0, 98.9, 82.1, 41.2, 91.5, 93.9, 96.3, 95.7, 93.6, 88.1, 34.8, 57.4, 37.0, 28.4, 85.0,
         60.3, 92.9, 75.7, 95.0, 80.0, 99.0, 89.3, 85.6], (93.0, 49.8, 79.7, 76.7, 74.8)),
    "Qwen1.5-72B-Chat vanilla": (
        [98.0, 97.4, 85.3, 39.0, 88.1, 85.4, 87.2, 90.9, 87.2, 88.1, 44.6, 57.4, 41.3, 28.0, 84.0,
         48.5, 96.4, 70.3, 95.0, 75.5, 94.0, 87.7, 86.8], (94.0, 51.4, 77.8, 68.2, 72.8)),
    "Qwen1.5-72B-Chat PINE": (
        [98.0, 97.9, 84.2, 38.2, 89.6, 92.1, 90.9, 90.9, 89.6, 87.2, 33.7, 61.7, 39.1, 20.9, 81.0,
         47.9, 100.0, 62.2, 92.5, 73.0, 95.0, 91.2, 85.0], (93.9, 46.1, 78.2, 69.0, 71.8)),
    "Qwen2.5-72B-Instruct vanilla": (
        [99.0, 97.9, 91.6, 48.5, 95.7, 97.0, 98.8, 94.5, 98.8, 94.5, 66.3, 76.6, 65.2, 41.8, 92.0,
         74.5, 100.0, 94.6, 97.5, 78.0, 95.0, 92.2, 95.2], (96.6, 68.0, 83.3, 85.5, 83.4)),
    "Qwen2.5-72B-Instruct PINE": (
        [99.0, 98.9, 89.5, 52.9, 95.7, 98.8, 97.6, 98.2, 98.8, 97.6, 68.5, 72.3, 63.0, 44.0, 87.0,
         84.8, 100.0, 91.9, 100.0, 82.0, 92.0, 89.6, 93.6], (96.6, 67.1, 83.0, 91.3, 84.5)),
    "Qwen1.5-110B-Chat vanilla": (
        [95.0, 98.9, 93.7, 51.5, 87.8, 83.8, 86.6, 90.5, 83.8, 85.7, 70.1, 72.3, 60.9, 44.8, 86.5,
         69.6, 98.2, 83.8, 97.5, 76.0, 97.0, 91.6, 95.6], (96.2, 66.7, 83.7, 78.0, 81.1)),
    "Qwen1.5-110B-Chat PINE": (
        [97.0, 98.9, 88.4, 55.9, 92.1, 94.8, 94.8, 92.4, 93.9, 90.9, 65.2, 61.7, 65.2, 41.4, 90.0,
         79.2, 100.0, 83.8, 97.5, 84.0, 97.0, 91.9, 92.4], (95.5, 64.8, 85.0, 86.2, 82.9)),
}
SECTIONS = ("Chat", "Chat Hard", "Safety", "Reasoning")

# Row counts per subset, as docs/protocol.md lists them (2,985 rows in all).
PROTOCOL_ROWS = {
    "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95, "mt-bench-easy": 28,
    "mt-bench-med": 40, "mt-bench-hard": 37, "llmbar-natural": 100, "llmbar-adver-neighbor": 134,
    "llmbar-adver-GPTInst": 92, "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46,
    "refusals-dangerous": 100, "refusals-offensive": 100, "xstest-should-refuse": 154,
    "xstest-should-respond": 250, "donotanswer": 136, "math-prm": 447, "hep-cpp": 164,
    "hep-go": 164, "hep-java": 164, "hep-js": 164, "hep-python": 164, "hep-rust": 164,
}


def published_subsets(name: str) -> dict[str, float]:
    return dict(zip(PUBLISHED_SUBSET_ORDER, PUBLISHED[name][0]))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_reproduces_published_section_and_overall_scores(name):
    sections = section_scores(published_subsets(name))
    got = [sections[s] for s in SECTIONS] + [overall(sections)]
    assert got == pytest.approx(PUBLISHED[name][1], abs=0.1)


def weighted_sections(subsets: dict[str, float], weights: dict[str, int]) -> list[float]:
    """Sections by hand: sum(score * weight) / sum(weight) per section."""
    out = []
    for section in SECTIONS:
        names = SUBSET_MAPPING[section]
        out.append(sum(subsets[n] * weights[n] for n in names) / sum(weights[n] for n in names))
    return out


def test_row_counts_as_weights_do_not_reproduce_published_scores():
    # The official weights differ from the row counts for math-prm (984 vs 447) and the two XSTest
    # subsets (250/154 vs 154/250). With the row counts, published scores are missed by far.
    subsets = published_subsets("Llama-3-70B-Instruct vanilla")
    published = PUBLISHED["Llama-3-70B-Instruct vanilla"][1]
    by_rows = weighted_sections(subsets, PROTOCOL_ROWS)
    assert abs(by_rows[2] - published[2]) > 3 and abs(by_rows[3] - published[3]) > 3
    official = weighted_sections(subsets, EXAMPLE_COUNTS)
    assert official == pytest.approx([section_scores(subsets)[s] for s in SECTIONS], abs=1e-12)


def full_scores(value: float) -> dict[str, float]:
    return {subset: value for subset in EXAMPLE_COUNTS}


def test_math_prm_weight_984_changes_reasoning():
    scores = full_scores(0.5)
    scores["math-prm"] = 1.0
    reasoning = section_scores(scores)["Reasoning"]
    # Official: half math-prm, half the mean of the six code subsets.
    assert reasoning == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)
    # Weighting math-prm by its 447 rows would give a different answer.
    assert abs(reasoning - (447 * 1.0 + 6 * 164 * 0.5) / (447 + 6 * 164)) > 0.09


def test_hand_computed_sections_and_overall():
    scores = full_scores(0.0)
    scores.update({"alpacaeval-easy": 1.0, "mt-bench-hard": 1.0, "xstest-should-refuse": 1.0,
                   "hep-go": 1.0})
    sections = section_scores(scores)
    expected = {"Chat": 100 / 358, "Chat Hard": 37 / 456, "Safety": 250 / 740,
                "Reasoning": 164 / (984 + 6 * 164)}
    assert sections == pytest.approx(expected, abs=1e-12)
    assert overall(sections) == pytest.approx(sum(expected.values()) / 4, abs=1e-12)


def test_missing_subsets_are_an_error_unless_partial():
    scores = full_scores(1.0)
    del scores["hep-rust"]
    with pytest.raises(ValueError, match="hep-rust"):
        section_scores(scores)
    assert missing_subsets(scores) == ["hep-rust"]
    partial = section_scores(scores, partial=True)
    assert partial["Reasoning"] == 1.0 and len(partial) == 4
    only_chat = {"alpacaeval-easy": 0.75, "mt-bench-med": 0.25}
    sections = section_scores(only_chat, partial=True)
    assert sections == pytest.approx({"Chat": (75 + 10) / 140})
    with pytest.raises(ValueError, match="Chat Hard"):
        overall(sections)
    assert overall(sections, partial=True) == pytest.approx(sections["Chat"])
    with pytest.raises(ValueError, match="unknown"):
        section_scores({"alpacaeval-easy": 1.0, "shp": 1.0}, partial=True)


def test_score_report_states_what_a_partial_run_lacks():
    records = [{"subset": "math-prm", "result": 1.0}, {"subset": "math-prm", "result": 0.0},
               {"subset": "hep-go", "result": 0.5}]
    report = score_report(records, partial=True)
    assert report["partial"] is True
    assert report["subsets"] == {"math-prm": 0.5, "hep-go": 0.5}
    assert report["missing_sections"] == ["Chat", "Chat Hard", "Safety"]
    assert len(report["missing_subsets"]) == 21 and report["num_examples"] == 3
    assert report["overall"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="partial=True"):
        score_report(records)


def test_example_results():
    assert example_result("A", "A") == 1.0 and example_result("B", "B") == 1.0
    assert example_result("A", "B") == 0.0 and example_result("B", "A") == 0.0
    assert example_result("error", "A") == 0.5 == example_result("error", "B")
    with pytest.raises(ValueError):
        example_result("tie", "A")
    with pytest.raises(ValueError):
        example_result("A", "C")
    assert scalar_result(0.3, 0.2) == 1.0
    assert scalar_result(0.2, 0.2) == 0.0  # a tie is not a win
    assert scalar_result(-1.0, 0.2) == 0.0
    with pytest.raises(ValueError):
        scalar_result(math.nan, 0.0)
    with pytest.raises(ValueError, match="record 1"):
        subset_scores([{"subset": "hep-go", "result": 1.0}, {"subset": "hep-go", "result": 2}])
    with pytest.raises(ValueError, match="unknown"):
        subset_scores([{"subset": "hep-kotlin", "result": 1.0}])


def judged(verdicts: dict[tuple[str, int, bool], str]) -> list[dict]:
    return [{"subset": s, "id": i, "swapped": sw, "verdict": v}
            for (s, i, sw), v in verdicts.items()]


def test_both_order_diagnostics():
    # Example 1: right in both orders. Example 2: always says A (right once, inconsistent).
    # Example 3: wrong in both orders (consistent). Example 4: an error in one order.
    # Example 5: errors in both orders (not consistent: no choice was made).
    records = judged({
        ("hep-go", 1, False): "A", ("hep-go", 1, True): "B",
        ("hep-go", 2, False): "A", ("hep-go", 2, True): "A",
        ("math-prm", 3, False): "B", ("math-prm", 3, True): "A",
        ("math-prm", 4, False): "error", ("math-prm", 4, True): "B",
        ("donotanswer", 4, False): "error", ("donotanswer", 4, True): "error",
    })
    d = both_order_diagnostics(records)
    assert d["num_examples"] == 5
    assert d["mean_accuracy"] == pytest.approx((1 + 1 + 1 + 0 + 0 + 0 + 0.5 + 1 + 0.5 + 0.5) / 10)
    assert d["both_correct"] == pytest.approx(1 / 5)
    assert d["consistency"] == pytest.approx(2 / 5)
    assert d["p_verdict_a"] == pytest.approx(4 / 7)
    assert d["parse_error_rate"] == pytest.approx(3 / 10)
    with pytest.raises(ValueError, match="one order only"):
        both_order_diagnostics(records[:-1])
    with pytest.raises(ValueError, match="twice"):
        both_order_diagnostics(records + records[:1])


@pytest.fixture(scope="module")
def rewardbench() -> pd.DataFrame:
    return pd.read_parquet(DATA)


def test_real_data_matches_protocol_counts_and_sections(rewardbench):
    assert len(rewardbench) == 2985
    assert rewardbench["subset"].value_counts().to_dict() == PROTOCOL_ROWS
    section_of = {s: sec for sec, subsets in SUBSET_MAPPING.items() for s in subsets}
    assert (rewardbench["subset"].map(section_of) == rewardbench["domain"]).all()
    assert rewardbench.groupby(["subset", "id"]).size().max() == 1


@pytest.mark.parametrize("verdict, expected", [("A", 100.0), ("B", 0.0), ("error", 50.0)])
def test_constant_judge_on_stored_order(rewardbench, verdict, expected):
    # Stored order has the chosen answer at A.
    records = [{"subset": s, "result": example_result(verdict, "A")} for s in rewardbench["subset"]]
    report = score_report(records)
    assert report["partial"] is False and report["num_examples"] == 2985
    assert 100 * report["overall"] == pytest.approx(expected)
    assert all(100 * v == pytest.approx(expected) for v in report["sections"].values())


def test_real_rows_through_a_template_and_parser(rewardbench):
    template = get_template("pair-v2")
    rows = rewardbench.groupby("subset").head(2)  # two rows of every subset
    oracle, always_a = [], []
    for row in rows.itertuples():
        swapped = swap_for(1234, f"{row.subset}:{row.id}")
        messages, chosen = pair_messages(template, row.question, row.response_A, row.response_B,
                                         swapped)
        shown_a = messages[1]["content"].split("[The Start of Assistant A's Answer]\n")[1]
        assert shown_a.startswith(row.response_B if swapped else row.response_A)
        # A judge that names the chosen answer, after an analysis mentioning the other tag.
        other = "A" if chosen == "B" else "B"
        output = template.judgement(f"At first sight [[{other}]] looks fine, but no.", chosen)
        oracle.append({"subset": row.subset, "result": example_result(template.parse(output),
                                                                      chosen)})
        always_a.append({"subset": row.subset,
                         "result": example_result(template.parse("[[A]]"), chosen)})
    assert overall(section_scores(subset_scores(oracle))) == 1.0
    # Always "A" is right exactly on the rows whose chosen answer stayed at A.
    kept = {s: 0.0 for s in PROTOCOL_ROWS}
    for row in rows.itertuples():
        kept[row.subset] += (not swap_for(1234, f"{row.subset}:{row.id}")) / 2
    assert subset_scores(always_a) == pytest.approx(kept)

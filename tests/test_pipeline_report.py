"""The pipeline report's judge tables (judgejax/pipeline/report.py): the judgements cut off and
the repeated-text loops per judge, one line for a judge that wrote no verdict, and the paired
difference in verdict rate."""

from judgejax.pipeline.report import difference_table, run_table


def _judge(parse_errors: float, cut_off: int, loops: int) -> dict:
    interval = {"value": parse_errors, "ci": [parse_errors, parse_errors]}
    return {"score": 0.5, "num_judgements": 46, "cut_off": cut_off, "loops": loops,
            "intervals": {"overall": {"parse_error_rate": interval, "mean_accuracy": {"value": 0.5, "ci": [0.4, 0.6]}}}}


def test_counts_and_the_no_verdict_line():
    judges = {"base": {"rb": _judge(1.0, 46, 31)}, "sft": {"rb": _judge(0.02, 1, 0)}}
    lines = run_table("rb", judges)
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in lines[2:5]}
    assert header[-2:] == ["cut off", "loops"]
    assert rows["base"][-2:] == ["46", "31"] and rows["sft"][-2:] == ["1", "0"]
    assert rows["dpo"][1] == "not run"
    silent = [line for line in lines if "no verdict" in line]
    assert silent == ["**The base judge wrote no verdict in any of its 46 judgements** (46 cut off at max_new_tokens, "
                      "31 repeated-text loops): its scores are the no-verdict rule's 50.0, not a measurement."]


def test_verdict_rate_difference_is_the_parse_error_difference_negated():
    overall = {"num_examples": 23, "mean_accuracy": {"value": 0.03, "ci": [0.0, 0.06]}, "both_correct": None,
               "consistency": None, "p_verdict_a": None, "parse_error_rate": {"value": -0.95, "ci": [-1.0, -0.87]}}
    row = difference_table({"sft-base": {"rb": {"overall": overall}}})[2]
    assert row.split("|")[-2].strip() == "95.0 [87.0, 100.0]"

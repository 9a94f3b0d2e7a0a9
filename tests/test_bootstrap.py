"""Bootstrap intervals: a hand-computed example, a simulation with known variance, paired
differences, and the intervals in an eval summary."""
import numpy as np
import pytest

from judgejax.eval.bootstrap import (example_table, intervals, mean_interval, paired_difference, run_differences,
                                     run_intervals)
from judgejax.eval.scoring import both_order_diagnostics
from judgejax.eval.summary import summarize


def records(verdicts: list[tuple[str, str]], subset: str = "s", seeded_first: bool = True) -> list[dict]:
    """Two records per example: verdict with the chosen answer shown as A, then shown as B."""
    out = []
    for i, (shown_a, shown_b) in enumerate(verdicts):
        for swapped, verdict in ((False, shown_a), (True, shown_b)):
            chosen = "B" if swapped else "A"
            result = 0.5 if verdict == "error" else float(verdict == chosen)
            out.append({"subset": subset, "id": i, "swapped": swapped, "verdict": verdict, "result": result,
                        "seeded": swapped != seeded_first})
    return out


def test_point_values_by_hand_and_agree_with_diagnostics():
    # ex0 right in both orders; ex1 always "A" (right, then wrong); ex2 wrong in both; ex3 no verdict, then right.
    rs = records([("A", "B"), ("A", "A"), ("B", "A"), ("error", "B")])
    got = intervals(example_table(rs), resamples=200)
    assert got["accuracy"]["value"] == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    assert got["mean_accuracy"]["value"] == pytest.approx((2 + 1 + 0 + 1.5) / 8)
    assert got["both_correct"]["value"] == pytest.approx(1 / 4)
    assert got["consistency"]["value"] == pytest.approx(2 / 4)  # ex0 and ex2 pick the same answer twice
    assert got["p_verdict_a"]["value"] == pytest.approx(4 / 7)
    assert got["parse_error_rate"]["value"] == pytest.approx(1 / 8)
    diag = both_order_diagnostics(rs)
    for metric in ("mean_accuracy", "both_correct", "consistency", "p_verdict_a", "parse_error_rate"):
        assert got[metric]["value"] == pytest.approx(diag[metric])
        lo, hi = got[metric]["ci"]
        assert lo <= got[metric]["value"] <= hi


def test_a_degenerate_sample_has_a_zero_width_interval():
    got = intervals(example_table(records([("A", "B")] * 5)), resamples=100)
    assert got["both_correct"]["ci"] == [1.0, 1.0]
    assert got["p_verdict_a"]["ci"] == [0.5, 0.5]


def test_interval_width_matches_the_binomial_standard_error():
    rng = np.random.default_rng(1)
    p, n = 0.7, 400
    right = rng.random(n) < p
    rs = records([("A", "B") if r else ("B", "A") for r in right])
    got = intervals(example_table(rs), resamples=4000, seed=3)
    p_hat = right.mean()
    lo, hi = got["both_correct"]["ci"]
    half = 1.96 * np.sqrt(p_hat * (1 - p_hat) / n)
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.1)
    assert lo < p_hat < hi
    # and over repeated samples the interval covers the true p about 95% of the time
    covered = 0
    for trial in range(200):
        right = rng.random(100) < p
        ci = intervals(example_table(records([("A", "B") if r else ("B", "A") for r in right])),
                       resamples=500, seed=trial)["both_correct"]["ci"]
        covered += ci[0] <= p <= ci[1]
    assert 0.88 <= covered / 200 <= 0.99


def test_seeded_reruns_print_the_same_numbers():
    rng = np.random.default_rng(4)
    rs = records([tuple(rng.choice(["A", "B", "error"], size=2)) for _ in range(100)])
    assert intervals(example_table(rs), seed=7) == intervals(example_table(rs), seed=7)
    assert intervals(example_table(rs), seed=7) != intervals(example_table(rs), seed=8)


def test_clusters_of_copies_are_as_wide_as_one_copy_each():
    """Four identical pairs per prompt carry the information of one: resampling prompts gives the
    interval of the deduplicated sample, resampling pairs a falsely narrow one."""
    rng = np.random.default_rng(2)
    right = rng.random(60) < 0.6
    single = example_table(records([("A", "B") if r else ("B", "A") for r in right]))
    copies = example_table(records([("A", "B") if r else ("B", "A") for r in np.repeat(right, 4)]))
    prompt = lambda key: key[1] // 4  # noqa: E731
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    one = intervals(single, resamples=4000)["both_correct"]
    clustered = intervals(copies, cluster_of=prompt, resamples=4000)["both_correct"]
    naive = intervals(copies, resamples=4000)["both_correct"]
    assert clustered["value"] == pytest.approx(one["value"])
    assert width(clustered["ci"]) == pytest.approx(width(one["ci"]), rel=0.1)
    assert width(naive["ci"]) < 0.7 * width(clustered["ci"])


def test_paired_difference_is_tighter_than_unpaired_and_exact_when_judges_agree():
    rng = np.random.default_rng(0)
    n = 300
    base = rng.random(n) < 0.6
    better = base | (rng.random(n) < 0.25)  # judge b is right wherever a is, and on some more
    a = example_table(records([("A", "B") if r else ("B", "A") for r in base]))
    b = example_table(records([("A", "B") if r else ("B", "A") for r in better]))
    diff = paired_difference(a, b, resamples=2000)
    assert diff["both_correct"]["value"] == pytest.approx(better.mean() - base.mean())
    lo, hi = diff["both_correct"]["ci"]
    assert 0 < lo < diff["both_correct"]["value"] < hi
    # paired: the spread of a difference of discordant examples, sqrt(d (1 - d) / n), not of two accuracies
    d = (better != base).mean()
    assert hi - lo == pytest.approx(2 * 1.96 * np.sqrt(d * (1 - d) / n), rel=0.15)
    same = paired_difference(a, a, resamples=200)
    assert same["both_correct"] == {"value": 0.0, "ci": [0.0, 0.0]}


def test_differences_only_over_shared_examples_and_per_group():
    a = records([("A", "B")] * 4, subset="x") + records([("B", "A")] * 4, subset="y")
    b = records([("A", "B")] * 4, subset="x") + records([("A", "B")] * 2, subset="y")  # y's ids 2, 3 not judged
    out = run_differences(a, b, lambda subset: subset.upper())
    assert out["overall"]["num_examples"] == 6
    assert out["groups"]["Y"]["num_examples"] == 2
    assert set(out["groups"]) == {"X", "Y"}
    assert out["groups"]["X"]["both_correct"]["value"] == 0.0
    assert out["groups"]["Y"]["both_correct"]["value"] == 1.0


def test_summary_carries_intervals_per_section():
    rs = [{**r, "subset": "alpacaeval-easy"} for r in records([("A", "B"), ("A", "A")])]
    rs += [{**r, "subset": "hep-go", "id": r["id"] + 10} for r in records([("B", "A"), ("A", "B")])]
    summary = summarize(rs, benchmark="rewardbench", mode="verdict-prob", both_orders=True)
    ci = summary["intervals"]
    assert set(ci["groups"]) == {"Chat", "Reasoning"}
    assert ci["overall"]["mean_accuracy"]["value"] == pytest.approx(summary["diagnostics"]["overall"]["mean_accuracy"])
    assert run_intervals(rs, lambda s: s)["overall"] == ci["overall"]


def test_eval_report_shows_the_intervals(tmp_path):
    from judgejax.eval.report import write_report

    rs = [{**r, "subset": "alpacaeval-easy", "prompt_tokens": 5} for r in records([("A", "B"), ("A", "A"), ("B", "A")])]
    summary = summarize(rs, benchmark="rewardbench", mode="verdict-prob", both_orders=True)
    spec = {"model": "m", "data": "d", "data_sha256": "0" * 64, "mode": "verdict-prob", "template": "pair-v2",
            "seed": 0, "both_orders": True, "max_new_tokens": None, "subsets": None, "limit_per_subset": None}
    run = {"options": {"benchmark": "rewardbench"}, "spec": spec}
    text = write_report(tmp_path, summary, run).read_text()
    assert "## 95% bootstrap intervals" in text
    ci = summary["intervals"]["overall"]["mean_accuracy"]
    assert "| all | " in text and f"{100 * ci['value']:.1f} [{100 * ci['ci'][0]:.1f}, {100 * ci['ci'][1]:.1f}]" in text


def test_mean_interval_of_clusters_by_hand_and_by_simulation():
    """The point is the mean of every value; the interval resamples whole clusters: two clusters
    {0, 0} and {1, 1} can only draw means 0, 0.5 and 1 (so a 95% interval of [0, 1]), and 400
    independent fair coins give about the normal interval 0.5 +- 1.96 x 0.025."""
    two = mean_interval({"a": [0.0, 0.0], "b": [1.0, 1.0]})
    assert two["value"] == 0.5 and two["ci"] == [0.0, 1.0]
    assert mean_interval({"a": [0.2, 0.4], "b": [0.6]})["value"] == pytest.approx(0.4)
    coins = np.random.default_rng(1).integers(0, 2, 400).astype(float)
    wide = mean_interval({i: [c] for i, c in enumerate(coins)})
    lo, hi = wide["ci"]
    assert hi - lo == pytest.approx(2 * 1.96 * 0.025, rel=0.15)
    assert lo < wide["value"] < hi
    assert mean_interval({i: [c] for i, c in enumerate(coins)}) == wide  # seeded


def test_a_one_order_run_has_intervals_of_what_one_order_measures():
    # the seeded order alone (RewardBench's protocol): right, wrong, no verdict, right
    both = records([("A", "B"), ("B", "A"), ("error", "error"), ("A", "A")])
    seeded = [r for r in both if r["seeded"]]
    got = intervals(example_table(seeded), resamples=500)
    assert got["accuracy"]["value"] == got["mean_accuracy"]["value"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert got["parse_error_rate"]["value"] == pytest.approx(1 / 4)
    assert got["p_verdict_a"]["value"] == pytest.approx(2 / 3)
    assert got["both_correct"] == got["consistency"] == {"value": None, "ci": None}
    lo, hi = got["accuracy"]["ci"]
    assert lo < got["accuracy"]["value"] < hi
    # the seeded-order accuracy is the same metric whether or not the other order was judged
    assert intervals(example_table(both), resamples=500)["accuracy"] == got["accuracy"]
    summary = summarize([{**r, "subset": "alpacaeval-easy"} for r in seeded], benchmark="rewardbench",
                        mode="verdict-prob", both_orders=False)
    assert summary["intervals"]["overall"]["parse_error_rate"]["value"] == pytest.approx(1 / 4)
    assert "diagnostics" not in summary
    # a paired difference of two one-order runs: the same draws for both
    flipped = [{**r, "verdict": "A" if r["verdict"] == "B" else "B", "result": 1.0 - r["result"]} for r in seeded[:2]]
    diff = paired_difference(example_table(seeded[:2]), example_table(flipped), resamples=200)
    assert diff["accuracy"]["value"] == pytest.approx(0.0) and diff["both_correct"]["value"] is None
    assert diff["p_verdict_a"]["value"] == pytest.approx(0.0)  # one A, one B either way


def test_examples_judged_in_mixed_orders_are_refused():
    both = records([("A", "B"), ("B", "A")])
    with pytest.raises(ValueError, match=r"judged in one order only: .*1 in all, the others in both"):
        example_table(both[:3])

"""`judgejax eval rewardbench2|judgebench|rmbench` end to end with stub judges of known preference
(the runner, shards, merge, summary and report are the real ones; only the model is replaced): the
scores computed by hand on the fixtures, bad rows counted by reason, sharded runs equal to one."""
from __future__ import annotations

import json
import pathlib
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from judgejax.eval import run as eval_run
from judgejax.eval.answers import RankingItem, RatingItem
from judgejax.eval.generative import GenerativeJudge
from judgejax.eval.judgebench import GPT4O_SPLIT
from judgejax.eval.options import TEMPLATE_GETTERS, EvalOptions
from shared_data import SHARED

BENCH = SHARED / "data" / "benchmarks"


class StubJudge(GenerativeJudge):
    """Writes `write(item)` as its output; the verdict or rating is read back as from a model."""

    def __init__(self, templates, write):
        self.templates, self.write = templates, write

    def encode(self, item):
        return item

    def length(self, encoded):
        return 1

    def prompt_ids(self, encoded):
        return [0]

    def judge(self, items, encoded):
        texts = [self.write(item) for item in items]
        return [{"output": t, "output_ids": [], "n_tokens": 1, "finish_reason": "stop"} | self.read(item, t)
                for item, t in zip(items, texts)]


def evaluate(monkeypatch, tmp_path, write, benchmark, data, mode, **options):
    monkeypatch.setattr(eval_run, "build_judge", lambda opts, mesh: StubJudge(
        {kind: TEMPLATE_GETTERS[kind](name) for kind, name in opts.template_names().items()}, write))
    out = tmp_path / options.pop("name", f"{benchmark}-{mode}")
    summary = eval_run.evaluate(EvalOptions(benchmark=benchmark, model="stub", data=str(data), out=str(out), mode=mode,
                                            **options))
    return summary, out


def shown(item):
    """The answers shown as A and B."""
    e = item.example
    return (e.rejected, e.chosen) if item.swapped else (e.chosen, e.rejected)


def always_a(item):
    return "[[A]]"


def longer(item):
    a, b = shown(item)
    return "[[A]]" if len(a) > len(b) else "[[B]]"


def values(summary):
    return summary["scores"]["values"]


def test_judgebench_always_a_on_the_shipped_gpt4o_split(monkeypatch, tmp_path):
    summary, out = evaluate(monkeypatch, tmp_path, always_a, "judgebench", GPT4O_SPLIT, "generative")
    # Always A: +1 and -1 on every pair (sum 0): no pair correct; right in the file's order on the 193 A>B pairs.
    assert summary["num_examples"] == 350 and summary["num_judgements"] == 700
    assert values(summary)["overall/accuracy"] == 0.0 and values(summary)["overall/both_correct"] == 0.0
    assert values(summary)["overall/first_order"] == pytest.approx(193 / 350)
    assert summary["scores"]["overall"] == 0.0 and summary["bad_input"]["skipped"] == 0
    ci = summary["intervals"]["overall/first_order"]
    assert ci["ci"][0] < 193 / 350 < ci["ci"][1]
    assert json.loads((out / "summary.json").read_text()) == summary
    assert "both orders correct (J1)" in (out / "report.md").read_text()


@pytest.fixture
def shared_bench():
    if not BENCH.is_dir():
        pytest.skip("shared/data/benchmarks is not on this machine")
    return BENCH


def test_judgebench_longer_and_oracle_with_ties_on_the_fixture(monkeypatch, tmp_path, shared_bench):
    data = shared_bench / "judgebench_claude_fixture.jsonl"
    summary, _ = evaluate(monkeypatch, tmp_path, longer, "judgebench", data, "generative")
    # Lengths (characters, A vs B) and labels of the fixture: knowledge 765/791 A>B, 685/624 B>A (both wrong);
    # reasoning 744/605 A>B, 942/1060 B>A (both right); math 1029/1132 A>B (wrong), 805/821 B>A (right);
    # coding 747/744 A>B (right), 1401/1311 B>A (wrong). A consistent judge: correct = right in both orders.
    v = values(summary)
    assert (v["knowledge/accuracy"], v["reasoning/accuracy"], v["math/accuracy"], v["coding/accuracy"]) == (0, 1, .5, .5)
    assert v["overall/accuracy"] == 0.5 == v["overall/both_correct"]

    def right_then_silent(item):  # right in the file's order, no verdict in the other: +1 + 0 > 0
        return f"[[{item.chosen_position}]]" if item.seeded else "no verdict"

    summary, _ = evaluate(monkeypatch, tmp_path, right_then_silent, "judgebench", data, "generative", name="silent")
    assert values(summary)["overall/accuracy"] == 1.0 and values(summary)["overall/both_correct"] == 0.0
    assert summary["parse_errors"] == 8 and summary["parse_error_rate"] == 0.5


def test_rmbench_pairwise_and_style_biased_ratings_on_the_fixture(monkeypatch, tmp_path, shared_bench):
    summary, _ = evaluate(monkeypatch, tmp_path, always_a, "rmbench", shared_bench, "generative")
    # Always A picks the chosen answer in one of each pair's two orders: every cell 0.5.
    assert summary["num_examples"] == 8 and summary["num_judgements"] == 8 * 9 * 2
    assert all(v == 0.5 for v in values(summary).values())
    assert summary["scores"]["missing_domains"] == ["math"]

    def by_style(item):  # chosen style i rated 2i+2, rejected style j 2j+1: chosen wins iff i >= j
        meta = dict(item.meta)
        return f"Looks fine.\n{2 * meta['style'] + 1 + (meta['side'] == 'chosen')}"

    summary, out = evaluate(monkeypatch, tmp_path, by_style, "rmbench", shared_bench, "ratings")
    v = values(summary)
    for domain in ("chat", "code", "safety", "overall"):
        assert (v[f"{domain}/hard"], v[f"{domain}/normal"], v[f"{domain}/easy"]) == (0.0, 1.0, 1.0)
        assert v[f"{domain}/average"] == pytest.approx(2 / 3)
    assert summary["scores"]["matrices"]["chat"] == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    assert "Partial" in (out / "report.md").read_text()


def rb2_rows():
    """A RewardBench 2 file in its published schema: answers say their quality, which the stub judges read."""
    def row(identifier, subset, chosen, rejected):
        return {"id": identifier, "prompt": f"Question {identifier} of {subset}?",
                "chosen": [f"Answer, quality {q}." for q in chosen],
                "rejected": [f"Other answer {i}, quality {q}." for i, q in enumerate(rejected)],
                "num_correct": len(chosen), "num_rejected": len(rejected), "total_completions": len(chosen) + len(rejected),
                "models": ["m"] * (len(chosen) + len(rejected)), "subset": subset}
    return [
        row("0", "Factuality", [9], [3, 5, 2]),
        row("1", "Factuality", [7], [7, 1, 1]),
        row("2", "Math", ["?"], ["?", "?", "?"]),
        row("3", "Precise IF", [4], [8, 2, 2]),
        row("4", "Safety", [6], [6, 6, 1]),
        row("5", "Focus", [10], [2, 3, 4]),
        row("ref:1", "Ties", [9], [4, 5]),
        row("tied:1", "Ties", [8, 7], [3, 6]),
        row("ref:2", "Ties", [5], [6]),
        row("tied:2", "Ties", [9, 9], [2]),
    ]


def quality(text):
    match = re.search(r"quality (\d+)", text)
    return int(match.group(1)) if match else None


def write_rb2(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def rate(item):
    q = quality(item.answer)
    return f"My rating:\n{q}" if q is not None else "I cannot rate this."


TIES = 0.3 * 1.0 + 0.3 * 0.5 + 0.2 * 0.5 + 0.2 * 0.0 + 0.01 * -0.5  # the constructed Ties case (test_bench_scoring)


def test_rewardbench2_ratings_mode(monkeypatch, tmp_path):
    data = write_rb2(tmp_path / "rb2.parquet", rb2_rows())
    summary, out = evaluate(monkeypatch, tmp_path, rate, "rewardbench2", data, "ratings")
    v = values(summary)
    # Factuality: 1 and 1/2 (a 2-way tie); Math: no rating parses, 0.25; Precise IF 0; Safety 1/3; Focus 1.
    expected = {"Factuality": 0.75, "Math": 0.25, "Precise IF": 0.0, "Safety": 1 / 3, "Focus": 1.0, "Ties": TIES}
    assert {k: v[k] for k in expected} == pytest.approx(expected)
    assert summary["scores"]["overall"] == pytest.approx(sum(expected.values()) / 6)
    assert summary["scores"]["missing_subsets"] == [] and summary["num_examples"] == 10
    run = json.loads((out / "run.json").read_text())
    assert run["spec"]["rating_template"] == "rating-v2" and run["spec"]["ties_template"] == "rating-v2-ties"


def test_rewardbench2_rankings_mode_official_credit_for_no_verdict(monkeypatch, tmp_path):
    data = write_rb2(tmp_path / "rb2.parquet", rb2_rows())

    def oracle(item):  # names the correct slot, except on Safety where it states no verdict; rates Ties
        if isinstance(item, RatingItem):
            assert item.ties
            return rate(item)
        assert isinstance(item, RankingItem) and item.answers[item.slot].startswith("Answer,")  # the chosen one
        return "no verdict" if item.subset == "Safety" else f"Best: [[{'ABCD'[item.slot]}]]"

    summary, out = evaluate(monkeypatch, tmp_path, oracle, "rewardbench2", data, "rankings")
    expected = {"Factuality": 1.0, "Math": 1.0, "Precise IF": 1.0, "Safety": 0.25, "Focus": 1.0, "Ties": TIES}
    assert {k: values(summary)[k] for k in expected} == pytest.approx(expected)
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    ranked = [r for r in records if r["subset"] != "Ties"]
    assert len(ranked) == 6 and all(r["chosen_position"] in "ABCD" for r in ranked)


def test_rewardbench2_pairwise_mode_and_bad_rows(monkeypatch, tmp_path):
    bad = [{"id": "9", "prompt": "p", "chosen": [], "rejected": ["a", "b", "c"], "subset": "Math"},
           {"id": "10", "chosen": ["x"], "rejected": ["a", "b", "c"], "subset": "Math"},
           {"id": "11", "prompt": "p", "chosen": ["x"], "rejected": ["a", "b", "c"], "subset": "Chat"},
           {"id": "x", "prompt": "p", "chosen": ["x"], "rejected": ["a"], "subset": "Ties"}]
    data = tmp_path / "rb2.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rb2_rows() + bad))

    def higher(item):  # the answer of higher quality; A when equal (or unreadable)
        if isinstance(item, RatingItem):
            return rate(item)
        a, b = (quality(x) or 0 for x in shown(item))
        return "[[B]]" if b > a else "[[A]]"

    summary, out = evaluate(monkeypatch, tmp_path, higher, "rewardbench2", data, "pairwise")
    # Factuality: row 0 wins all three pairs in both orders, row 1 ties one pair (A both times): 1/2.
    expected = {"Factuality": 0.5, "Math": 0.0, "Precise IF": 0.0, "Safety": 0.0, "Focus": 1.0, "Ties": TIES}
    assert {k: values(summary)[k] for k in expected} == pytest.approx(expected)
    assert summary["bad_input"]["by_reason"] == {"bad_ties_id": 1, "missing_field": 1, "no_chosen": 1,
                                                 "unknown_subset": 1}
    assert "rb2.jsonl line 12, field 'prompt'" in summary["bad_input"]["examples"]["missing_field"][0]
    assert "no_chosen: 1" in (out / "report.md").read_text()


def test_sharded_run_equals_one_run(monkeypatch, tmp_path):
    data = write_rb2(tmp_path / "rb2.parquet", rb2_rows())
    whole, _ = evaluate(monkeypatch, tmp_path, rate, "rewardbench2", data, "ratings", name="one")
    first, _ = evaluate(monkeypatch, tmp_path, rate, "rewardbench2", data, "ratings", name="two", shard=(0, 2))
    assert first is None  # the other shard's judgements are missing
    second, out = evaluate(monkeypatch, tmp_path, rate, "rewardbench2", data, "ratings", name="two", shard=(1, 2))
    assert second == whole
    assert sorted(p.name for p in out.glob("shard-*")) == ["shard-0-of-2.jsonl", "shard-1-of-2.jsonl"]


def test_unusable_files_and_rows(tmp_path):
    from judgejax.eval import judgebench, rmbench

    path = tmp_path / "jb.jsonl"
    good = {"pair_id": "p", "original_id": 1, "source": "livebench-math", "question": "q", "response_model": "m",
            "response_A": "a", "response_B": "b", "label": "A>B"}
    path.write_text(json.dumps(good | {"label": "A=B"}) + "\n" + json.dumps(good | {"pair_id": "q"}) + "\n")
    rows, bad = judgebench.load(path)
    assert len(rows) == 1 and bad.as_dict()["by_reason"] == {"bad_label": 1}
    path.write_text(json.dumps(good | {"label": "tie"}) + "\n")
    with pytest.raises(ValueError, match=r"jb.jsonl: no usable rows .* line 1, field 'label'"):
        judgebench.load(path)
    rm = tmp_path / "code_filtered.json"
    rm.write_text(json.dumps([{"id": 1, "prompt": "p", "chosen": ["a", "b"], "rejected": ["c", "d", "e"]},
                              {"id": 2, "prompt": "p", "chosen": ["a", "b", "c"], "rejected": ["d", "e", "f"]}]))
    rows, bad = rmbench.load(rm)
    assert [r.subset for r in rows] == ["code"] and bad.as_dict()["by_reason"] == {"not_three_styles": 1}


@pytest.mark.parametrize("options, message", [
    (dict(benchmark="judgebench", mode="ratings"), "choose one of"),
    (dict(benchmark="judgebench", mode="generative", both_orders=True), "both orders"),
    (dict(benchmark="rmbench", mode="generative", rating_template="rating-v2"), "--rating-template is not used"),
    (dict(benchmark="rewardbench2", mode="ratings", template="rank4-v2"), "--template is not used"),
    (dict(benchmark="rewardbench2", mode="rankings", template="pair-v2"), "unknown ranking template"),
    (dict(benchmark="rewardbench", mode="generative", ties_template="rating-v2-ties"), "not used by rewardbench"),
])
def test_options_that_would_be_ignored_are_errors(options, message):
    with pytest.raises((ValueError, KeyError), match=message):
        EvalOptions(model="m", data="d", out="o", **options).check()


def test_synthesis_drops_rows_overlapping_the_benchmarks(tmp_path):
    from judgejax.cli import main
    from judgejax.eval import judgebench

    rows, _ = judgebench.load(GPT4O_SPLIT)
    data = write_rb2(tmp_path / "rb2.parquet", rb2_rows())
    question = "Explain in detail, step by step and with examples, why the sky looks blue on a clear summer afternoon."
    base = {"source": "s", "source_row": "0", "domain": "general", "chosen": "Good answer.", "rejected": "Bad answer."}
    train = [base | {"id": "a", "question": rows[5].prompt.upper()},  # a JudgeBench question, case changed
             base | {"id": "b", "question": question},
             base | {"id": "c", "question": rb2_rows()[0]["prompt"]}]  # a RewardBench 2 prompt
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    main(["synth", "--stage", "sft", "--input", str(tmp_path / "rows.jsonl"), "--out", str(tmp_path / "synth"),
          "--model", "labels", "--decontaminate", f"judgebench={GPT4O_SPLIT}", f"rewardbench2={data}"])
    dropped = [json.loads(line) for line in (tmp_path / "synth" / "decontamination.jsonl").read_text().splitlines()]
    assert sorted(d["id"] for d in dropped) == ["a", "c"]
    assert json.loads((tmp_path / "synth" / "summary.json").read_text())["dropped_decontamination"] == 2


def test_the_judge_quality_pipeline_scores_every_judge_on_judgebench(monkeypatch, tmp_path):
    from judgejax.pipeline import stages
    from judgejax.pipeline.config import load_pipeline_config

    configs = pathlib.Path(__file__).parents[1] / "configs"
    config, _ = load_pipeline_config(configs / "judge-quality-cpu.yaml", [f"output_dir={tmp_path}"])
    pipeline = stages.Pipeline(config, "judgejax pipeline ...")
    assert pipeline.benchmarks()["judgebench"] == dict(benchmark="judgebench", data=str(GPT4O_SPLIT), modes=(),
                                                       subsets=None, limit_per_subset=5, both_orders=False)
    asked = []
    monkeypatch.setattr(stages, "evaluate", lambda opts, mesh: asked.append(opts) or {})
    runs = pipeline.evaluate("sft", "a-model")
    assert {"judgebench-generative", "judgebench-verdict-prob"} <= set(runs)
    for opts in (o for o in asked if o.benchmark == "judgebench"):
        opts.check()
        assert opts.limit_per_subset == 5 and opts.out == str(tmp_path / "eval" / "sft" / f"judgebench-{opts.mode}")
    gpu, _ = load_pipeline_config(configs / "judge-quality-gpu.yaml")
    assert gpu.eval.benchmarks["judgebench"].limit_per_subset == 0  # all 350 pairs


def test_pipeline_comparison_reads_the_new_benchmarks_runs(monkeypatch, tmp_path, shared_bench):
    from judgejax.pipeline.comparison import compare

    data = shared_bench / "judgebench_claude_fixture.jsonl"
    summaries = {}
    for judge, write in (("base", always_a), ("sft", longer)):
        jb, _ = evaluate(monkeypatch, tmp_path, write, "judgebench", data, "generative",
                         name=f"eval/{judge}/judgebench-generative")
        rm, _ = evaluate(monkeypatch, tmp_path, write, "rmbench", shared_bench, "generative",
                         name=f"eval/{judge}/rmbench-generative")
        summaries[f"eval_{judge}"] = {"judgebench-generative": jb, "rmbench-generative": rm}
    got = compare(tmp_path, summaries, seed=0)
    sft = got["judges"]["sft"]
    assert sft["judgebench-generative"]["score"] == 0.5 and sft["rmbench-generative"]["score"] == values(
        summaries["eval_sft"]["rmbench-generative"])["overall/average"]
    # JudgeBench: the pairwise diagnostics over its pairs (the file's order = the seeded one); RM-Bench: none.
    assert sft["judgebench-generative"]["intervals"]["overall"]["both_correct"]["value"] == 0.5
    assert sft["rmbench-generative"]["intervals"] is None
    assert set(got["differences"]["sft-base"]) == {"judgebench-generative"}


def test_a_cut_run_resumes_from_its_shard_file(monkeypatch, tmp_path):
    data = write_rb2(tmp_path / "rb2.parquet", rb2_rows())
    whole, out = evaluate(monkeypatch, tmp_path, rate, "rewardbench2", data, "ratings", name="cut")
    shard = out / "shard-0-of-1.jsonl"
    lines = shard.read_text().splitlines()
    shard.write_text("\n".join(lines[:-5]) + "\n" + lines[-5][:20])  # five judgements lost, one line cut mid-write
    judged = []
    again, _ = evaluate(monkeypatch, tmp_path, lambda item: judged.append(item.row) or rate(item), "rewardbench2", data,
                        "ratings", name="cut")
    assert len(judged) == 5 and again == whole

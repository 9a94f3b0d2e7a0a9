"""`judgejax eval rewardbench --mode generative` on a tiny random judge and the real RewardBench
file: outputs, summary recomputed from the records, greedy text equal to transformers' `generate`,
both verdict rules, and resume."""
from __future__ import annotations

import json
from collections import Counter

import pyarrow.parquet as pq
import pytest
import torch
import transformers

from judgejax.cli import main
from judgejax.eval.batching import ids_hash
from judgejax.eval.examples import Item, PairExample
from judgejax.eval.generative import GenerativeJudge
from judgejax.eval.scoring import both_order_diagnostics, score_report
from judgejax.eval.summary import summarize
from judgejax.judge.templates import get_template, pair_messages
from judgejax.sample.sampler import Completion
from judgejax.tokenizer import chat_token_ids, stop_token_ids
from test_eval_tiny_models import DATA, SUBSETS, hf_model, tiny_judges  # noqa: F401  (fixture)

MAX_NEW = 6


def eval_args(model, out, *extra):
    return ["eval", "rewardbench", "--model", str(model), "--data", str(DATA), "--mode", "generative",
            "--subsets", *SUBSETS, "--limit-per-subset", "1", "--both-orders", "--max-new-tokens", str(MAX_NEW),
            "--out", str(out), *extra]


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def run(tiny_judges, tmp_path_factory):
    out = tmp_path_factory.mktemp("generative")
    main(eval_args(tiny_judges["policy"], out))
    return out


def test_files_records_and_summary(run):
    for name in ("run.json", "shard-0-of-1.jsonl", "results.jsonl", "summary.json", "report.md", "scores.png"):
        assert (run / name).is_file(), name
    records = read_jsonl(run / "results.jsonl")
    assert len(records) == 2 * len(SUBSETS)
    assert sorted({r["subset"] for r in records}) == sorted(SUBSETS)
    for r in records:
        assert set(r) >= {"subset", "id", "row", "swapped", "seeded", "prompt_hash", "output", "output_ids", "n_tokens",
                          "finish_reason", "verdict_official", "verdict_last", "verdict", "result"}
        assert r["n_tokens"] == len(r["output_ids"]) <= MAX_NEW
        assert r["chosen_position"] == ("B" if r["swapped"] else "A")
    summary = json.loads((run / "summary.json").read_text())
    seeded = [r for r in records if r["seeded"]]
    assert len(seeded) == len(SUBSETS)
    assert summary == summarize(records, benchmark="rewardbench", mode="generative", both_orders=True)
    assert summary["scores"] == json.loads(json.dumps(score_report(seeded, partial=True)))
    diagnostics = summary["diagnostics"]["overall"]
    recomputed = both_order_diagnostics(records)
    for field in ("mean_accuracy", "both_correct", "consistency", "parse_error_rate", "num_examples"):
        assert diagnostics[field] == recomputed[field]
    assert diagnostics["num_examples"] == len(SUBSETS)
    assert diagnostics["parse_error_rate"] == sum(r["verdict"] == "error" for r in records) / len(records)
    assert summary["finish_reasons"] == dict(Counter(r["finish_reason"] for r in records))
    report = (run / "report.md").read_text()
    options = json.loads((run / "run.json").read_text())["options"]
    assert options["benchmark"] == "rewardbench" and options["both_orders"] is True and "shard" not in options
    assert json.dumps(options, indent=1) in report and "## Both-order diagnostics" in report


def test_greedy_output_equals_transformers_generate(run, tiny_judges):
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_judges["policy"])
    hf = hf_model(tiny_judges["policy"])
    stops = stop_token_ids(tokenizer)
    records = read_jsonl(run / "results.jsonl")
    table = pq.read_table(DATA).to_pylist()
    for r in (records[0], records[-1]):
        row = table[r["row"]]
        assert (row["subset"], row["id"]) == (r["subset"], r["id"])
        messages, position = pair_messages(get_template("pair-v2"), row["question"], row["response_A"],
                                           row["response_B"], r["swapped"])
        assert position == r["chosen_position"]
        ids = chat_token_ids(tokenizer, messages, add_generation_prompt=True)
        assert ids_hash(ids) == r["prompt_hash"] and len(ids) == r["n_prompt_tokens"]
        with torch.no_grad():
            out = hf.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                              max_new_tokens=MAX_NEW, do_sample=False, eos_token_id=stops, pad_token_id=0)
        assert r["output_ids"] == out[0, len(ids):].tolist()
        assert r["output"] == tokenizer.decode(r["output_ids"], skip_special_tokens=True)


def test_resume_skips_finished_judgements_and_repairs_a_cut_line(run, tiny_judges):
    shard = run / "shard-0-of-1.jsonl"
    before = read_jsonl(run / "results.jsonl")
    lines = shard.read_text().splitlines(keepends=True)
    kept = "".join(lines[:-3])
    shard.write_text(kept + lines[-3][:40])  # three judgements lost, one of them cut mid-line
    for name in ("results.jsonl", "summary.json"):
        (run / name).unlink()
    main(eval_args(tiny_judges["policy"], run))
    assert shard.read_text().startswith(kept)
    assert len(shard.read_text().splitlines()) == len(before)
    assert read_jsonl(run / "results.jsonl") == before  # a re-judged row would be a duplicate: the merge would fail


def test_both_verdict_rules_and_results(tiny_judges, monkeypatch):
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_judges["policy"])
    texts = ["Both fine. [[A]] is tempting, but [[B]]", "Clearly [[B]].", "no verdict here"]

    def fake_generate(model, prompts, **kwargs):
        return [Completion(tokenizer(t, add_special_tokens=False)["input_ids"], "stop", None) for t in texts]

    monkeypatch.setattr("judgejax.eval.generative.generate", fake_generate)
    judge = GenerativeJudge(None, tokenizer, get_template("pair-v2"), stop_ids=[2], max_new_tokens=8, batch_multiple=1)
    example = PairExample(0, "alpacaeval-easy", 1, "q", "good", "bad")
    items = [Item(example, swapped=True, seeded=True)] * 3  # the chosen answer is B
    fields = judge.judge(items, [[1, 2]] * 3)
    assert [(f["verdict_official"], f["verdict_last"], f["result"], f["result_last"]) for f in fields] == [
        ("A", "B", 0.0, 1.0), ("B", "B", 1.0, 1.0), ("error", "error", 0.5, 0.5)]
    json_judge = GenerativeJudge(None, tokenizer, get_template("en-code-json"), stop_ids=[2], max_new_tokens=8,
                                 batch_multiple=1)
    texts[:] = ['{"analysis": "x", "winner": "B"}']
    [f] = json_judge.judge(items[:1], [[1, 2]])
    assert (f["verdict_official"], f["verdict"], f["result"]) == (None, "B", 1.0)

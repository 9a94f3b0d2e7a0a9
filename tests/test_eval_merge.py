"""Shard files, the merge checks, resume repair, and the summary and report of a merged run
(synthetic records; no model)."""
from __future__ import annotations

import dataclasses
import json
import math

import pytest

from judgejax.eval.examples import load_rewardbench, make_items
from judgejax.eval.report import write_report
from judgejax.eval.run import EvalSpec, finish, prepare_run
from judgejax.eval.scoring import both_order_diagnostics, example_result, score_report
from judgejax.data.jsonl import append_jsonl, read_appended
from judgejax.eval.shards import MergeError, merge_shards, shard_path
from judgejax.eval.summary import summarize
from test_eval_tiny_models import DATA


def record(item, verdict, verdict_last=None):
    """A generative record as the runner writes it, with chosen answer at the item's position."""
    e = item.example
    last = verdict_last or verdict
    return {"subset": e.subset, "id": e.id, "row": e.row, "swapped": item.swapped, "seeded": item.seeded,
            "chosen_position": item.chosen_position, "prompt_hash": "0", "n_prompt_tokens": 1, "output": "",
            "output_ids": [], "n_tokens": 3, "finish_reason": "stop", "verdict_official": verdict,
            "verdict_last": last, "verdict": verdict, "result": example_result(verdict, item.chosen_position),
            "result_last": example_result(last, item.chosen_position)}


def spec(num_shards: int, both_orders: bool) -> EvalSpec:
    return EvalSpec(benchmark="rewardbench", mode="generative", model="m", reference=None, data=str(DATA),
                    data_sha256="0" * 64, columns=None, template="pair-v2", seed=0, both_orders=both_orders,
                    max_new_tokens=16, subsets=None, limit_per_subset=None, num_shards=num_shards,
                    param_dtype="float32", compute_dtype="float32")


@pytest.fixture(scope="module")
def items():
    return make_items(load_rewardbench(DATA), seed=0, both_orders=True)


def verdict_for(item) -> str:
    """A judge that is always right on alpacaeval, always says A elsewhere, and fails to parse on hep-go."""
    if item.example.subset == "hep-go":
        return "error"
    return item.chosen_position if item.example.subset.startswith("alpacaeval") else "A"


def write_shards(out, items, count):
    for i in range(count):
        append_jsonl(shard_path(out, i, count), [record(it, verdict_for(it)) for it in items[i::count]])


def test_full_run_merges_from_shards_and_scores_from_records(tmp_path, items):
    prepare_run(tmp_path, spec(3, True), items, "judgejax eval rewardbench ...")
    write_shards(tmp_path, items, 3)
    summary = finish(tmp_path)
    merged = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(merged) == 2 * 2985 and summary["full_benchmark"] and summary["num_examples"] == 2985
    seeded = [r for r in merged if r["seeded"]]
    assert summary["scores"] == score_report(seeded)
    assert summary["scores_both_orders"] == score_report(merged)
    assert summary["diagnostics"]["overall"] == both_order_diagnostics(merged)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    # By hand: alpacaeval subsets 1.0; other subsets 1.0 where A is chosen; hep-go 0.5.
    d = summary["diagnostics"]["overall"]
    assert d["parse_error_rate"] == pytest.approx(164 / 2985)
    # 290 alpacaeval examples right twice, 2,531 others right once, 164 hep-go at 0.5 twice.
    assert d["mean_accuracy"] == pytest.approx((290 * 2 + 2531 + 164) / 5970)
    assert summary["scores_both_orders"]["subsets"]["hep-go"] == 0.5
    assert summary["scores_both_orders"]["subsets"]["mt-bench-easy"] == 0.5
    assert summary["scores_both_orders"]["sections"]["Chat"] == pytest.approx((290 * 1.0 + 68 * 0.5) / 358)
    assert summary["diagnostics"]["groups"]["Chat Hard"]["p_verdict_a"] == 1.0
    assert summary["diagnostics"]["groups"]["Chat Hard"]["consistency"] == 0.0
    report = (tmp_path / "report.md").read_text()
    assert "judgejax eval rewardbench ..." in report and "RISE-Judge-Qwen2.5-7B (published)" in report
    assert "Partial run" not in report
    assert (tmp_path / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("damage", ["missing", "duplicated", "unexpected"])
def test_merge_fails_loudly(tmp_path, items, damage):
    expected = [it.key for it in items]
    records = [record(it, "A") for it in items]
    if damage == "missing":
        records.pop(1234)
    elif damage == "duplicated":
        records.append(records[77])
    else:
        records.append(dict(records[0], row=99999))
    append_jsonl(shard_path(tmp_path, 0, 2), records[:3000])
    append_jsonl(shard_path(tmp_path, 1, 2), records[3000:])
    with pytest.raises(MergeError, match=f"{damage}: 1 \\(row") as error:
        merge_shards(tmp_path, 2, expected)
    assert len(getattr(error.value, damage)) == 1


def test_merge_refuses_shards_of_another_count(tmp_path, items):
    expected = [it.key for it in items[:4]]
    append_jsonl(shard_path(tmp_path, 0, 1), [record(it, "A") for it in items[:4]])
    assert len(merge_shards(tmp_path, 1, expected)) == 4
    shard_path(tmp_path, 1, 3).write_text("")
    with pytest.raises(ValueError, match="another shard count"):
        merge_shards(tmp_path, 1, expected)


def test_read_appended_repairs_a_cut_last_line_only(tmp_path, items):
    path = shard_path(tmp_path, 0, 1)
    append_jsonl(path, [record(it, "A") for it in items[:3]])
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"subset": "alpacaeval-easy", "id"')
    with pytest.raises(ValueError, match="line 4: unterminated"):
        read_appended(path, repair=False)
    assert len(read_appended(path)) == 3
    assert path.read_bytes() == whole
    lines = whole.split(b"\n")
    path.write_bytes(b"\n".join([lines[0], b"{oops", *lines[1:]]))
    with pytest.raises(ValueError, match="line 2: not valid JSON"):
        read_appended(path)


def test_resume_with_other_settings_is_refused(tmp_path, items):
    prepare_run(tmp_path, spec(1, True), items[:10], "cmd")
    prepare_run(tmp_path, spec(1, True), items[:10], "another command line, same run")
    with pytest.raises(ValueError, match="both_orders: True there, False now"):
        prepare_run(tmp_path, spec(1, False), items[:10], "cmd")
    with pytest.raises(ValueError, match="different examples"):
        prepare_run(tmp_path, spec(1, True), items[:12], "cmd")


def test_partial_run_summary_and_report_say_so(tmp_path, items):
    picked = [it for subset in ("alpacaeval-easy", "hep-go")
              for it in [it for it in items if it.example.subset == subset and it.seeded][:3]]
    records = [record(it, "A", verdict_last="B") for it in picked]
    summary = summarize(records, benchmark="rewardbench", mode="generative", both_orders=False)
    assert not summary["full_benchmark"] and summary["scores"]["partial"]
    assert set(summary["scores"]["sections"]) == {"Chat", "Reasoning"}
    assert summary["scores_last_tag"]["overall"] == pytest.approx(1 - summary["scores"]["overall"])
    assert summary["verdict_counts"] == {"A": 6}
    assert "diagnostics" not in summary
    run = {"spec": dataclasses.asdict(spec(1, False)), "options": {"model": "m"}}
    text = write_report(tmp_path, summary, run).read_text()
    assert "**Partial run**: 6 of 2,985 examples" in text and "missing subsets" in text


def test_no_parsed_verdict_gives_null_position_bias(items):
    pair = [it for it in items if it.example.row == 0]
    summary = summarize([record(it, "error") for it in pair], benchmark="rewardbench", mode="generative",
                        both_orders=True)
    assert summary["diagnostics"]["overall"]["p_verdict_a"] is None
    assert math.isnan(both_order_diagnostics([record(it, "error") for it in pair])["p_verdict_a"])

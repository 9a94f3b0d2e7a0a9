"""A teacher replayed from the OpenAI Batch API file format: the requests written, stages 1-3 from
a fake output file, every kind of bad reply counted and reported, missing replies asked again
(and only those), and a rerun after a crash losing nothing."""

from __future__ import annotations

import json
import pathlib

import pytest

from judgejax.cli import main
from judgejax.data.jsonl import read_appended
from judgejax.judge.batch_api import custom_id, replay, write_requests
from judgejax.judge.records import Instruction, read_records
from judgejax.judge.synth import SynthConfig
from judgejax.judge.templates import TEMPLATES
from judgejax.sources.pair import Pair, write_pairs

CONFIG = SynthConfig(samples=2, temperature=0.7, max_new_tokens=64, seed=3)


def rows(n: int) -> list[Pair]:
    return [Pair(f"t/{i}", "t", f"row {i}", ("general", "math", "code")[i % 3],
                 ({"role": "user", "content": f"Question number {i}?"},), f"RIGHT{i}", f"WRONG{i}") for i in range(n)]


def write_rows(tmp_path: pathlib.Path, n: int) -> pathlib.Path:
    path = tmp_path / "rows.jsonl"
    write_pairs(rows(n), path)
    return path


def instructions(out: pathlib.Path) -> dict[str, tuple[Instruction, int]]:
    """custom_id -> (instruction, sample) for every request of instructions.jsonl."""
    return {custom_id(i, s): (i, s) for i in read_records(Instruction, out / "instructions.jsonl")
            for s in range(CONFIG.samples)}


def right(inst: Instruction, sample: int) -> bool:
    """Row i % 3 == 0: always right; 1: right only in the drawn order's sample 1; 2: always wrong."""
    kind = int(inst.id.split("/")[1]) % 3
    return kind == 0 or (kind == 1 and inst.order == "drawn" and sample == 1)


def text(cid: str, inst: Instruction, correct: bool) -> str:
    letter = inst.chosen_position if correct else "AB"[inst.chosen_position == "A"]
    return TEMPLATES[inst.template].judgement(f"Analysis of {cid}.", letter)


def line(cid: str, content: str | None = None, *, status: int = 200, error: dict | None = None, choices=None) -> str:
    choices = [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}] \
        if choices is None else choices
    body = {"model": "big-teacher", "choices": choices, "usage": {"completion_tokens": 7}}
    response = None if error else {"status_code": status, "request_id": "r", "body": body}
    return json.dumps({"id": f"batch_req_{cid}", "custom_id": cid, "response": response, "error": error}) + "\n"


def answers(requests: dict[str, tuple[dict, int]]) -> dict[str, str]:
    return {cid: line(cid, text(cid, inst, right(inst, s))) for cid, (inst, s) in requests.items()}


def synth(*args) -> int:
    return main(["synth", *map(str, args)])


def test_requests_then_replies_through_the_cli(tmp_path, capsys):
    out, requests_file, output_file = tmp_path / "synth", tmp_path / "requests.jsonl", tmp_path / "output.jsonl"
    common = ["--input", write_rows(tmp_path, 6), "--out", out, "--samples", 2, "--temperature", 0.7,
              "--max-new-tokens", 64, "--seed", 3]
    assert synth(*common, "--batch-requests", requests_file, "--url-model", "big-teacher") == 0
    assert '"requests": 24' in capsys.readouterr().out
    expected = instructions(out)
    requests = read_appended(requests_file)
    assert len(requests) == len(expected) == 24 and {r["custom_id"] for r in requests} == set(expected)
    for r in requests:
        inst, sample = expected[r["custom_id"]]
        assert r["custom_id"].startswith(f"{inst.id}|{inst.order}|{sample}|")
        assert r["method"] == "POST" and r["url"] == "/v1/chat/completions"
        assert r["body"] == {"model": "big-teacher", "messages": inst.messages, "temperature": 0.7,
                             "max_tokens": 64, "seed": 3 + sample}

    output_file.write_text("".join(answers(expected).values()))
    assert synth(*common, "--batch-output", output_file) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["judgements"] == 24 and summary["parse_errors"] == 0
    assert summary["sft_rows_consistent_correct"] == summary["dpo_candidates_right_in_one_order"] == 2
    assert summary["dpo_candidates_wrong_in_both_orders"] == 2
    assert summary["teacher"] == f"big-teacher@{output_file}"
    insts = {i.key: i for i, _ in expected.values()}
    sft = read_appended(out / "sft.jsonl")
    assert sorted((r["id"], r["order"]) for r in sft) == [(f"t/{i}", o) for i in (0, 3) for o in ("drawn", "flipped")]
    for r in sft:  # the first correct sample: sample 0
        inst = insts[r["id"], r["order"]]
        reply = text(custom_id(inst, 0), inst, True)
        assert r["messages"] == inst.messages + [{"role": "assistant", "content": reply}]
    candidates = read_appended(out / "dpo_candidates.jsonl")
    assert sorted(c["id"] for c in candidates) == ["t/1", "t/1", "t/2", "t/2", "t/4", "t/4", "t/5", "t/5"]
    judgements = read_appended(out / "judgements.jsonl")
    assert len(judgements) == 24
    for j in judgements:
        inst = insts[j["id"], j["order"]]
        assert j["correct"] == right(inst, j["sample"])
        assert j["text"] == text(custom_id(inst, j["sample"]), inst, j["correct"])
    assert all(j["num_tokens"] == 7 and j["finish_reason"] == "stop" for j in judgements)
    batch = json.loads((out / "batch_summary.json").read_text())
    assert batch["usable_replies"] == 24 and not any(batch["counts"].values()) and batch["awaiting_rows"] == []

    assert synth(*common, "--batch-requests", requests_file, "--url-model", "big-teacher") == 0
    assert read_appended(requests_file) == []  # everything judged: nothing asked again


def test_bad_replies_are_counted_reported_and_asked_again(tmp_path):
    out, output_file = tmp_path / "synth", tmp_path / "output.jsonl"
    data = rows(8)
    write_requests(data, out, tmp_path / "requests.jsonl", "big-teacher", CONFIG)
    expected = instructions(out)
    ids = {(*i.key, s): cid for cid, (i, s) in expected.items()}
    lines = answers(expected)
    duplicate = ids["t/0", "drawn", 0]
    lines[ids["t/1", "flipped", 1]] = line(ids["t/1", "flipped", 1], error={"code": "server_error", "message": "x"})
    lines[ids["t/2", "drawn", 0]] = line(ids["t/2", "drawn", 0], "busy", status=500)
    lines[ids["t/2", "flipped", 0]] = line(ids["t/2", "flipped", 0], choices=[])
    no_verdict = ids["t/3", "drawn", 0]
    lines[no_verdict] = line(no_verdict, "I cannot tell which one is better.")
    for sample in (0, 1):
        del lines[ids["t/4", "drawn", sample]]
    stale = ids["t/5", "drawn", 0].rsplit("|", 1)[0] + "|0000000000"  # written for other messages
    bad = ["{not json\n", json.dumps({"response": {"status_code": 200}}) + "\n",
           line("t/99|drawn|0|0000000000", "[[A]]"), line(stale, "[[A]]"),
           line(duplicate, text(duplicate, expected[duplicate][0], False))]
    output_file.write_text("".join(list(lines.values()) + bad))
    first_bad = len(lines) + 1

    batch, summary = replay(data, out, output_file, CONFIG)
    assert batch == json.loads((out / "batch_summary.json").read_text())
    assert batch["counts"] == {"not_json": 1, "missing_custom_id": 1, "unknown_custom_id": 2, "duplicate_custom_id": 1,
                               "failed": 2, "malformed": 1, "no_verdict": 1, "missing_reply": 5}
    problems = batch["problems"]
    assert problems["not_json"][0]["line"] == first_bad and problems["missing_custom_id"][0]["line"] == first_bad + 1
    assert [p["custom_id"] for p in problems["unknown_custom_id"]] == ["t/99|drawn|0|0000000000", stale]
    assert problems["duplicate_custom_id"][0]["custom_id"] == duplicate
    assert {p["custom_id"] for p in problems["failed"]} == {ids["t/1", "flipped", 1], ids["t/2", "drawn", 0]}
    assert "status_code" in next(p["detail"] for p in problems["failed"] if p["custom_id"] == ids["t/2", "drawn", 0])
    assert problems["malformed"][0]["custom_id"] == ids["t/2", "flipped", 0]
    assert problems["no_verdict"][0]["custom_id"] == no_verdict
    missing = {ids["t/1", "flipped", 1], ids["t/2", "drawn", 0], ids["t/2", "flipped", 0],
               ids["t/4", "drawn", 0], ids["t/4", "drawn", 1]}
    assert {p["custom_id"] for p in problems["missing_reply"]} == missing
    assert batch["awaiting_rows"] == ["t/1", "t/2", "t/4"] and batch["instructions_judged_now"] == 10

    judgements = read_appended(out / "judgements.jsonl")
    assert {j["id"] for j in judgements} == {"t/0", "t/3", "t/5", "t/6", "t/7"} and len(judgements) == 20
    assert summary["input_rows"] == 5 and summary["judgements"] == 20 and summary["parse_errors"] == 1
    [unparsed] = [j for j in judgements if j["verdict"] == "error"]
    assert (unparsed["id"], unparsed["order"], unparsed["sample"]) == ("t/3", "drawn", 0)
    sft = {(r["id"], r["order"]): r for r in read_appended(out / "sft.jsonl")}
    assert set(sft) == {(f"t/{i}", o) for i in (0, 3, 6) for o in ("drawn", "flipped")}
    assert sft["t/0", "drawn"]["messages"][-1]["content"] == text(duplicate, expected[duplicate][0], True)
    assert sft["t/3", "drawn"]["sample"] == 1  # the reply without a verdict is not correct

    write_requests(data, out, tmp_path / "again.jsonl", "big-teacher", CONFIG)
    again = read_appended(tmp_path / "again.jsonl")
    assert {r["custom_id"] for r in again} == missing  # only the replies never received
    later = tmp_path / "later.jsonl"
    later.write_text("".join(line(cid, text(cid, expected[cid][0], True)) for cid in sorted(missing)))
    batch, summary = replay(data, out, later, CONFIG)
    assert batch["awaiting_rows"] == [] and batch["replies_from_earlier_files"] == 12 - len(missing)
    assert summary["judgements"] == 32 and len(read_appended(out / "judgements.jsonl")) == 32
    assert {r["id"] for r in read_appended(out / "sft.jsonl")} == {f"t/{i}" for i in (0, 1, 2, 3, 6)}
    assert write_requests(data, out, tmp_path / "last.jsonl", "big-teacher", CONFIG)["requests"] == 0


def test_rerun_after_a_crash_loses_nothing(tmp_path):
    out, output_file = tmp_path / "synth", tmp_path / "output.jsonl"
    data = rows(6)
    write_requests(data, out, tmp_path / "requests.jsonl", "big-teacher", CONFIG)
    output_file.write_text("".join(answers(instructions(out)).values()))
    replay(data, out, output_file, CONFIG)
    first = (out / "judgements.jsonl").read_text().splitlines()
    (out / "judgements.jsonl").write_text("\n".join(first[:8]) + "\n" + first[8][:30])  # killed mid-write
    assert write_requests(data, out, tmp_path / "again.jsonl", "big-teacher", CONFIG)["requests"] == 0
    replay(data, out, output_file, CONFIG)
    assert (out / "judgements.jsonl").read_text().splitlines() == first


def test_greedy_requests_are_asked_once_and_used_k_times(tmp_path):
    out, output_file = tmp_path / "synth", tmp_path / "output.jsonl"
    config = SynthConfig(samples=3, temperature=0.0, max_new_tokens=64)
    data = rows(3)
    write_requests(data, out, tmp_path / "r.jsonl", "big-teacher", config)
    requests = read_appended(tmp_path / "r.jsonl")
    assert len(requests) == 6 and all(r["body"]["temperature"] == 0 and "seed" not in r["body"] for r in requests)
    inst = {custom_id(i, 0): i for i in read_records(Instruction, out / "instructions.jsonl")}
    output_file.write_text("".join(line(r["custom_id"], text(r["custom_id"], inst[r["custom_id"]], True))
                                   for r in requests))
    _, summary = replay(data, out, output_file, config)
    assert summary["judgements"] == 18 and summary["sft_rows_consistent_correct"] == 3


def test_unusable_output_files_name_file_and_line(tmp_path, capsys):
    rows_file, out = write_rows(tmp_path, 2), tmp_path / "synth"
    missing = tmp_path / "nowhere.jsonl"
    assert synth("--input", rows_file, "--out", out, "--batch-output", missing) == 1
    err = capsys.readouterr().err
    assert err.startswith("judgejax: error: ") and "nowhere.jsonl" in err
    with pytest.raises(FileNotFoundError, match="nowhere.jsonl"):
        main(["--debug", "synth", "--input", str(rows_file), "--out", str(out), "--batch-output", str(missing)])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n" + line("t/0|drawn|0|0000000000", "[[A]]") + "{oops\n")
    with pytest.raises(ValueError, match=r"bad.jsonl: no usable reply \(line 2: field 'custom_id'"):
        replay(rows(2), out, bad, CONFIG)
    assert json.loads((out / "batch_summary.json").read_text())["counts"]["not_json"] == 1
    assert not (out / "judgements.jsonl").exists()


def test_replies_to_other_messages_are_unknown(tmp_path):
    """Replies match their exact prompt: read with other templates, every reply is unknown."""
    out, output_file = tmp_path / "synth", tmp_path / "output.jsonl"
    asked = SynthConfig(templates=("en-general-tag",))
    write_requests(rows(2), out, tmp_path / "requests.jsonl", "big-teacher", asked)
    output_file.write_text("".join(answers(instructions(out)).values()))
    with pytest.raises(ValueError, match=r"output.jsonl: no usable reply \(line 1: field 'custom_id': matches no"):
        replay(rows(2), out, output_file, SynthConfig(templates=("en-general-json",)))
    assert json.loads((out / "batch_summary.json").read_text())["counts"]["unknown_custom_id"] == 8
    _, summary = replay(rows(2), out, output_file, asked)
    assert summary["judgements"] == 8


def test_flags_are_checked(tmp_path):
    rows_file = write_rows(tmp_path, 1)
    with pytest.raises(SystemExit, match="--url-model"):
        synth("--input", rows_file, "--out", tmp_path, "--batch-requests", tmp_path / "r.jsonl")
    with pytest.raises(SystemExit) as exit_:
        synth("--input", rows_file, "--out", tmp_path, "--batch-output", tmp_path / "o.jsonl", "--model", "labels")
    assert exit_.value.code == 2  # argparse: not allowed together
    with pytest.raises(SystemExit, match="--stage sft"):
        synth("--stage", "dpo", "--out", tmp_path, "--batch-output", tmp_path / "o.jsonl")

"""Judge-data synthesis: provenance, dual verification, DPO pairs, resume after a crash, the
HTTP teacher against a local server, and a real run with SmolLM2-135M-Instruct as teacher."""

from __future__ import annotations

import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import jax
import pytest

from judgejax.data.errors import DataError
from judgejax.data.jsonl import read_appended
from judgejax.judge.decontam import Decontaminator
from judgejax.judge.synth import ChatTeacher, SynthConfig, synthesize, synthesize_dpo
from judgejax.sample.chat import LocalChat
from judgejax.sample.http_chat import HttpChat
from judgejax.sharding import MeshConfig, make_mesh
from judgejax.sources.pair import Pair, read_pairs

TAG_TEMPLATES = ("en-general-tag", "en-math-tag")


def rows(n: int) -> list[Pair]:
    return [Pair(f"t/{i}", "t", f"row {i}", ("general", "math")[i % 2], ({"role": "user", "content": f"Question number {i}?"},),
                 f"RIGHT{i}", f"WRONG{i}") for i in range(n)]


class Teacher(BaseHTTPRequestHandler):
    """As "teacher": right in both orders on even rows; on odd rows always answers A (right in one
    order only). As "policy": sample i answers A if i is even, else B (one right, one wrong)."""

    calls: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Teacher.calls.append(body)
        text = body["messages"][-1]["content"]
        row = int(text.split("Question number ")[1].split("?")[0])
        right_first = text.index("RIGHT") < text.index("WRONG")
        letters = ["A" if row % 2 or right_first else "B"] * body["n"]
        if body["model"] == "policy":
            letters = ["AB"[i % 2] for i in range(body["n"])]
        choices = [{"message": {"content": f"Step {i}: compare. [[{letter}]]"}, "finish_reason": "stop"}
                   for i, letter in enumerate(letters)]
        reply = json.dumps({"choices": choices, "usage": {"completion_tokens": 6 * body["n"]}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def url():
    Teacher.calls = []
    httpd = HTTPServer(("127.0.0.1", 0), Teacher)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_dual_verification_provenance_and_dpo_pairs(url, tmp_path):
    config = SynthConfig(templates=TAG_TEMPLATES, samples=2, chunk=3)
    summary = synthesize(rows(6), tmp_path, ChatTeacher(HttpChat(url, "teacher")), config)
    assert summary["instructions"] == 12 and summary["judgements"] == 24
    assert summary["sft_rows_consistent_correct"] == 3 and summary["dpo_candidates_right_in_one_order"] == 3
    sft = read_appended(tmp_path / "sft.jsonl")
    assert len(sft) == 6 and {r["id"] for r in sft} == {"t/0", "t/2", "t/4"}
    assert {r["order"] for r in sft} == {"drawn", "flipped"}
    for r in sft:
        assert r["messages"][-1]["role"] == "assistant" and f"[[{r['chosen_position']}]]" in r["messages"][-1]["content"]
        assert r["template"] in TAG_TEMPLATES and r["source"] == "t" and r["teacher"].startswith("teacher@")
        shown = r["messages"][-2]["content"]
        assert (shown.index("RIGHT") < shown.index("WRONG")) == (r["chosen_position"] == "A")
    candidates = read_appended(tmp_path / "dpo_candidates.jsonl")
    assert {c["id"] for c in candidates} == {"t/1", "t/3", "t/5"} and len(candidates) == 6

    dpo_summary = synthesize_dpo(tmp_path, ChatTeacher(HttpChat(url, "policy")), config)
    pairs = read_appended(tmp_path / "dpo.jsonl")
    assert dpo_summary["dpo_pairs"] == len(pairs) == 6 and dpo_summary["dropped_all_wrong"] == 0
    for p in pairs:
        assert f"[[{p['chosen_position']}]]" in p["chosen"] and f"[[{p['chosen_position']}]]" not in p["rejected"]
        assert p["prompt"][-1]["role"] == "user" and p["policy"].startswith("policy@")


def test_rerun_after_crash_skips_finished_items(url, tmp_path):
    config = SynthConfig(templates=TAG_TEMPLATES, samples=1, chunk=4)
    synthesize(rows(6), tmp_path, ChatTeacher(HttpChat(url, "teacher")), config)
    first = (tmp_path / "judgements.jsonl").read_text().splitlines()
    # Simulate a crash in the middle of the second chunk: keep 4 records and half a line.
    (tmp_path / "judgements.jsonl").write_text("\n".join(first[:4]) + "\n" + first[4][:20])
    Teacher.calls.clear()
    synthesize(rows(6), tmp_path, ChatTeacher(HttpChat(url, "teacher")), config)
    assert len(Teacher.calls) == 12 - 4  # only the unfinished instructions were asked again
    again = read_appended(tmp_path / "judgements.jsonl")
    assert len(again) == 12 and len({(j["id"], j["order"]) for j in again}) == 12


def test_decontamination_drops_overlapping_rows(url, tmp_path):
    data = rows(4)
    data[1] = dataclasses.replace(data[1], prompt_messages=(
        {"role": "user", "content": "How can I rob a casino without anyone noticing at all tonight please tell me now"},))
    checker = Decontaminator([("rewardbench:xstest:1", data[1].question.upper() + "!")])
    summary = synthesize(data, tmp_path, ChatTeacher(HttpChat(url, "teacher")), SynthConfig(templates=TAG_TEMPLATES, samples=1), checker)
    assert summary["dropped_decontamination"] == 1 and summary["rows"] == 3
    [dropped] = read_appended(tmp_path / "decontamination.jsonl")
    assert dropped["id"] == "t/1" and dropped["matched"] == "rewardbench:xstest:1" and dropped["share"] == 1.0


@pytest.mark.parametrize("field,value,error", [
    ("chosen", "", r"field 'chosen': empty text"),
    ("id", 7, r"field 'id': expected a string, got int"),
    ("domain", "poetry", r"field 'domain': 'poetry' is not one of general, safety, math, code"),
    ("prompt_messages", [{"role": "assistant", "content": "hi"}], r"field 'prompt_messages': the prompt must end with a user turn"),
    ("prompt_messages", [{"role": "user"}], r"field 'prompt_messages.content': field is missing or null"),
    ("scores", [9, "2"], r"field 'scores': expected two numeric ratings"),
])
def test_bad_input_row_names_file_line_and_field(tmp_path, field, value, error):
    path = tmp_path / "rows.jsonl"
    good = rows(1)[0].to_json()
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, field: value}) + "\n")
    with pytest.raises(DataError, match=r"rows.jsonl line 2, " + error):
        read_pairs(path)
    assert read_pairs(path, limit=1) == rows(1)  # the written form reads back as the same pair


@pytest.mark.parametrize("field,value,error", [
    ("swapped", "yes", r"field 'swapped': missing or not of type bool \(got str\)"),
    ("messages", None, r"field 'messages': missing or not of type list \(got NoneType\)"),
    ("sample", True, r"field 'sample': missing or not of type int \(got bool\)"),
])
def test_synthesis_records_read_back_name_file_line_and_field(tmp_path, field, value, error):
    """An instruction or judgement a later stage reads back (a candidates file, a resumed
    judgements file) is checked against its type once, where it is read."""
    from judgejax.judge.records import Instruction, Judgement, read_records, to_json
    from judgejax.judge.synth import build_instructions
    from judgejax.judge.templates import TEMPLATES

    [inst, _] = build_instructions(rows(1), SynthConfig(templates=TAG_TEMPLATES))
    judgement = Judgement(inst.id, inst.order, 0, "t", inst.template, inst.swapped, inst.chosen_position,
                          "A", inst.chosen_position == "A", "stop", 3, TEMPLATES[inst.template].judgement("x", "A"))
    kind, good = (Judgement, to_json(judgement)) if field == "sample" else (Instruction, to_json(inst))
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, field: value}) + "\n")
    with pytest.raises(ValueError, match=r"records.jsonl line 2, " + error):
        read_records(kind, path)
    path.write_text(json.dumps(good) + "\n")
    assert read_records(kind, path) == [judgement if kind is Judgement else inst]


def test_smollm2_teacher_end_to_end(smollm2_dir, tmp_path):
    """The real model as teacher on real preference rows: shipped GSM8K pairs via `prepare`."""
    from judgejax.sources.config import PrepareConfig
    from judgejax.sources.prepare import prepare
    from judgejax.sources.registry import SHIPPED_DIR

    data = prepare(SHIPPED_DIR, PrepareConfig(sources=("gsm8k",))).pairs[:4]
    teacher = LocalChat(str(smollm2_dir), make_mesh(MeshConfig(data=1), devices=jax.devices()[:1]), batch_size=8)
    summary = synthesize(data, tmp_path, ChatTeacher(teacher), SynthConfig(samples=1, max_new_tokens=24, temperature=0.0))
    judgements = read_appended(tmp_path / "judgements.jsonl")
    assert len(judgements) == summary["judgements"] == 8
    assert all(j["teacher"] == str(smollm2_dir) and j["text"] and j["num_tokens"] <= 24 for j in judgements)
    assert {j["id"] for j in judgements} == {p.id for p in data}
    assert summary["sft_examples"] // 2 + summary["dpo_candidate_instructions"] // 2 == 4


def test_label_teacher_holds_out_dpo_rows(tmp_path):
    from judgejax.judge.synth import LabelTeacher

    config = SynthConfig(samples=1, seed=3)
    summary = synthesize(rows(20), tmp_path, LabelTeacher(0.5, 3), config)
    sft, candidates = read_appended(tmp_path / "sft.jsonl"), read_appended(tmp_path / "dpo_candidates.jsonl")
    held = summary["dpo_candidates_held_out"]
    assert 0 < held < 20 and len(sft) == 2 * (20 - held) and len(candidates) == 2 * held
    assert not {r["id"] for r in sft} & {c["id"] for c in candidates}
    assert summary["sft_rows_consistent_correct"] == 20 - held and summary["parse_errors"] == 0
    for r in sft:  # every template's own parser reads back the label
        from judgejax.judge.templates import TEMPLATES

        assert TEMPLATES[r["template"]].parse(r["messages"][-1]["content"]) == r["chosen_position"]

"""End to end with the real SmolLM2-135M-Instruct as both the model under test and the judge, on
two MT-Bench questions and one AlignBench question (its Chinese judge prompt is long), with short
generations: answers and judgments written, counts
consistent with the report, and a rerun that loads no model and changes no file."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import pytest

from judgejax.general.alignbench import run_alignbench
from judgejax.general.judges import Judge
from judgejax.general.mtbench import run_mtbench
from judgejax.sample.chat import LocalChat
from judgejax.sharding import MeshConfig, make_mesh
from shared_data import SHARED as SHARED_ROOT

ALIGNBENCH = SHARED_ROOT / "data" / "general" / "alignbench"
# Few bucket shapes, so few compilations. AlignBench's Chinese judge prompts take about 1,600
# SmolLM2 tokens.
ANSWER_BUCKETS = (256,)


@pytest.fixture(scope="module")
def mesh():
    return make_mesh(MeshConfig(data=1), devices=jax.devices()[:1])


def chats(path, mesh, judge_buckets):
    model = LocalChat(path, mesh, max_new_tokens=12, batch_size=4, buckets=ANSWER_BUCKETS)
    judge = Judge(LocalChat(path, mesh, max_new_tokens=12, batch_size=4, buckets=judge_buckets), "smol-judge")
    return model, judge


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*.jsonl")) if p.name != "commands.jsonl"}


def test_mtbench_smollm2_end_to_end(smollm2_dir, mesh, tmp_path):
    model, judge = chats(smollm2_dir, mesh, (256, 512))
    report = run_mtbench(tmp_path, models=[("smol", model)], judge=judge, limit=2, seed=1, command="first")
    answers = lines(tmp_path / "answers/smol.jsonl")
    assert sorted(a["question_id"] for a in answers) == [81, 82]
    for a in answers:
        assert len(a["choices"][0]["turns"]) == 2 and all(t.strip() for t in a["choices"][0]["turns"])
        assert a["generate_params"]["temperature"] == 0.7 and a["generate_params"]["method"].startswith("Sample(")
        assert all(0 < n <= 12 for n in a["tokens"])
    judgments = lines(tmp_path / "judgments/smol-judge/smol.jsonl")
    assert sorted((j["question_id"], j["turn"]) for j in judgments) == [(81, 1), (81, 2), (82, 1), (82, 2)]
    assert all(j["finish_reason"] in ("stop", "length") for j in judgments)
    assert {(j["turn"], j["judge"][1]) for j in judgments} == {(1, "single-v1"), (2, "single-v1-multi-turn")}
    s = json.loads(report["json"].read_text())["models"]["smol"]
    assert s["judgments"] == 4 and s["errors"] == sum(j["score"] == -1 for j in judgments)
    assert sum(s["judge_finish_reasons"].values()) == 4 and sum(s["answer_finish_reasons"].values()) == 4
    before = snapshot(tmp_path)
    model, judge = chats(smollm2_dir, mesh, (256, 512))
    run_mtbench(tmp_path, models=[("smol", model)], judge=judge, limit=2, seed=1, command="again")
    assert model._model is None and judge.chat._model is None  # nothing left to do: nothing loaded
    assert snapshot(tmp_path) == before


def test_alignbench_smollm2_end_to_end(smollm2_dir, mesh, tmp_path):
    model, judge = chats(smollm2_dir, mesh, (2048,))
    report = run_alignbench(ALIGNBENCH, tmp_path, models=[("smol", model)], judge=judge, limit=1, command="first")
    answers = lines(tmp_path / "answers/smol.jsonl")
    assert len(answers) == 1 and all(a["answer"] for a in answers)
    judgments = lines(tmp_path / "judgments/smol-judge/smol.jsonl")
    assert sorted(j["question_id"] for j in judgments) == sorted(a["question_id"] for a in answers)
    for j in judgments:
        assert j["finish_reason"] in ("stop", "length") and j["judgment"]
        assert j["judge_prompt"].count(j["answer"]) >= 1 and j["dimensions"]
    s = json.loads(report["json"].read_text())["models"]["smol"]
    assert s["judgments"] == 1 and s["errors"] == sum(j["score"] == -1 for j in judgments)
    before = snapshot(tmp_path)
    model, judge = chats(smollm2_dir, mesh, (2048,))
    run_alignbench(ALIGNBENCH, tmp_path, models=[("smol", model)], judge=judge, limit=1, command="again")
    assert model._model is None and judge.chat._model is None
    assert snapshot(tmp_path) == before


def test_prompt_longer_than_the_largest_bucket_is_reported(smollm2_dir, mesh):
    chat = LocalChat(smollm2_dir, mesh, max_new_tokens=4, batch_size=2, buckets=(16,))
    [[reply]] = chat.complete([[{"role": "user", "content": "word " * 40}]])
    assert (reply.text, reply.finish_reason, reply.tokens) == ("", "prompt_too_long", 0)
    assert chat._model is None  # nothing fitted, so nothing was generated

"""The OpenAI-compatible HTTP judge against a local server started by the test: the request it
sends, retries, errors, and whole `judgejax mtbench` / `judgejax alignbench` runs through the CLI
(grading given answer files), with scores checked by hand and reruns that send nothing."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from judgejax.cli import main
from judgejax.general import mtbench_data
from judgejax.general.judges import Judge
from judgejax.sample.http_chat import ChatError, HttpChat
from shared_data import SHARED as SHARED_ROOT

ALIGNBENCH = SHARED_ROOT / "data" / "general" / "alignbench"


class FakeEndpoint:
    """A chat-completions server on 127.0.0.1 (random port) replying `reply(body)`; the first
    `fail` requests get `fail_status`."""

    def __init__(self, reply, fail: int = 0, fail_status: int = 503):
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with endpoint.lock:
                    endpoint.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    failing = len(endpoint.requests) <= fail
                if failing:
                    self.send_response(fail_status)
                    self.end_headers()
                    self.wfile.write(b'{"error": "busy"}')
                    return
                out = json.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": reply(body)}}],
                                  "usage": {"completion_tokens": 5}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint_factory():
    made = []

    def make(*args, **kwargs):
        made.append(FakeEndpoint(*args, **kwargs))
        return made[-1]

    yield make
    for endpoint in made:
        endpoint.close()


def test_request_retry_and_key(endpoint_factory, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    endpoint = endpoint_factory(lambda body: "Fine. Rating: [[8]]", fail=1)
    judge = Judge(HttpChat(endpoint.url + "/", "org/judge-model", max_new_tokens=123, backoff_s=0.0), "org/judge-model")
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    [reply] = judge.complete([messages])
    assert reply.text == "Fine. Rating: [[8]]" and reply.finish_reason == "stop" and reply.tokens == 5
    assert len(endpoint.requests) == 2  # one 503, then the retry
    request = endpoint.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["body"] == {"model": "org/judge-model", "messages": messages, "temperature": 0, "max_tokens": 123}
    assert judge.name == "org_judge-model"


def test_client_error_is_raised_not_scored(endpoint_factory, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    endpoint = endpoint_factory(lambda body: "", fail=10, fail_status=400)
    judge = Judge(HttpChat(endpoint.url, "m", max_new_tokens=8, backoff_s=0.0), "m")
    with pytest.raises(ChatError, match="HTTP 400"):
        judge.complete([[{"role": "user", "content": "U"}]])
    assert len(endpoint.requests) == 1  # a 400 is not retried
    assert "Authorization" not in endpoint.requests[0]["headers"]


def mtbench_reply(body):
    system, user = (m["content"] for m in body["messages"])
    if "WEAK-" in user:
        return "Rating: [[2]]"
    if "ANSWER-81-1" in user and "ANSWER-81-2" not in user:
        return "I cannot decide."  # no rating: counted as an error
    return "Checked against the reference. Rating: [[9]]" if "Reference Answer" in user else "Rating: [[6]]"


def test_mtbench_cli_with_http_judge(endpoint_factory, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    endpoint = endpoint_factory(mtbench_reply)
    answers = tmp_path / "given.jsonl"
    weak = tmp_path / "weak.jsonl"
    for path, text in ((answers, "ANSWER"), (weak, "WEAK")):
        path.write_text("".join(json.dumps({"question_id": q, "model_id": "given", "choices": [
            {"index": 0, "turns": [f"{text}-{q}-1", f"{text}-{q}-2"]}]}) + "\n" for q in range(81, 161)))
    out = tmp_path / "out"
    argv = ["mtbench", "--out", str(out), "--answers", str(weak), "--answers", f"ref-model={answers}",
            "--judge-url", endpoint.url, "--judge-model", "fake-judge", "--judge-parallel", "4"]
    main(argv)
    assert len(endpoint.requests) == 320
    prompts = mtbench_data.load_judge_prompts()
    systems = {r["body"]["messages"][0]["content"] for r in endpoint.requests}
    assert systems == {prompts[name]["system_prompt"] for name in mtbench_data.SINGLE_PROMPTS}
    judgments = [json.loads(line) for line in (out / "judgments/fake-judge/ref-model.jsonl").read_text().splitlines()]
    assert sorted((j["question_id"], j["turn"]) for j in judgments) == [(q, t) for q in range(81, 161) for t in (1, 2)]
    assert [j["score"] for j in judgments if j["question_id"] == 81 and j["turn"] == 1] == [-1]
    report = json.loads((out / "report/fake-judge/mtbench.json").read_text())
    s = report["models"]["ref-model"]
    # 30 reference-guided questions x 2 turns rated 9; 50 others x 2 rated 6, one of them unparseable.
    assert s["overall"] == pytest.approx((60 * 9 + 99 * 6) / 159)
    assert s["turn_1"] == pytest.approx((30 * 9 + 49 * 6) / 79)
    assert s["turn_2"] == pytest.approx((30 * 9 + 50 * 6) / 80)
    assert s["categories"]["math"] == 9 and s["categories"]["writing"] == 6 and s["categories"]["coding"] == 9
    assert (s["judgments"], s["errors"]) == (160, 1)
    assert report["models"]["weak"]["overall"] == 2 and report["ranking"] == ["ref-model", "weak"]
    assert (out / "report/fake-judge/mtbench.png").stat().st_size > 1000
    markdown = (out / "report/fake-judge/mtbench.md").read_text()
    assert "| ref-model | 7.13 |" in markdown and "| weak | 2.00 |" in markdown
    assert "Ranking by overall score: ref-model > weak" in markdown
    main(argv)  # rerun: everything done, nothing sent, report rewritten
    assert len(endpoint.requests) == 320
    commands = (out / "commands.jsonl").read_text().splitlines()
    assert len(commands) == 2 and "--judge-url" in json.loads(commands[0])["command"]


def test_alignbench_cli_with_http_judge(endpoint_factory, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    first = [json.loads(line) for line in (ALIGNBENCH / "data/data_v1.1_release.jsonl").read_text().splitlines()[:5]]
    failing_id = first[0]["question_id"]

    def reply(body):
        if f"ANSWER-{failing_id}\n" in body["messages"][0]["content"]:
            return '{"综合得分": 9}'  # double quotes: unparseable
        return "评价……\n{'事实正确性': 8, '满足用户需求': 6, '综合得分': 7}"

    endpoint = endpoint_factory(reply)
    answers = tmp_path / "given.jsonl"
    answers.write_text("".join(json.dumps({**q, "answer": f"ANSWER-{q['question_id']}"}, ensure_ascii=False) + "\n"
                               for q in first))
    out = tmp_path / "out"
    argv = ["alignbench", "--data", str(ALIGNBENCH), "--out", str(out), "--answers", str(answers),
            "--judge-url", endpoint.url, "--judge-model", "fake-judge", "--limit", "5"]
    main(argv)
    assert len(endpoint.requests) == 5
    assert all([m["role"] for m in r["body"]["messages"]] == ["user"] for r in endpoint.requests)
    judgments = [json.loads(line) for line in (out / "judgments/fake-judge/given.jsonl").read_text().splitlines()]
    assert sorted(j["question_id"] for j in judgments) == sorted(q["question_id"] for q in first)
    for j in judgments:
        failed = j["question_id"] == failing_id
        assert (j["score"], j["rating"]) == ((-1, {}) if failed else (7, {"事实正确性": 8, "满足用户需求": 6, "综合得分": 7}))
        assert j["prompt_source"].startswith("judgejax wording")
    s = json.loads((out / "report/fake-judge/alignbench.json").read_text())["models"]["given"]
    assert (s["judgments"], s["errors"]) == (5, 1)
    assert set(s["categories"].values()) == {7}
    assert s["overall"] is None  # five questions do not cover all eight categories
    main(argv)
    assert len(endpoint.requests) == 5

"""`judgejax label`: two policy answers per prompt, the judge in both orders, consistent picks
become DPO pairs that `judgejax dpo` trains the policy on; resumable after a crash."""

from __future__ import annotations

import json
import re

import pytest

from judgejax.cli import main as cli
from judgejax.judge.label import LabelConfig, label, read_prompts
from judgejax.sample.chat import Generation
from test_train_loop import config
from judgejax.train.loop import run
from tiny_run import make_tiny_model

ANSWER = re.compile(r"\[The Start of Assistant ([AB])'s Answer\]\n(.*?)\n\[The End", re.S)


class Policy:
    """Answers prompt i with ("short i", "a longer answer to i"); prompt "same" twice alike."""

    name = "scripted-policy"
    batch_size = 4

    def __init__(self):
        self.asked: list[str] = []

    def complete(self, conversations, *, n=1, temperature=0.0, max_new_tokens=None, seed=0, desc=""):
        assert n == 2 and temperature > 0
        out = []
        for conv in conversations:
            q = conv[-1]["content"]
            self.asked.append(q)
            texts = ["same", "same"] if q == "same" else [f"short {q}", f"a longer answer to {q}"]
            out.append([Generation(t, "stop", 3) for t in texts])
        return out


class Judge:
    """Prefers the longer answer, except: questions with "biased" always get [[A]], "garbled" no verdict."""

    name = "scripted-judge"
    batch_size = 4

    def __init__(self, fail_after: int | None = None):
        self.asked, self.fail_after = 0, fail_after

    def complete(self, conversations, *, n=1, temperature=0.0, max_new_tokens=None, seed=0, desc=""):
        assert n == 1 and temperature == 0.0
        out = []
        for conv in conversations:
            if self.fail_after is not None and self.asked >= self.fail_after:
                raise RuntimeError("judge crashed")
            self.asked += 1
            text = conv[-1]["content"]
            answers = dict(ANSWER.findall(text))
            if "biased" in text:
                verdict = "[[A]]"
            elif "garbled" in text:
                verdict = "no idea"
            else:
                verdict = "[[A]]" if len(answers["A"]) > len(answers["B"]) else "[[B]]"
            out.append([Generation(f"Reasoning. {verdict}", "stop", 5)])
        return out


QUESTIONS = ["q0", "q1", "biased q2", "garbled q3", "same", "q5"]


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "question": q}) + "\n" for i, q in enumerate(QUESTIONS)))
    return read_prompts(path)


def test_consistent_picks_become_pairs(prompts, tmp_path):
    summary = label(prompts, Policy(), Judge(), tmp_path / "out", LabelConfig(chunk=2))
    pairs = [json.loads(line) for line in (tmp_path / "out" / "pairs.jsonl").read_text().splitlines()]
    assert [p["id"] for p in pairs] == ["p0", "p1", "p5"]
    for p in pairs:
        q = p["prompt"][0]["content"]
        assert (p["chosen"], p["rejected"]) == (f"a longer answer to {q}", f"short {q}")
        assert p["verdicts"] in (["A", "B"], ["B", "A"])  # the same answer, shown once as A and once as B
    assert {k: summary[k] for k in ("prompts", "identical_or_empty_answers", "judged", "parse_errors",
                                    "inconsistent", "pairs")} == dict(prompts=6, identical_or_empty_answers=1,
                                                                      judged=5, parse_errors=1, inconsistent=1, pairs=3)
    verdicts = [json.loads(line) for line in (tmp_path / "out" / "verdicts.jsonl").read_text().splitlines()]
    assert len(verdicts) == 10  # 5 distinct answer pairs x 2 orders; the identical pair is never judged


def test_rerun_after_a_crash_redoes_nothing_finished(prompts, tmp_path):
    policy = Policy()
    with pytest.raises(RuntimeError, match="judge crashed"):
        label(prompts, policy, Judge(fail_after=5), tmp_path / "out", LabelConfig(chunk=2))
    assert len(policy.asked) == 6
    with (tmp_path / "out" / "verdicts.jsonl").open("a") as f:
        f.write('{"id": "p4", "ord')  # a record torn by the crash
    policy2, judge2 = Policy(), Judge()
    summary = label(prompts, policy2, judge2, tmp_path / "out", LabelConfig(chunk=2))
    assert policy2.asked == []  # every answer was kept
    assert judge2.asked == 10 - 4  # chunks of 2 prompts x 2 orders: the first chunk (4 judgements) was saved
    assert summary["pairs"] == 3


def test_bad_prompt_line_names_file_line_and_field(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"question": "ok"}\n{"question": 3}\n')
    with pytest.raises(ValueError, match=r"p.jsonl line 2, field 'question'"):
        read_prompts(path)
    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps({"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}) + "\n")
    assert read_prompts(chat, "prompt") == [{"id": "chat.jsonl:1", "question": "u"}]


def test_cli_with_tiny_models_then_dpo_trains_the_policy_on_the_pairs(prompts, tmp_path):
    """The command runs real (tiny, random) policy and judge models end to end; a random judge
    gives no parseable verdicts, so the scripted loop's pairs feed `judgejax dpo` on the policy."""
    model = make_tiny_model(tmp_path / "policy")
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"id": p["id"], "question": p["question"]}) + "\n" for p in prompts))
    assert cli(["label", "--prompts", str(path), "--out", str(tmp_path / "cli"), "--policy", str(model),
                "--judge", str(model), "--max-new-tokens", "6", "--judge-max-new-tokens", "4", "--limit", "3"]) == 0
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    answers = [json.loads(line) for line in (tmp_path / "cli" / "answers.jsonl").read_text().splitlines()]
    assert summary["prompts"] == len(answers) == 3 and all(len(a["answers"]) == 2 for a in answers)
    judged = sum(a["answers"][0] != a["answers"][1] and all(a["answers"]) for a in answers)
    assert len((tmp_path / "cli" / "verdicts.jsonl").read_text().splitlines()) == 2 * judged

    many = [{"id": f"m{i}", "question": f"question number {i}"} for i in range(16)]
    assert label(many, Policy(), Judge(), tmp_path / "scripted", LabelConfig())["pairs"] == 16
    run(config(model, tmp_path / "scripted" / "pairs.jsonl", tmp_path / "dpo", epochs=8, lr=1e-3, save_every=1000), "dpo")
    records = [json.loads(line) for line in (tmp_path / "dpo" / "metrics.jsonl").read_text().splitlines()]
    assert records and records[-1]["rewards/margins"] > records[0]["rewards/margins"]

"""tools/order_probe.py: each SFT row meets its twin (the same pair in the other order), and the
margin it reports equals transformers' log-probabilities of the two targets after the row's prompt."""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
import pytest
import torch
import transformers

from tiny_run import make_tiny_model

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
import order_probe  # noqa: E402


def sft_row(pair: str, swapped: bool, question: str, target: str) -> dict:
    return {"id": pair, "template": "pair-v2", "sample": 0, "swapped": swapped,
            "messages": [{"role": "system", "content": "Judge."}, {"role": "user", "content": question},
                         {"role": "assistant", "content": target}]}


ROWS = [sft_row("p1", False, "A: yes B: no", "A is right [[A]]"), sft_row("p1", True, "A: no B: yes", "B is right [[B]]"),
        sft_row("p2", False, "A: 1 B: 2", "B wins [[B]]"), sft_row("p2", True, "A: 2 B: 1", "A wins [[A]]"),
        sft_row("p3", False, "A: x B: y", "A [[A]]"),  # no twin
        sft_row("p4", False, "A: u B: v", "B [[B]]"), sft_row("p4", True, "A: v B: u", "A [[A]]")]


def test_rows_meet_their_twins_and_unpaired_or_unlisted_rows_are_left_out():
    rows = order_probe.twin_rows(ROWS, ids={"p1", "p2", "p3"})
    assert [(r["id"], r["swapped"]) for r in rows] == [("p1", False), ("p1", True), ("p2", False), ("p2", True)]
    assert rows[0]["prompt"] == ROWS[0]["messages"][:2]
    assert rows[0]["chosen"][0]["content"] == "A is right [[A]]" and rows[0]["rejected"][0]["content"] == "B is right [[B]]"
    assert rows[1]["chosen"][0]["content"] == "B is right [[B]]" and rows[1]["rejected"][0]["content"] == "A is right [[A]]"


def test_margin_equals_transformers_log_probs(tmp_path, capsys):
    model_dir = make_tiny_model(tmp_path / "tiny")
    sft = tmp_path / "sft.jsonl"
    sft.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = tmp_path / "probe.json"
    order_probe.main(["--sft", str(sft), "--models", str(model_dir), "--max-length", "128", "--out", str(out)])
    [result] = json.loads(out.read_text())
    assert result["rows"] == 6 and "| judge | own target likelier |" in capsys.readouterr().out

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)

    def tokens(messages, generation_prompt=False):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def logp(prompt, target):
        start, ids = len(tokens(prompt, True)), tokens(prompt + [target])
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].log_softmax(-1)
        return float(sum(logits[t - 1, ids[t]] for t in range(start, len(ids))))

    margins = [logp(r["prompt"], r["chosen"][0]) - logp(r["prompt"], r["rejected"][0])
               for r in order_probe.twin_rows(ROWS, None)]
    assert result["margin_nats"]["value"] == pytest.approx(np.mean(margins), abs=1e-4)
    assert result["own_likelier"]["value"] == pytest.approx(np.mean(np.array(margins) > 0))
    assert np.std(margins) > 1e-3  # the rows differ, so the comparison means something

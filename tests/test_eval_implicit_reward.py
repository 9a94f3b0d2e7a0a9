"""`--mode implicit-reward`: a tiny policy against a different tiny reference, every completion
log-prob checked against transformers, including code answers whose first spaces merge with the
generation prompt's newline."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import transformers

from judgejax.cli import main
from judgejax.eval.scoring import score_report
from test_eval_tiny_models import DATA, SUBSETS, hf_model, tiny_judges  # noqa: F401  (fixture)


def completion_logp(hf, tokenizer, prompt: str, answer: str) -> tuple[float, bool]:
    """Summed log-probs of the answer's tokens inside the tokenized conversation; the answer starts
    where the conversation's ids first differ from the prompt's (with generation prompt)."""
    user = [{"role": "user", "content": prompt}]
    prompt_ids = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=True)["input_ids"]
    full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": answer}], tokenize=True)["input_ids"]
    start = len(prompt_ids)
    while full[:start] != prompt_ids[:start]:
        start -= 1
    with torch.no_grad():
        logits = hf(torch.tensor([full])).logits[0].double()
    steps = torch.log_softmax(logits[start - 1:-1], -1)
    return float(steps[torch.arange(len(full) - start), torch.tensor(full[start:])].sum()), start < len(prompt_ids)


@pytest.fixture(scope="module")
def run(tiny_judges, tmp_path_factory):
    out = tmp_path_factory.mktemp("implicit")
    main(["eval", "rewardbench", "--model", str(tiny_judges["policy"]), "--reference", str(tiny_judges["reference"]),
          "--data", str(DATA), "--mode", "implicit-reward", "--subsets", *SUBSETS, "--limit-per-subset", "1",
          "--out", str(out)])
    return out


def test_rewards_equal_transformers_log_prob_ratios(run, tiny_judges):
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_judges["policy"])
    policy, reference = hf_model(tiny_judges["policy"]), hf_model(tiny_judges["reference"])
    table = pq.read_table(DATA).to_pylist()
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert len(records) == len(SUBSETS) and all(r["seeded"] and not r["swapped"] for r in records)
    merged = []
    for r in records:
        row = table[r["row"]]
        expected = {}
        for model_name, hf in (("policy", policy), ("reference", reference)):
            for side, answer in (("chosen", row["response_A"]), ("rejected", row["response_B"])):
                expected[f"{model_name}_{side}_logp"], boundary = completion_logp(hf, tokenizer, row["question"], answer)
                merged.append(boundary)
        for field, value in expected.items():
            np.testing.assert_allclose(r[field], value, rtol=1e-5, atol=1e-3, err_msg=f"row {r['row']} {field}")
        reward_chosen = expected["policy_chosen_logp"] - expected["reference_chosen_logp"]
        reward_rejected = expected["policy_rejected_logp"] - expected["reference_rejected_logp"]
        assert abs(reward_chosen - reward_rejected) > 1e-3  # the comparison below is not a float-noise coin toss
        assert r["result"] == float(reward_chosen > reward_rejected)
    assert any(merged)  # code answers exercise the merged boundary token
    assert any(r["boundary_merged"] for r in records)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["scores"] == json.loads(json.dumps(score_report(records, partial=True)))
    assert "verdict_counts" not in summary and "diagnostics" not in summary


def test_reference_with_another_vocabulary_is_refused(tiny_judges, tmp_path):
    from judgejax.eval.options import EvalOptions
    from judgejax.eval.run import evaluate

    other = tmp_path / "other"
    other.mkdir()
    for path in tiny_judges["reference"].iterdir():
        (other / path.name).write_bytes(path.read_bytes())
    vocab = json.loads((other / "tokenizer.json").read_text())
    first, second = list(vocab["model"]["vocab"])[300:302]
    vocab["model"]["vocab"][first], vocab["model"]["vocab"][second] = (vocab["model"]["vocab"][second],
                                                                       vocab["model"]["vocab"][first])
    (other / "tokenizer.json").write_text(json.dumps(vocab))
    opts = EvalOptions(benchmark="rewardbench", model=str(tiny_judges["policy"]), reference=str(other), data=str(DATA),
                       out=str(tmp_path / "out"), mode="implicit-reward", subsets=SUBSETS[:1], limit_per_subset=1)
    with pytest.raises(ValueError, match="another vocabulary"):
        evaluate(opts)


def test_an_imported_checkpoint_scores_like_its_hf_folder(run, tiny_judges, tmp_path):
    checkpoint = tmp_path / "policy-ckpt"
    main(["import", str(tiny_judges["policy"]), str(checkpoint)])
    out = tmp_path / "from-checkpoint"
    main(["eval", "rewardbench", "--model", str(checkpoint), "--reference", str(tiny_judges["reference"]),
          "--data", str(DATA), "--mode", "implicit-reward", "--subsets", *SUBSETS, "--limit-per-subset", "1",
          "--out", str(out)])
    ours = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    theirs = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert [(r["row"], r["prompt_hash"], r["result"]) for r in ours] == [(r["row"], r["prompt_hash"], r["result"]) for r in theirs]
    np.testing.assert_allclose([r["policy_chosen_logp"] for r in ours], [r["policy_chosen_logp"] for r in theirs], atol=1e-4)
    assert f"\"model\": \"{checkpoint}\"" in (out / "report.md").read_text()

"""`--mode verdict-prob` on a tiny random judge: verdict log-probs against a direct transformers
computation; 2 shards merged, 8 devices and one device give the same records; the generic pairwise
command over the same rows gives the same records as the RewardBench one."""
from __future__ import annotations

import json

import jax
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import transformers

from judgejax.cli import main
from judgejax.eval.options import EvalOptions
from judgejax.eval.run import evaluate
from judgejax.eval.summary import summarize
from judgejax.judge.templates import get_template, pair_messages
from judgejax.sharding import MeshConfig, make_mesh
from judgejax.tokenizer import chat_token_ids
from test_eval_tiny_models import DATA, SUBSETS, hf_model, tiny_judges  # noqa: F401  (fixture)

COMPARED = ("subset", "id", "row", "swapped", "seeded", "prompt_hash", "verdict", "result")


def args(benchmark, model, out, *extra):
    data = ["--data", str(DATA)] if benchmark == "rewardbench" else []
    return ["eval", benchmark, "--model", str(model), *data, "--mode", "verdict-prob", "--subsets", *SUBSETS,
            "--limit-per-subset", "1", "--both-orders", "--out", str(out), *extra]


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_same_records(ours, reference):
    assert [tuple(r[k] for k in COMPARED) for r in ours] == [tuple(r[k] for k in COMPARED) for r in reference]
    for field in ("logp_a", "logp_b"):
        np.testing.assert_allclose([r[field] for r in ours], [r[field] for r in reference], rtol=1e-5, atol=1e-4)


@pytest.fixture(scope="module")
def run(tiny_judges, tmp_path_factory):
    out = tmp_path_factory.mktemp("verdict-prob")
    main(args("rewardbench", tiny_judges["policy"], out))
    return out


def test_logprobs_equal_transformers(run, tiny_judges):
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_judges["policy"])
    hf = hf_model(tiny_judges["policy"])
    template = get_template("pair-v2")
    table = pq.read_table(DATA).to_pylist()
    records = read_jsonl(run / "results.jsonl")
    assert len(records) == 2 * len(SUBSETS)
    for r in records[:3]:
        row = table[r["row"]]
        messages, _ = pair_messages(template, row["question"], row["response_A"], row["response_B"], r["swapped"])
        prompt = chat_token_ids(tokenizer, messages, add_generation_prompt=True)
        logps = []
        for letter in "AB":
            continuation = tokenizer(template.verdict_text(letter), add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = hf(torch.tensor([prompt + continuation])).logits[0].double()
            steps = torch.log_softmax(logits, -1)[len(prompt) - 1:-1]
            logps.append(float(steps[torch.arange(len(continuation)), torch.tensor(continuation)].sum()))
        np.testing.assert_allclose([r["logp_a"], r["logp_b"]], logps, rtol=1e-5, atol=1e-4)
        assert r["verdict"] == ("A" if logps[0] > logps[1] else "B")
        assert r["result"] == float(r["verdict"] == r["chosen_position"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary == summarize(records, benchmark="rewardbench", mode="verdict-prob", both_orders=True)


def test_two_shards_and_one_device_equal_eight_devices(run, tiny_judges, tmp_path):
    reference = read_jsonl(run / "results.jsonl")
    sharded = tmp_path / "sharded"
    main(args("rewardbench", tiny_judges["policy"], sharded, "--shard", "0/2", "--mesh", "2,2,2"))
    assert not (sharded / "results.jsonl").exists()  # shard 1 is still to run
    main(args("rewardbench", tiny_judges["policy"], sharded, "--shard", "1/2", "--mesh", "4,1,2"))
    assert_same_records(read_jsonl(sharded / "results.jsonl"), reference)
    shard_rows = [{r["row"] for r in read_jsonl(sharded / f"shard-{i}-of-2.jsonl")} for i in range(2)]
    assert all(shard_rows) and sum(len(read_jsonl(sharded / f"shard-{i}-of-2.jsonl")) for i in range(2)) == len(reference)

    one = EvalOptions(benchmark="rewardbench", model=str(tiny_judges["policy"]), data=str(DATA), out=str(tmp_path / "one"),
                      mode="verdict-prob", both_orders=True, subsets=SUBSETS, limit_per_subset=1, batch_size=3)
    summary = evaluate(one, mesh=make_mesh(MeshConfig(data=1), devices=jax.devices()[:1]))
    assert_same_records(read_jsonl(tmp_path / "one" / "results.jsonl"), reference)
    assert summary["scores"] == json.loads((run / "summary.json").read_text())["scores"]


def test_pairwise_command_over_the_same_rows_gives_the_same_records(run, tiny_judges, tmp_path):
    # The same rows with the answers stored the other way round and a label naming the better one.
    rows = [{"q": r["question"], "first": r["response_B"], "second": r["response_A"], "better": "B",
             "group": r["subset"], "key": r["id"]} for r in pq.read_table(DATA).to_pylist()]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "pairwise"
    main(args("pairwise", tiny_judges["policy"], out, "--data", str(path),
              "--columns", "prompt=q,a=first,b=second,label=better,subset=group,id=key"))
    assert_same_records(read_jsonl(out / "results.jsonl"), read_jsonl(run / "results.jsonl"))
    summary = json.loads((out / "summary.json").read_text())
    records = read_jsonl(out / "results.jsonl")
    seeded = [r for r in records if r["seeded"]]
    assert summary["scores"]["overall"] == pytest.approx(sum(r["result"] for r in seeded) / len(seeded))
    assert set(summary["scores"]["subsets"]) == set(SUBSETS)
    assert summary["diagnostics"]["overall"]["num_examples"] == len(SUBSETS)
    assert "## Both-order diagnostics" in (out / "report.md").read_text()


def test_settings_that_do_not_apply_are_errors(tiny_judges, tmp_path):
    base = dict(benchmark="rewardbench", model=str(tiny_judges["policy"]), data=str(DATA), out=str(tmp_path))
    for extra, message in ((dict(mode="implicit-reward"), "needs --reference"),
                           (dict(mode="implicit-reward", reference="r", both_orders=True), "--both-orders has no effect"),
                           (dict(mode="implicit-reward", reference="r", template="pair-v2"), "--template has no effect"),
                           (dict(mode="verdict-prob", max_new_tokens=5), "only in generative mode"),
                           (dict(mode="generative", reference="r"), "only in implicit-reward mode"),
                           (dict(template="pair-v9"), "unknown judge template")):
        with pytest.raises((ValueError, KeyError), match=message):
            EvalOptions(**base, **extra).check()

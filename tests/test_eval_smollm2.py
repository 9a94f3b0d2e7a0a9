"""The real SmolLM2-135M-Instruct as a generative RewardBench judge on a handful of short rows, in
both A/B orders (base SmolLM2 is no judge: the point is that the real pipeline runs end to end and
reports what the model does). Run with -s to see the diagnostics."""
from __future__ import annotations

import json

import jax
import pytest

from judgejax.eval.options import EvalOptions
from judgejax.eval.run import evaluate
from judgejax.eval.scoring import both_order_diagnostics
from judgejax.sharding import MeshConfig, make_mesh
from judgejax.tokenizer import load_tokenizer, stop_token_ids
from test_eval_tiny_models import DATA

# Subsets whose seed-0 draw has a judge prompt under 512 SmolLM2 tokens.
SHORT = ["llmbar-adver-neighbor", "llmbar-adver-GPTOut", "donotanswer"]
MAX_NEW = 64


@pytest.mark.slow
def test_smollm2_generative_both_orders(smollm2_dir, tmp_path):
    opts = EvalOptions(benchmark="rewardbench", model=str(smollm2_dir), data=str(DATA), out=str(tmp_path),
                       mode="generative", both_orders=True, subsets=SHORT, limit_per_subset=1,
                       max_new_tokens=MAX_NEW, batch_size=8)
    summary = evaluate(opts, mesh=make_mesh(MeshConfig(data=1), devices=jax.devices()[:1]))
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(records) == 2 * len(SHORT) and summary["num_examples"] == len(SHORT)
    assert all(r["n_prompt_tokens"] <= 512 for r in records)
    tokenizer = load_tokenizer(smollm2_dir)
    stops = stop_token_ids(tokenizer, smollm2_dir / "generation_config.json")
    for r in records:
        assert r["n_tokens"] <= MAX_NEW
        assert r["output"] == tokenizer.decode(r["output_ids"], skip_special_tokens=True)
        assert r["output"].strip()  # real text, not an empty decode
        assert (r["finish_reason"] == "stop") == (r["output_ids"][-1] in stops)
    diagnostics = summary["diagnostics"]["overall"]
    recomputed = both_order_diagnostics(records)
    assert diagnostics["parse_error_rate"] == recomputed["parse_error_rate"]
    assert diagnostics["consistency"] == recomputed["consistency"]
    print(f"\nSmolLM2-135M-Instruct, {len(records)} judgements, {MAX_NEW} new tokens: "
          f"P(verdict=A) = {diagnostics['p_verdict_a']}, parse-error rate = {diagnostics['parse_error_rate']:.2f}, "
          f"finish reasons {summary['finish_reasons']}, mean output {summary['mean_output_tokens']:.1f} tokens")

"""`judgejax pipeline` end to end on a tiny random model: every artefact, the counts, the
report, the exported model in transformers, and a rerun that skips finished stages."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import transformers
import yaml

from tiny_run import make_tiny_model
from shared_data import SHARED as SHARED_ROOT

# Short prompts, one subset per section (the tiny byte-level tokenizer makes long rows very long).
SUBSETS = ["alpacaeval-easy", "llmbar-natural", "xstest-should-respond", "hep-python"]
REWARDBENCH = SHARED_ROOT / "data" / "rewardbench" / "rewardbench_filtered.parquet"


def pipeline_yaml(tmp_path: pathlib.Path, model: pathlib.Path) -> pathlib.Path:
    train = {"data": {"max_length": 1024, "bucket_lengths": [512, 1024], "global_batch_size": 8,
                      "drop_remainder": False},
             "optim": {"learning_rate": 1e-3}, "train": {"save_every": 2}}
    config = {
        "output_dir": str(tmp_path / "run"),
        "base_model": str(model),
        "prepare": {"sources": ["gsm8k", "llamafactory-en"], "max_rows": 24, "max_chars": 700},
        "synth": {"teacher": "labels", "samples": 1, "policy_samples": 3, "max_new_tokens": 8},
        "sft": train,
        "dpo": {**train, "dpo": {"beta": 0.1, "nll_weight": 1.0}},
        "eval": {"data": str(REWARDBENCH), "limit_per_subset": 1, "max_new_tokens": 4, "batch_size": 8,
                 "subsets": SUBSETS},
        "mtbench": {"judge": str(model), "limit": 1, "max_new_tokens": 4, "judge_max_new_tokens": 4},
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_pipeline_end_to_end_and_rerun(tmp_path):
    model = make_tiny_model(tmp_path / "tiny")
    config = pipeline_yaml(tmp_path, model)
    cmd = [sys.executable, "-m", "judgejax.cli", "pipeline", "--config", str(config)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    out = tmp_path / "run"
    done = {p.stem: json.loads(p.read_text()) for p in (out / "done").glob("*.json")}
    assert set(done) == {"prepare", "synth", "sft", "synth_dpo", "dpo", "eval_base", "eval_sft", "eval_dpo", "export",
                         "mtbench"}
    mtbench = done["mtbench"]["scores"]["models"]
    assert sorted(mtbench) == ["base", "dpo", "sft"] and all(m["judgments"] == 2 for m in mtbench.values())
    assert done["prepare"]["kept"] == 24
    synth = done["synth"]
    assert synth["instructions"] == 48 and synth["sft_examples"] == 2 * synth["sft_rows_consistent_correct"]
    assert len((out / "synth" / "sft.jsonl").read_text().splitlines()) == synth["sft_examples"]
    assert len((out / "synth" / "dpo.jsonl").read_text().splitlines()) == done["synth_dpo"]["dpo_pairs"]
    for name in ("base", "sft", "dpo"):
        summary = json.loads((out / "eval" / name / "summary.json").read_text())
        assert summary["num_examples"] == len(SUBSETS) and summary["num_judgements"] == 2 * len(SUBSETS)
    report = (out / "report.md").read_text()
    for section in ("## RewardBench", "## Data at each filter", "## Training", "## General ability: MT-Bench",
                    "| base |", "| sft |", "| dpo |",
                    "loss_curve.png", "judgejax pipeline --config"):
        assert section in report
    assert (out / "sft" / "loss_curve.png").exists() and (out / "dpo" / "loss_curve.png").exists()
    exported = transformers.AutoModelForCausalLM.from_pretrained(out / "judge-hf")
    assert exported.config.vocab_size == transformers.AutoConfig.from_pretrained(model).vocab_size
    assert transformers.AutoTokenizer.from_pretrained(out / "judge-hf").chat_template

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stderr.count("done before, skipped") == 10

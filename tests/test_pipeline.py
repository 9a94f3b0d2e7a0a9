"""`judgejax pipeline` end to end on a tiny random model with the GPT-4 arena teacher: every
artefact, the counts, the in-domain held-out split, both eval modes with bootstrap intervals, the
paired differences, the report, the exported model in transformers, and a rerun that skips
finished stages."""

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
    train = {"data": {"max_length": 2048, "bucket_lengths": [1024, 2048], "global_batch_size": 8,
                      "drop_remainder": False},
             "optim": {"learning_rate": 1e-3}, "train": {"save_every": 2}}
    config = {
        "output_dir": str(tmp_path / "run"),
        "base_model": str(model),
        "prepare": {"max_rows": 12, "max_chars": 700},
        "synth": {"teacher": "gpt4-arena", "templates": ["pair-v2"], "samples": 1, "policy_samples": 3,
                  "max_new_tokens": 8},
        "arena": {"max_answer_chars": 300, "sft_min_gap": 5},
        "sft": train,
        "dpo": {**train, "dpo": {"beta": 0.1, "nll_weight": 1.0}},
        "eval": {"data": str(REWARDBENCH), "limit_per_subset": 1, "both_orders": True, "max_new_tokens": 4,
                 "batch_size": 8, "subsets": SUBSETS, "modes": ["generative", "verdict-prob"], "heldout_limit": 2},
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
    prepared = done["prepare"]
    assert prepared["kept"] == 12 and prepared["heldout"] == 2 and prepared["decontam_prompts"] == 1
    train = [json.loads(line) for line in (out / "data" / "prefs.jsonl").read_text().splitlines()]
    heldout = [json.loads(line) for line in (out / "data" / "heldout.jsonl").read_text().splitlines()]
    assert not {r["question"] for r in train} & {r["question"] for r in heldout}
    synth = done["synth"]
    sft_rows = sum(r["gap"] >= 5 for r in train)
    assert synth["instructions"] == 24 and synth["sft_examples"] == 2 * sft_rows == 2 * prepared["kept_sft_gap"]
    assert synth["dpo_candidate_instructions"] == 2 * (12 - sft_rows)
    assert len((out / "synth" / "sft.jsonl").read_text().splitlines()) == synth["sft_examples"]
    assert len((out / "synth" / "dpo.jsonl").read_text().splitlines()) == done["synth_dpo"]["dpo_pairs"]
    for name in ("base", "sft", "dpo"):
        assert done[f"eval_{name}"]["peak_rss_gb"] > 0
        assert set(done[f"eval_{name}"]) - {"seconds", "peak_rss_gb", "rss_after_gb"} == {f"{b}-{m}" for b in ("rewardbench", "heldout")
                                                          for m in ("generative", "verdict-prob")}
        rb = json.loads((out / "eval" / name / "rewardbench-verdict-prob" / "summary.json").read_text())
        assert rb["num_examples"] == len(SUBSETS) and rb["num_judgements"] == 2 * len(SUBSETS)
        assert set(rb["intervals"]["groups"]) == {"Chat", "Chat Hard", "Safety", "Reasoning"}
        held = json.loads((out / "eval" / name / "heldout-generative" / "summary.json").read_text())
        assert held["num_judgements"] == 4
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["differences"]) == {"sft-base", "dpo-sft", "dpo-base"}
    diff = summary["differences"]["dpo-sft"]["heldout-verdict-prob"]["overall"]
    assert diff["num_examples"] == 2 and len(diff["mean_accuracy"]["ci"]) == 2
    assert diff["num_clusters"] == len({r["question"] for r in heldout})  # resampled by prompt
    assert summary["judges"]["sft"]["heldout-generative"]["intervals"]["clustered"]
    assert summary["judges"]["base"]["rewardbench-generative"]["intervals"]["overall"]["both_correct"]["ci"]
    report = (out / "report.md").read_text()
    for section in ("## Judges", "### heldout-generative", "### rewardbench-verdict-prob", "### Paired differences",
                    "| dpo-sft |", "## Data at each filter", "## Training", "## General ability: MT-Bench",
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

    # --report-only: the report of what is finished, an unfinished run marked as not run
    import shutil

    shutil.rmtree(out / "eval" / "dpo" / "heldout-generative")
    third = subprocess.run(cmd + ["--report-only"], capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "| dpo | not run |" in (out / "report.md").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert "heldout-generative" not in summary["judges"]["dpo"] and "heldout-generative" in summary["judges"]["sft"]

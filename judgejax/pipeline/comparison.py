"""The judges of a pipeline side by side: each judge's scores with 95% bootstrap intervals on every
benchmark run, and paired intervals of the differences (SFT - base, DPO - SFT, DPO - base) on the
same examples, read from the evaluation folders' per-example records. The in-domain held-out pairs
are resampled by prompt (the pairs of one prompt share its question and answers); RewardBench
rows one by one."""
from __future__ import annotations

import pathlib
import platform
from typing import Any

from judgejax.data.jsonl import read_appended
from judgejax.eval.bootstrap import run_differences, run_intervals
from judgejax.eval.shards import MERGED
from judgejax.eval.summary import SECTION_OF
from judgejax.sources.arena import prompt_of_example

JUDGES = ("base", "sft", "dpo")
DIFFERENCES = (("sft", "base"), ("dpo", "sft"), ("dpo", "base"))


def _records(folder: pathlib.Path) -> list[dict]:
    return read_appended(folder / MERGED)


def _group_of(run: str):
    return (lambda subset: SECTION_OF[subset]) if run.startswith("rewardbench") else str


def _cluster_of(run: str):
    return prompt_of_example if run.startswith("heldout") else None


def judge_scores(summary: dict, records: list[dict], run: str, seed: int) -> dict[str, Any]:
    """What the comparison keeps of one evaluation: its score and intervals (recomputed from the
    records, clustered where the run's examples are)."""
    scores = summary.get("scores_both_orders") or summary.get("scores") or {}
    ci = summary.get("intervals")
    if ci and records:  # the pairwise diagnostics need one pair per example: not RewardBench 2's or RM-Bench's
        paired = summary["benchmark"] not in ("rewardbench2", "rmbench")
        ci = run_intervals(records, _group_of(run), seed=seed, cluster_of=_cluster_of(run)) if paired else None
    return {"score": scores.get("overall"), "sections": scores.get("sections"),
            "num_examples": summary.get("num_examples"), "num_judgements": summary.get("num_judgements"),
            "cut_off": summary.get("cut_off"), "loops": summary.get("loops"), "intervals": ci}


def compare(out: pathlib.Path, summaries: dict, seed: int) -> dict[str, Any]:
    """{"judges": {judge: {run: scores}}, "differences": {"sft-base": {run: paired}, ...}}."""
    runs = {name: {run: s for run, s in (summaries.get(f"eval_{name}") or {}).items()
                   if isinstance(s, dict) and "num_examples" in s} for name in JUDGES}
    records = {(name, run): _records(out / "eval" / name / run) for name in JUDGES for run in runs[name]}
    judges = {name: {run: judge_scores(s, records[name, run], run, seed) for run, s in runs[name].items()}
              for name in JUDGES}
    differences: dict[str, dict] = {}
    for b, a in DIFFERENCES:
        for run in sorted(set(judges[a]) & set(judges[b])):
            if records[a, run] and records[b, run] and judges[a][run]["intervals"]:
                differences.setdefault(f"{b}-{a}", {})[run] = run_differences(
                    records[a, run], records[b, run], _group_of(run), seed=seed, cluster_of=_cluster_of(run))
    return {"judges": judges, "differences": differences}


def machine() -> dict[str, Any]:
    import jax

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": __import__("os").cpu_count(), "jax_backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()][:8], "num_devices": jax.device_count()}

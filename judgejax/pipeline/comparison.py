"""The judges of a pipeline side by side: each judge's scores with 95% bootstrap intervals on every
benchmark run, and paired intervals of the differences (SFT - base, DPO - SFT, DPO - base) on the
same examples, read from the evaluation folders' per-example records."""
from __future__ import annotations

import json
import pathlib
import platform
from typing import Any

from judgejax.eval.bootstrap import run_differences
from judgejax.eval.shards import MERGED
from judgejax.eval.summary import SECTION_OF

JUDGES = ("base", "sft", "dpo")
DIFFERENCES = (("sft", "base"), ("dpo", "sft"), ("dpo", "base"))


def _records(folder: pathlib.Path) -> list[dict]:
    path = folder / MERGED
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def _group_of(run: str):
    return (lambda subset: SECTION_OF[subset]) if run.startswith("rewardbench") else str


def judge_scores(summary: dict) -> dict[str, Any]:
    """What the comparison keeps of one evaluation summary."""
    scores = summary.get("scores_both_orders") or summary.get("scores") or {}
    return {"score": scores.get("overall"), "sections": scores.get("sections"),
            "num_examples": summary.get("num_examples"), "intervals": summary.get("intervals")}


def compare(out: pathlib.Path, summaries: dict, seed: int) -> dict[str, Any]:
    """{"judges": {judge: {run: scores}}, "differences": {"sft-base": {run: paired}, ...}}."""
    judges = {name: {run: judge_scores(s) for run, s in (summaries.get(f"eval_{name}") or {}).items()
                     if isinstance(s, dict)} for name in JUDGES}
    differences: dict[str, dict] = {}
    for b, a in DIFFERENCES:
        for run in sorted(set(judges[a]) & set(judges[b])):
            records_a, records_b = _records(out / "eval" / a / run), _records(out / "eval" / b / run)
            if records_a and records_b and "intervals" in (summaries[f"eval_{a}"][run] or {}):
                differences.setdefault(f"{b}-{a}", {})[run] = run_differences(records_a, records_b, _group_of(run),
                                                                              seed=seed)
    return {"judges": judges, "differences": differences}


def machine() -> dict[str, Any]:
    import jax

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": __import__("os").cpu_count(), "jax_backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()][:8], "num_devices": jax.device_count()}

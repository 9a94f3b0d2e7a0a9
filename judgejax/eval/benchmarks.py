"""The judge benchmarks beyond RewardBench v1 (`rewardbench2`, `judgebench`, `rmbench`): how each
is loaded, which judgements a mode makes, how the merged records are scored and reported.
Their summary.json: benchmark, mode, num_examples (prompts), scores (overall, values by name),
intervals (95% bootstrap, prompts resampled, a prompt's judgements together), the rows skipped by
reason, and for generative runs the parse errors, finish reasons, judgements cut off or looping
and the output length."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgejax.eval import judgebench, rewardbench2, rmbench
from judgejax.eval.repetition import loops

PAIR_MODES = ("generative", "verdict-prob")


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    modes: tuple[str, ...]  # the first is the default
    hub: str  # Hugging Face dataset id and split of the published data
    load: Callable[[str | Path], tuple[list[Any], Any]]
    plan: Callable[[Sequence[Any], str, int], list[Any]]
    summarize: Callable[[Sequence[Mapping[str, Any]], str, int], dict[str, Any]]
    report: Callable[[Mapping[str, Any]], list[str]]
    protocol: str
    shipped: Path | None = None  # the data judgejax ships (where its license allows)


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("rewardbench2", "RewardBench 2", rewardbench2.MODES, "allenai/reward-bench-2:test", rewardbench2.load,
              rewardbench2.plan, rewardbench2.summarize, rewardbench2.report,
              "RewardBench 2 as `scripts/run_generative_v2.py` scores it: rankings (four answers, the correct one at "
              "a seeded slot; 1 / 0 / 0.25 for no verdict) or ratings (each answer rated 1-10 alone; 1/k for a k-way "
              "tie at the top, 0.25 when no rating parses); Ties always by ratings with its weighted formula; overall "
              "= mean of the six subsets. The pairwise mode is judgejax's own (the correct answer must win every pair "
              "in both orders), not the official protocol."),
    Benchmark("judgebench", "JudgeBench", PAIR_MODES, "ScalerLab/JudgeBench:gpt", judgebench.load, judgebench.plan,
              judgebench.summarize, judgebench.report,
              "JudgeBench as `utils/metrics.py` scores it: both orders, the second verdict read back, +1 / -1 / 0 "
              "per order, a pair correct when the sum is positive.", judgebench.GPT4O_SPLIT),
    Benchmark("rmbench", "RM-Bench", (*PAIR_MODES, "ratings"), "THU-KEG/RM-Bench:train", rmbench.load, rmbench.plan,
              rmbench.summarize, rmbench.report,
              "RM-Bench as `scripts/utils.py` `compute_accuracy` scores it: the 3x3 style matrix per domain, hard = "
              "upper triangle, normal = diagonal, easy = lower triangle; overall = mean over chat, code, math, safety. "
              "A pairwise judge sees each pair in both orders (the cell: share of orders picking the chosen answer)."),
)}


def _generation_stats(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    unparsed = sum(r.get("verdict") == "error" or ("rating" in r and r["rating"] is None) for r in records)
    return {"parse_errors": unparsed, "parse_error_rate": unparsed / len(records),
            "finish_reasons": dict(Counter(r["finish_reason"] for r in records)),
            "cut_off": sum(r["finish_reason"] == "length" for r in records),  # ended by max_new_tokens
            "loops": sum(loops(r["output"]) for r in records),  # repeating themselves (repetition.py)
            "mean_output_tokens": sum(r["n_tokens"] for r in records) / len(records)}


def summarize(records: Sequence[Mapping[str, Any]], run: Mapping[str, Any]) -> dict[str, Any]:
    spec = run["spec"]
    bench = BENCHMARKS[spec["benchmark"]]
    summary = {"benchmark": bench.name, "mode": spec["mode"], "num_judgements": len(records),
               **bench.summarize(records, spec["mode"], spec["seed"]), "bad_input": run["bad_input"]}
    if spec["mode"] != "verdict-prob":
        summary |= _generation_stats(records)
    else:
        summary["parse_error_rate"] = sum(r["verdict"] == "error" for r in records) / len(records)
    return summary


def write_report(out_dir: Path, summary: Mapping[str, Any], run: Mapping[str, Any]) -> Path:
    bench, spec, bad = BENCHMARKS[summary["benchmark"]], run["spec"], summary["bad_input"]
    lines = [f"# {bench.title} evaluation · {summary['mode']}", "",
             "Options (`judgejax eval` arguments of the run):", "", "```json", json.dumps(run["options"], indent=1),
             "```", "", f"- model: `{spec['model']}`",
             f"- data: `{spec['data']}` (sha256 {spec['data_sha256'][:16]}…); rows skipped: {bad['skipped']}"
             + (f" ({', '.join(f'{k}: {v}' for k, v in bad['by_reason'].items())})" if bad["skipped"] else ""),
             f"- prompts: {summary['num_examples']} ({summary['num_judgements']} judgements); subsets: "
             f"{', '.join(spec['subsets']) if spec['subsets'] else 'all'}; per-subset limit: "
             f"{spec['limit_per_subset'] or 'none'}; seed {spec['seed']}",
             f"- parse errors: {100 * summary['parse_error_rate']:.1f}% of judgements", "",
             "## Scores (x100, 95% bootstrap intervals over prompts)", "", *bench.report(summary), "",
             "## Protocol", "", bench.protocol, ""]
    for reason, rows in bad["examples"].items():
        lines += [f"Skipped ({reason}), e.g.: " + "; ".join(rows), ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def hub_data(data: str, out: str, default_split: str) -> str:
    """`data` itself when it is a path; a Hugging Face dataset id ("owner/name[:split]") is
    downloaded once into `out`/hub-data (a `datasets` folder) and that folder returned. Only this
    names the hub: nothing else reaches the network."""
    dataset_id, _, split = data.partition(":")
    if Path(data).exists() or dataset_id.count("/") != 1 or data.startswith((".", "/")) or Path(dataset_id).suffix:
        return data  # a path (a missing one is reported by the reader)
    split = split or default_split
    folder = Path(out) / "hub-data" / f"{dataset_id.replace('/', '+')}+{split}"
    if not folder.is_dir():
        import datasets

        datasets.load_dataset(dataset_id, split=split).save_to_disk(str(folder))
    return str(folder)


def decontamination_references(specs: Sequence[str]) -> list[tuple[str, str]]:
    """(key, prompt) of evaluation prompts to check training rows against, from "BENCHMARK=PATH"
    (rewardbench2, judgebench, rmbench: the benchmark's usable rows) or a plain PATH (a RewardBench
    v1 parquet). RM-Bench's prompts are RewardBench's with new answers: check against both."""
    from judgejax.judge.decontam import rewardbench_references

    references: list[tuple[str, str]] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            references += rewardbench_references(spec)
            continue
        if name not in BENCHMARKS:
            raise ValueError(f"decontamination set {spec!r}: BENCHMARK=PATH with BENCHMARK one of {sorted(BENCHMARKS)}, "
                             "or the path of a RewardBench v1 parquet")
        rows, _ = BENCHMARKS[name].load(path)
        references += [(f"{name}:{r.swap_key}", r.prompt) for r in rows]
    return references

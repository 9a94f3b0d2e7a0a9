"""Collect the judge-quality experiment's tiers into results/judge-quality/{summary.json, report.md}.

    python tools/judge_quality_report.py --tier cpu=runs/judge-quality-cpu \
        [--tier accelerator=runs/judge-quality-gpu] [--not-run accelerator="why"] --out results/judge-quality

Each tier is a finished `judgejax pipeline` run (its summary.json: every judge's scores with 95%
bootstrap intervals, the paired differences, the command, config, stage times and machine). The
report shows, per tier, each benchmark run with base / SFT / DPO side by side, the paired
differences, and the CPU tier's targets, met or missed."""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from judgejax.eval.bootstrap import format_interval  # noqa: E402
from judgejax.pipeline.report import difference_table, run_table, section_table  # noqa: E402

GENERATIVE_RUNS = ("heldout-generative", "rewardbench-generative")


def _metric(summary: dict, judge: str, run: str, metric: str, group: str | None = None) -> dict | None:
    intervals = (summary["judges"].get(judge, {}).get(run) or {}).get("intervals") or {}
    part = intervals.get("groups", {}).get(group, {}) if group else intervals.get("overall", {})
    return part.get(metric)


def targets(summary: dict) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for the CPU tier's targets (generative runs, both-order accuracy)."""
    out = []
    for later, earlier in (("sft", "base"), ("dpo", "sft")):
        diffs = {run: summary["differences"].get(f"{later}-{earlier}", {}).get(run, {}).get("overall", {})
                 .get("mean_accuracy") for run in GENERATIVE_RUNS}
        shown = "; ".join(f"{run}: {format_interval(d)}" for run, d in diffs.items())
        met = any(d and d["ci"] and d["ci"][0] > 0 for d in diffs.values())
        out.append((f"{later.upper()} - {earlier} both-order accuracy, paired 95% interval above 0 (on either run)",
                    shown, met))
    held = _metric(summary, "dpo", "heldout-generative", "mean_accuracy")
    chat = _metric(summary, "dpo", "rewardbench-generative", "mean_accuracy", "Chat")
    overall = _metric(summary, "dpo", "rewardbench-generative", "mean_accuracy")
    p_a = _metric(summary, "dpo", "rewardbench-generative", "p_verdict_a")
    consistency = _metric(summary, "dpo", "rewardbench-generative", "consistency")

    def at_least(m, bound):
        return None if not m or m["value"] is None else m["value"] >= bound

    out += [("DPO in-domain held-out both-order accuracy >= 75", format_interval(held), at_least(held, 0.75)),
            ("DPO RewardBench Chat both-order accuracy >= 65", format_interval(chat), at_least(chat, 0.65)),
            ("DPO RewardBench overall both-order accuracy >= 56", format_interval(overall), at_least(overall, 0.56)),
            ("DPO P(verdict=A) within 0.40-0.60", format_interval(p_a, 1, 2),
             None if not p_a or p_a["value"] is None else 0.4 <= p_a["value"] <= 0.6),
            ("DPO consistency >= 50%", format_interval(consistency), at_least(consistency, 0.5))]
    return out


def tier_lines(name: str, summary: dict) -> list[str]:
    runs = sorted({run for judge in summary["judges"].values() for run in judge})
    minutes = sum(s or 0 for s in summary["seconds"].values()) / 60
    lines = [f"## Tier: {name}", "", f"Command: `{summary['command']}`; stage times summed: {minutes:.0f} min; "
             f"machine: {summary['machine']['processor']}, {summary['machine']['cpus']} CPUs, JAX backend "
             f"`{summary['machine']['jax_backend']}`.", ""]
    for run in runs:
        lines += [f"### {run}", "", *run_table(run, summary["judges"]), "", *section_table(run, summary["judges"])]
    lines += ["### Paired differences (same examples, same bootstrap draws)", "",
              *difference_table(summary["differences"]), ""]
    if name == "cpu":
        lines += ["### Targets", "", "| target | measured | met |", "|---|---|---|",
                  *(f"| {t} | {m} | {'–' if ok is None else 'yes' if ok else 'no'} |" for t, m, ok in targets(summary)), ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tier", action="append", default=[], metavar="NAME=RUN_DIR", help="a finished pipeline run")
    parser.add_argument("--not-run", action="append", default=[], metavar="NAME=WHY", help="a tier not run, and why")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("results/judge-quality"))
    args = parser.parse_args()
    tiers, not_run = {}, dict(t.split("=", 1) for t in args.not_run)
    for spec in args.tier:
        name, _, folder = spec.partition("=")
        path = pathlib.Path(folder) / "summary.json"
        if not path.is_file():
            parser.error(f"--tier {spec}: {path} not found (run `judgejax pipeline` to the end first)")
        tiers[name] = json.loads(path.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps({"tiers": tiers, "not_run": not_run}, indent=1) + "\n")
    lines = ["# Judge quality: base → SFT → DPO (+NLL) with GPT-4 as the teacher", "",
             "Scores in percent (P(verdict=A) as a share) with 95% bootstrap intervals over examples, both A/B orders "
             "of an example resampled together; differences are paired on the same examples. Rebuilt by "
             "`python tools/judge_quality_report.py " + " ".join(f"--tier {t}" for t in args.tier) + "`.", ""]
    for name, summary in tiers.items():
        lines += tier_lines(name, summary)
    for name, why in not_run.items():
        lines += [f"## Tier: {name}", "", f"Not run: {why}", ""]
    (args.out / "report.md").write_text("\n".join(lines))
    print(f"wrote {args.out / 'summary.json'} and {args.out / 'report.md'}")


if __name__ == "__main__":
    main()

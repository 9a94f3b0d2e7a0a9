"""Collect the judge-quality experiment's tiers into results/judge-quality/{summary.json, report.md}.

    python tools/judge_quality_report.py --tier cpu=runs/judge-quality-cpu \
        [--tier gpu=runs/judge-quality-h100 --ablation gpu=runs/sft-data-ablation/ablation.json \
         --machine gpu="NVIDIA H100 80GB HBM3"] [--not-run gpu="why"] --out results/judge-quality

Each tier is a finished `judgejax pipeline` run (its summary.json: every judge's scores with 95%
bootstrap intervals, the paired differences, the command, config, stage times and machine); a tier
may add the SFT data-amount ablation (`tools/sft_data_ablation.py`'s ablation.json) and a line
naming its machine. The report shows, per tier, each benchmark run with base / SFT / DPO side by
side, the paired differences, the stage times, the ablation table, and the tier's targets (`cpu`,
`gpu`), met or missed."""
from __future__ import annotations

import argparse
import json
import pathlib
import shlex
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from judgejax.eval.bootstrap import format_interval  # noqa: E402
from judgejax.pipeline.report import difference_table, run_table, section_table  # noqa: E402

GENERATIVE_RUNS = ("heldout-generative", "rewardbench-generative")
ABLATION_METRICS = (("mean_accuracy", "both-order accuracy"), ("consistency", "consistency"),
                    ("p_verdict_a", "P(verdict=A)"))


def _metric(summary: dict, judge: str, run: str, metric: str, group: str | None = None) -> dict | None:
    intervals = (summary["judges"].get(judge, {}).get(run) or {}).get("intervals") or {}
    part = intervals.get("groups", {}).get(group, {}) if group else intervals.get("overall", {})
    return part.get(metric)


def at_least(metric: dict | None, bound: float) -> bool | None:
    return None if not metric or metric["value"] is None else metric["value"] >= bound


def within(metric: dict | None, low: float, high: float) -> bool | None:
    return None if not metric or metric["value"] is None else low <= metric["value"] <= high


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
    out += [("DPO in-domain held-out both-order accuracy >= 75", format_interval(held), at_least(held, 0.75)),
            ("DPO RewardBench Chat both-order accuracy >= 65", format_interval(chat), at_least(chat, 0.65)),
            ("DPO RewardBench overall both-order accuracy >= 56", format_interval(overall), at_least(overall, 0.56)),
            ("DPO P(verdict=A) within 0.40-0.60", format_interval(p_a, 1, 2), within(p_a, 0.4, 0.6)),
            ("DPO consistency >= 50%", format_interval(consistency), at_least(consistency, 0.5))]
    return out


def gpu_targets(summary: dict, ablation: dict | None) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for the GPU tier's targets (RewardBench generative, both-order accuracy)."""
    run, out = "rewardbench-generative", []
    for later, earlier in (("sft", "base"), ("dpo", "sft")):
        diff = summary["differences"].get(f"{later}-{earlier}", {}).get(run, {}).get("overall", {}).get("mean_accuracy")
        out.append((f"{later.upper()} - {earlier} RewardBench both-order accuracy, paired 95% interval above 0",
                    format_interval(diff), None if not diff or not diff.get("ci") else diff["ci"][0] > 0))
    overall = _metric(summary, "dpo", run, "mean_accuracy")
    chat = _metric(summary, "dpo", run, "mean_accuracy", "Chat")
    p_a = _metric(summary, "dpo", run, "p_verdict_a")
    out += [("DPO RewardBench overall both-order accuracy >= 60", format_interval(overall), at_least(overall, 0.60)),
            ("DPO RewardBench Chat both-order accuracy >= 70", format_interval(chat), at_least(chat, 0.70)),
            ("DPO P(verdict=A) within 0.40-0.60", format_interval(p_a, 1, 2), within(p_a, 0.4, 0.6))]
    trained = [p for p in (ablation or {}).get("points", []) if p["fraction"] > 0]
    values = [p["heldout"]["mean_accuracy"]["value"] for p in trained]
    rising = None if len(values) < 2 or None in values else all(b >= a for a, b in zip(values, values[1:])) \
        and values[-1] > values[0]
    out.append(("Ablation: held-out both-order accuracy rises with the SFT share",
                " → ".join(f"{p['fraction']:g}: {format_interval(p['heldout']['mean_accuracy'])}" for p in trained)
                or "not run", rising))
    return out


def ablation_table(points: list[dict]) -> list[str]:
    """The SFT data-amount ablation (tools/sft_data_ablation.py's points) as Markdown table lines."""
    def cell(metric: dict | None, name: str) -> str:
        return format_interval(metric, 1, 2) if name == "p_verdict_a" else format_interval(metric)

    header = ["SFT share", "pairs", "examples", "steps", "last loss",
              *(f"held-out {label}" for _, label in ABLATION_METRICS),
              *(f"RB sample {label}" for _, label in ABLATION_METRICS), "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for p in points:
        cells = [f"{p['fraction']:g}", p["pairs"], p["examples"], p["steps"],
                 "–" if p["last_loss"] is None else f"{p['last_loss']:.3f}",
                 *(cell(p["heldout"].get(m), m) for m, _ in ABLATION_METRICS),
                 *(cell(p["rewardbench"].get(m), m) for m, _ in ABLATION_METRICS), p.get("seconds", "–")]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines


def tier_lines(name: str, summary: dict, ablation: dict | None = None, machine: str | None = None) -> list[str]:
    runs = sorted({run for judge in summary["judges"].values() for run in judge})
    minutes = sum(s or 0 for s in summary["seconds"].values()) / 60
    stages = ", ".join(f"{stage} {s:.0f} s" for stage, s in summary["seconds"].items() if s is not None)
    lines = [f"## Tier: {name}", "", f"Command: `{summary['command']}`; stage times summed: {minutes:.0f} min "
             f"({stages}); machine: {machine + ', ' if machine else ''}{summary['machine']['processor']}, "
             f"{summary['machine']['cpus']} CPUs, JAX backend `{summary['machine']['jax_backend']}`.", ""]
    for run in runs:
        lines += [f"### {run}", "", *run_table(run, summary["judges"]), "", *section_table(run, summary["judges"])]
    lines += ["### Paired differences (same examples, same bootstrap draws)", "",
              *difference_table(summary["differences"]), ""]
    if ablation:
        lines += ["### SFT data-amount ablation", "",
                  f"`{ablation['command']}`: SFT on nested shares of the {ablation['sft_pairs']} SFT pairs (config's "
                  f"settings and epochs), each judge scored {ablation['mode']} in both orders on the "
                  f"{ablation['heldout_pairs']} held-out pairs (intervals resampled by prompt) and on "
                  f"{ablation['rewardbench_per_subset']} RewardBench rows per subset.", "",
                  *ablation_table(ablation["points"]), ""]
    tier_targets = {"cpu": lambda: targets(summary), "gpu": lambda: gpu_targets(summary, ablation)}.get(name)
    if tier_targets:
        lines += ["### Targets", "", "| target | measured | met |", "|---|---|---|",
                  *(f"| {t} | {m} | {'–' if ok is None else 'yes' if ok else 'no'} |" for t, m, ok in tier_targets()), ""]
    return lines


def named(specs: list[str], option: str, parser: argparse.ArgumentParser) -> dict[str, str]:
    """NAME=VALUE options as {NAME: VALUE}."""
    pairs = [spec.partition("=") for spec in specs]
    bad = [f"{name}{sep}{value}" for name, sep, value in pairs if not (name and sep)]
    if bad:
        parser.error(f"{option} {bad[0]}: expected NAME=VALUE")
    return {name: value for name, _, value in pairs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tier", action="append", default=[], metavar="NAME=RUN_DIR",
                        help="a finished pipeline run (repeatable; none by default)")
    parser.add_argument("--ablation", action="append", default=[], metavar="NAME=ABLATION_JSON",
                        help="the tier's SFT data-amount ablation, tools/sft_data_ablation.py's ablation.json "
                             "(repeatable; none by default)")
    parser.add_argument("--machine", action="append", default=[], metavar="NAME=TEXT",
                        help="the tier's machine in words, e.g. the GPU (repeatable; default: the run's own record)")
    parser.add_argument("--not-run", action="append", default=[], metavar="NAME=WHY",
                        help="a tier not run, and why (repeatable; none by default)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("results/judge-quality"),
                        help="folder for summary.json and report.md (default: results/judge-quality)")
    args = parser.parse_args(argv)
    not_run, machines = named(args.not_run, "--not-run", parser), named(args.machine, "--machine", parser)
    tiers, ablations = {}, {}
    for name, folder in named(args.tier, "--tier", parser).items():
        path = pathlib.Path(folder) / "summary.json"
        if not path.is_file():
            parser.error(f"--tier {name}={folder}: {path} not found (run `judgejax pipeline` to the end first)")
        tiers[name] = json.loads(path.read_text())
    for name, file in named(args.ablation, "--ablation", parser).items():
        if name not in tiers:
            parser.error(f"--ablation {name}={file}: no --tier {name}")
        if not pathlib.Path(file).is_file():
            parser.error(f"--ablation {name}={file}: not found (run tools/sft_data_ablation.py first)")
        ablations[name] = json.loads(pathlib.Path(file).read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps({"tiers": tiers, "ablations": ablations, "machines": machines,
                                                       "not_run": not_run}, indent=1) + "\n")
    lines = ["# Judge quality: base → SFT → DPO (+NLL) with GPT-4 as the teacher", "",
             "Scores in percent (P(verdict=A) as a share) with 95% bootstrap intervals over examples, both A/B orders "
             "of an example resampled together; differences are paired on the same examples. Rebuilt by "
             "`python tools/judge_quality_report.py " + shlex.join(sys.argv[1:] if argv is None else argv) + "`.", ""]
    for name, summary in tiers.items():
        lines += tier_lines(name, summary, ablations.get(name), machines.get(name))
    for name, why in not_run.items():
        lines += [f"## Tier: {name}", "", f"Not run: {why}", ""]
    (args.out / "report.md").write_text("\n".join(lines))
    print(f"wrote {args.out / 'summary.json'} and {args.out / 'report.md'}")


if __name__ == "__main__":
    main()

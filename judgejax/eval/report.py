"""The human-readable report of a merged run: `report.md` with the scores (x100), the published
anchors beside them, the both-order diagnostics and the options that produced them, and a bar
chart (`scores.png`) per RewardBench section (per subset for generic pairwise sets)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from judgejax.eval.anchors import ANCHORS  # noqa: E402
from judgejax.eval.bootstrap import interval_table  # noqa: E402
from judgejax.eval.scoring import SUBSET_MAPPING  # noqa: E402

CHART = "scores.png"
REPORT = "report.md"
# Score variants a summary may hold: (key, label).
VARIANTS = (
    ("scores", "seeded order"),
    ("scores_last_tag", "seeded order, last-tag rule"),
    ("scores_both_orders", "both orders"),
    ("scores_both_orders_last_tag", "both orders, last-tag rule"),
)
PROTOCOL = {
    "generative": "Generative judging: the judge prompt through the model's chat template (tokenized once, no "
                  "second BOS), greedy decoding. Where this differs from the official script: each example's A/B "
                  "order is seeded and recorded (`swapped` in `results.jsonl`); the last-tag rule and, with both "
                  "orders, the both-order diagnostics are reported beside the official rule.",
    "verdict-prob": "Verdict probability: no generation; the verdict is the likelier of the template's A and B "
                    "verdict texts as a continuation of the judge prompt. A fast screen, not the official protocol.",
    "implicit-reward": "Implicit reward (how RewardBench scores DPO models): reward = summed completion log-prob "
                       "under the policy minus under the reference; an example scores 1 only if the chosen answer's "
                       "reward is strictly higher.",
}
DIAGNOSTICS = (("diagnostics", "verdict rule of `result`"), ("diagnostics_last_tag", "last-tag rule"))


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _groups(summary: dict[str, Any]) -> list[str]:
    if summary["benchmark"] == "rewardbench":
        return [s for s in SUBSET_MAPPING if s in summary["scores"]["sections"]]
    return sorted(summary["scores"]["subsets"])


def _group_scores(scores: dict[str, Any], benchmark: str) -> dict[str, float]:
    return scores["sections"] if benchmark == "rewardbench" else scores["subsets"]


def _chart(summary: dict[str, Any], path: Path) -> None:
    groups = _groups(summary) + ["Overall"]
    variants = [(key, label) for key, label in VARIANTS if key in summary]
    width = 0.8 / len(variants)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.5 * len(groups) * (1 + len(variants))), 4.5))
    for i, (key, label) in enumerate(variants):
        scores = summary[key]
        values = [100 * _group_scores(scores, summary["benchmark"])[g] for g in groups[:-1]] + [100 * scores["overall"]]
        bars = ax.bar([x + (i - (len(variants) - 1) / 2) * width for x in range(len(groups))], values, width, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=6, rotation=90, padding=2)
    ax.axhline(50, color="grey", linestyle="--", linewidth=1, label="random (50)")
    ax.set_xticks(range(len(groups)), groups, rotation=20 if len(groups) > 6 else 0)
    ax.set_ylim(0, 115)
    ax.set_ylabel("score x100")
    title = f"{summary['benchmark']} · {summary['mode']}"
    if "diagnostics" in summary:
        d = summary["diagnostics"]["overall"]
        p_a = "–" if d["p_verdict_a"] is None else f"{d['p_verdict_a']:.2f}"
        title += (f"\nP(verdict = A) {p_a} · consistency {_pct(d['consistency'])}% · "
                  f"parse errors {_pct(d['parse_error_rate'])}%")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _score_table(summary: dict[str, Any]) -> list[str]:
    benchmark = summary["benchmark"]
    groups = list(SUBSET_MAPPING) if benchmark == "rewardbench" else _groups(summary)
    head = ["", *groups, *(["Overall"] if benchmark == "rewardbench" else ["subset mean", "all examples"])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label in VARIANTS:
        if key not in summary:
            continue
        scores = summary[key]
        by_group = _group_scores(scores, benchmark)
        cells = [_pct(by_group.get(g)) for g in groups]
        tail = [_pct(scores["overall"])] if benchmark == "rewardbench" else [_pct(scores["subset_mean"]), _pct(scores["overall"])]
        lines.append(f"| **this run: {label}** | " + " | ".join(cells + tail) + " |")
    if benchmark == "rewardbench":
        for name, (overall, sections) in ANCHORS.items():
            cells = [f"{sections[g]:.1f}" if sections else "" for g in groups]
            label = name if name == "random" else f"{name} (published)"
            lines.append(f"| {label} | " + " | ".join(cells + [f"{overall:.1f}"]) + " |")
    return lines


def _subset_table(summary: dict[str, Any]) -> list[str]:
    variants = [(key, label) for key, label in VARIANTS if key in summary]
    lines = ["| subset | " + " | ".join(label for _, label in variants) + " |", "|---|" + "---|" * len(variants)]
    if summary["benchmark"] == "rewardbench":
        subsets = [s for subsets in SUBSET_MAPPING.values() for s in subsets if s in summary["scores"]["subsets"]]
    else:
        subsets = sorted(summary["scores"]["subsets"])
    for subset in subsets:
        lines.append(f"| {subset} | " + " | ".join(_pct(summary[key]["subsets"].get(subset)) for key, _ in variants) + " |")
    return lines


def _diagnostic_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for key, label in DIAGNOSTICS:
        if key not in summary:
            continue
        lines += [f"Rule: {label}.", "",
                  "| group | examples | mean accuracy | both orders correct | consistency | P(verdict = A) | parse errors |",
                  "|---|---|---|---|---|---|---|"]
        rows = [("all", summary[key]["overall"]), *summary[key]["groups"].items()]
        for name, d in rows:
            p_a = "–" if d["p_verdict_a"] is None else f"{d['p_verdict_a']:.3f}"
            lines.append(f"| {name} | {d['num_examples']} | {_pct(d['mean_accuracy'])} | {_pct(d['both_correct'])} | "
                         f"{_pct(d['consistency'])} | {p_a} | {_pct(d['parse_error_rate'])}% |")
        lines.append("")
    return lines


def write_report(out_dir: str | Path, summary: dict[str, Any], run: dict[str, Any]) -> Path:
    """Write `report.md` and the chart into `out_dir`; returns the report's path."""
    out_dir = Path(out_dir)
    _chart(summary, out_dir / CHART)
    spec = run["spec"]
    lines = [f"# {summary['benchmark']} evaluation · {summary['mode']}", "",
             "Options (`judgejax eval` arguments of the run):", "", "```json", json.dumps(run["options"], indent=1), "```", "",
             f"- model: `{spec['model']}`" + (f"; reference: `{spec['reference']}`" if spec.get("reference") else ""),
             f"- data: `{spec['data']}` (sha256 {spec['data_sha256'][:16]}…)",
             f"- template: {spec['template'] or '– (plain prompt)'}; seed {spec['seed']}; "
             f"{'both A/B orders' if spec['both_orders'] else 'one seeded A/B order per example'}"
             + (f"; greedy, up to {spec['max_new_tokens']} new tokens" if spec["max_new_tokens"] else ""),
             f"- examples: {summary['num_examples']} ({summary['num_judgements']} judgements); subsets: "
             f"{', '.join(spec['subsets']) if spec['subsets'] else 'all'}; per-subset limit: {spec['limit_per_subset'] or 'none'}",
             ""]
    if summary["benchmark"] == "rewardbench" and not summary["full_benchmark"]:
        missing = summary["scores"]["missing_subsets"]
        lines += [f"**Partial run**: {summary['num_examples']} of 2,985 examples"
                  + (f"; missing subsets {', '.join(missing)}" if missing else "")
                  + ". Scores are not comparable with the published ones.", ""]
    lines += ["## Scores (x100)", "", *_score_table(summary), "", f"![scores]({CHART})", "",
              "## Per subset (x100)", "", *_subset_table(summary), ""]
    if "verdict_counts" in summary:
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(summary["verdict_counts"].items()))
        lines += ["## Verdicts", "", f"Seeded order: {counts}."]
        if "finish_reasons" in summary:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(summary["finish_reasons"].items()))
            lines.append(f"Finish reasons (all judgements): {reasons}; mean output length "
                         f"{summary['mean_output_tokens']:.1f} tokens; repeated-text loops: {summary.get('loops', '–')}.")
        lines.append("")
    if "diagnostics" in summary:
        lines += ["## Both-order diagnostics", "",
                  "Each example judged with the chosen answer shown as A and as B. Consistency: both verdicts pick "
                  "the same answer. P(verdict = A): share of parsed verdicts that say A (0.5 = no position bias).", "",
                  *_diagnostic_lines(summary)]
    if "intervals" in summary:
        i = summary["intervals"]
        lines += ["## 95% bootstrap intervals", "",
                  f"Percentile intervals of {i['resamples']} resamples of the examples (an example's two orders "
                  f"drawn together; seed {i['seed']}), in percent (P(verdict = A) as a share); both correct and "
                  "consistency need both orders.", "",
                  *interval_table(i), ""]
    lines += ["## Protocol", "", PROTOCOL[summary["mode"]]]
    if summary["benchmark"] == "rewardbench":
        lines.append("Scored as the official code does: per-subset means, sections weighted by the official example "
                     "counts (math-prm weighs 984), overall = mean of the four sections.")
    lines.append("")
    path = out_dir / REPORT
    path.write_text("\n".join(lines), encoding="utf-8")
    return path

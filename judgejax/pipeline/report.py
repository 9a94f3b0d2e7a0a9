"""The pipeline's one report: data counts at each filter, training curves, and base vs SFT vs
DPO RewardBench scores side by side, with the commands that produced them."""

from __future__ import annotations

import dataclasses
import json
import pathlib

from judgejax.eval.scoring import SUBSET_MAPPING

MODELS = ("base", "sft", "dpo")


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _score(x) -> str:
    return "–" if x is None else f"{x:.2f}"


def _eval_rows(summaries: dict) -> list[str]:
    header = ["model", "overall", *SUBSET_MAPPING, "both-order acc.", "both correct", "consistency", "P(verdict=A)",
              "parse errors"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in MODELS:
        s = summaries.get(f"eval_{name}") or {}
        scores = s.get("scores_both_orders") or s.get("scores") or {}
        diag = (s.get("diagnostics") or {}).get("overall", {})
        sections = scores.get("sections", {})
        cells = [name, _pct(scores.get("overall")), *(_pct(sections.get(k)) for k in SUBSET_MAPPING),
                 _pct(diag.get("mean_accuracy")), _pct(diag.get("both_correct")), _pct(diag.get("consistency")),
                 f"{diag['p_verdict_a']:.2f}" if diag.get("p_verdict_a") is not None else "–",
                 _pct(diag.get("parse_error_rate"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_report(out: pathlib.Path, config, summaries: dict, command: str) -> pathlib.Path:
    p, syn, sd = summaries["prepare"], summaries["synth"], summaries["synth_dpo"]
    lines = [
        "# judgejax pipeline report", "",
        f"Command: `{command}`", "",
        f"Base model: `{config.base_model}`; teacher: `{config.synth.teacher}`; output: `{out}`.", "",
        "## RewardBench (stratified sample, both A/B orders)", "",
        f"{config.eval.limit_per_subset} rows per subset, template `{config.eval.template}`, greedy, up to "
        f"{config.eval.max_new_tokens} new tokens. Scores are the official section-weighted scores over both "
        "orders (each judgement scored 1 / 0 / 0.5 for no verdict); the per-model folders under `eval/` hold "
        "per-example records, `summary.json`, `report.md` and a per-section chart (`scores.png`).", "",
        *_eval_rows(summaries), "",
        "![base](eval/base/scores.png) ![sft](eval/sft/scores.png) ![dpo](eval/dpo/scores.png)", "",
        "## Data at each filter", "",
        "| stage | count |", "|---|---|",
        f"| preference rows read (shipped data, sources {', '.join(config.prepare.sources)}) | {p['read']} |",
        f"| within max_chars={config.prepare.max_chars or 'no limit'} | {p['within_max_chars']} |",
        f"| kept for synthesis (by source: {json.dumps(p['by_source'])}) | {p['kept']} |",
        f"| dropped by decontamination | {syn.get('dropped_decontamination', 0)} |",
        f"| judge instructions (both orders) | {syn['instructions']} |",
        f"| teacher judgements / parse errors | {syn['judgements']} / {syn['parse_errors']} |",
        f"| rows right in both orders → SFT examples | {syn['sft_rows_consistent_correct']} → {syn['sft_examples']} |",
        f"| DPO candidate instructions (held out: {syn.get('dpo_candidates_held_out', 0)} rows) | "
        f"{syn['dpo_candidate_instructions']} |",
        f"| SFT-judge samples per candidate | {sd['samples_per_candidate']} |",
        f"| DPO pairs (chosen from the label teacher) / dropped all-correct / dropped all-wrong | {sd['dpo_pairs']} "
        f"({sd.get('chosen_from_labels', 0)}) / {sd['dropped_all_correct']} / {sd['dropped_all_wrong']} |", "",
        "## Training", "",
        "| stage | steps | first loss | last loss |", "|---|---|---|---|",
        *(f"| {s} | {summaries[s]['steps']} | {summaries[s]['first_loss']:.4f} | {summaries[s]['last_loss']:.4f} |"
          for s in ("sft", "dpo")), "",
        "![sft loss](sft/loss_curve.png) ![dpo loss](dpo/loss_curve.png)", "",
        "## Stage times", "",
        "| stage | seconds |", "|---|---|",
        *(f"| {name} | {s.get('seconds', '–')} |" for name, s in summaries.items()), "",
        f"Exported judge (HF folder, loads with transformers): `{summaries['export']['folder']}`.", "",
        "## Config", "", "```json", json.dumps(dataclasses.asdict(config), indent=2), "```", "",
    ]
    if "mtbench" in summaries:
        models = summaries["mtbench"]["scores"]["models"]
        lines[-1:-1] = ["## General ability: MT-Bench", "",
                        f"Judge `{config.mtbench.judge}`; full table, chart and commands: "
                        f"`{pathlib.Path(summaries['mtbench']['report']).relative_to(out)}`.", "",
                        "| model | MT-Bench | turn 1 | turn 2 | judgments | rating errors |", "|---|---|---|---|---|---|",
                        *(f"| {m} | {_score(models[m]['overall'])} | {_score(models[m]['turn_1'])} | "
                          f"{_score(models[m]['turn_2'])} | {models[m]['judgments']} | {models[m]['errors']} |"
                          for m in MODELS if m in models), ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path

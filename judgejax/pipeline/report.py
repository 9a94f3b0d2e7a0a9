"""The pipeline's one report: data counts at each filter, training curves, and base vs SFT vs
DPO RewardBench scores side by side, with the commands that produced them."""

from __future__ import annotations

import dataclasses
import json
import pathlib

from judgejax.eval.bootstrap import format_interval
from judgejax.eval.scoring import SUBSET_MAPPING
from judgejax.pipeline.comparison import compare, machine

MODELS = ("base", "sft", "dpo")


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _score(x) -> str:
    return "–" if x is None else f"{x:.2f}"


def _count(x) -> str:
    return "–" if x is None else str(x)


def run_table(run: str, judges: dict) -> list[str]:
    """One benchmark run, a row per judge: score and the diagnostics with their intervals, the
    judgements cut off at max_new_tokens and the repeated-text loops; then one line for each judge
    that wrote no verdict at all."""
    header = ["judge", "score", "accuracy (seeded order)", "acc. (orders judged)", "both correct", "consistency",
              "P(verdict=A)", "parse errors", "cut off", "loops"]
    lines, silent = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)], []
    for name in MODELS:
        got = judges.get(name, {}).get(run)
        if not got:
            lines.append(f"| {name} | not run |" + " |" * (len(header) - 2))
            continue
        ci = (got.get("intervals") or {}).get("overall", {})
        lines.append("| " + " | ".join([
            name, _pct(got.get("score")), format_interval(ci.get("accuracy")), format_interval(ci.get("mean_accuracy")),
            format_interval(ci.get("both_correct")), format_interval(ci.get("consistency")), format_interval(ci.get("p_verdict_a"), 1, 2),
            format_interval(ci.get("parse_error_rate")), _count(got.get("cut_off")), _count(got.get("loops"))]) + " |")
        if (ci.get("parse_error_rate") or {}).get("value") == 1.0:
            silent.append(f"**The {name} judge wrote no verdict in any of its {_count(got.get('num_judgements'))} "
                          f"judgements** ({_count(got.get('cut_off'))} cut off at max_new_tokens, "
                          f"{_count(got.get('loops'))} repeated-text loops): its scores are the no-verdict rule's 50.0, "
                          "not a measurement.")
    return lines + ([""] + silent if silent else [])


def section_table(run: str, judges: dict) -> list[str]:
    """Accuracy over the orders judged per section (RewardBench) or subset, with intervals."""
    groups = sorted({g for name in MODELS for g in ((judges.get(name, {}).get(run) or {}).get("intervals") or {})
                     .get("groups", {})}, key=lambda g: list(SUBSET_MAPPING).index(g) if g in SUBSET_MAPPING else 9)
    if len(groups) < 2:
        return []
    lines = ["| judge | " + " | ".join(groups) + " |", "|" + "---|" * (len(groups) + 1)]
    for name in MODELS:
        got = (judges.get(name, {}).get(run) or {}).get("intervals")
        if got:
            lines.append(f"| {name} | " + " | ".join(format_interval(got["groups"].get(g, {}).get("mean_accuracy")) for g in groups) + " |")
    return ["Accuracy over the orders judged, per section:", "", *lines, ""]


def _negated(metric: dict | None) -> dict | None:
    """A difference of parse-error rates as the difference of verdict rates (1 - parse errors)."""
    if not metric or metric.get("value") is None:
        return metric
    ci = metric.get("ci")
    return {"value": 0.0 - metric["value"], "ci": ci and [0.0 - ci[1], 0.0 - ci[0]]}  # 0.0 - x: no "-0.0"


def difference_table(differences: dict) -> list[str]:
    lines = ["| difference | run | examples | acc. (orders judged) | both correct | consistency | P(verdict=A) | verdict rate |",
             "|---|---|---|---|---|---|---|---|"]
    for pair, runs in differences.items():
        for run, d in runs.items():
            o = d["overall"]
            lines.append(f"| {pair} | {run} | {o['num_examples']} | {format_interval(o['mean_accuracy'])} | {format_interval(o['both_correct'])} | "
                         f"{format_interval(o['consistency'])} | {format_interval(o['p_verdict_a'], 1, 2)} | "
                         f"{format_interval(_negated(o['parse_error_rate']))} |")
    return lines


def _prepare_rows(config, p: dict) -> list[str]:
    if "train_pairs" in p:  # the GPT-4 teacher's arena pairs
        a = config.arena
        return [f"| GPT-4 judgements read / skipped (by reason: {json.dumps(p['skipped'])}) | {p['read']} / "
                f"{sum(p['skipped'].values())} |",
                f"| answers over max_answer_chars={a.max_answer_chars or 'no limit'} | {p.get('answers_too_long', 0)} |",
                f"| prompts dropped by decontamination (RewardBench, MT-Bench) | {p.get('decontam_prompts', 0)} |",
                f"| pairs with rating gap >= {a.min_gap}, <= {a.max_pairs_per_prompt} per prompt: train / held-out "
                f"(prompts) | {p['train_pairs']} ({p['train_prompts']}) / {p['test_pairs']} ({p['test_prompts']}) |",
                f"| train pairs over max_chars={config.prepare.max_chars or 'no limit'} or in a language no "
                f"template has | {p['train_over_max_chars_or_language']} |",
                f"| train pairs kept (gap >= {a.sft_min_gap} → SFT, the rest → DPO) / held-out pairs judged | "
                f"{p['kept']} ({p['kept_sft_gap']} SFT) / {p['heldout']} |"]
    return [f"| preference rows read (shipped data, sources {', '.join(config.prepare.sources)}) | {p['read']} |",
            f"| within max_chars={config.prepare.max_chars or 'no limit'} | {p['within_max_chars']} |",
            f"| kept for synthesis (by source: {json.dumps(p['by_source'])}) | {p['kept']} |"]


def _eval_sections(config, comparison: dict) -> list[str]:
    runs = sorted({run for judge in comparison["judges"].values() for run in judge})
    e = config.eval
    orders = "both orders" if e.both_orders else "one order"
    lines = [f"RewardBench: {e.limit_per_subset or 'every'} row(s) per subset; score = the official section-weighted "
             f"score over {orders} (no verdict counts 0.5), shown without an interval; the intervals are of the "
             "accuracies pooled over the sample's examples. In-domain held-out (`heldout-*`, GPT-4 teacher only): pairs of "
             f"answers to prompts never seen in training, resampled by prompt; score = accuracy. Template `{e.template_name}`; generative runs "
             f"greedy, up to {e.new_token_limit} new tokens. JudgeBench, RM-Bench, RewardBench 2 (`judgebench-*`, "
             "`rmbench-*`, `rewardbench2-*`, where `eval.benchmarks` names them): score = the benchmark's official "
             "score (its intervals in the run's `summary.json`); the diagnostics for JudgeBench only. "
             "Brackets: 95% bootstrap intervals over examples (both "
             "orders of an example resampled together, seeded); both correct and consistency need both orders. "
             "Per-example records, `summary.json` and charts are in `eval/<judge>/<run>/`.", ""]
    for run in runs:
        lines += [f"### {run}", "", *run_table(run, comparison["judges"]), "", *section_table(run, comparison["judges"])]
    if comparison["differences"]:
        lines += ["### Paired differences (same examples, same bootstrap draws)", "",
                  *difference_table(comparison["differences"]), ""]
    return lines


def write_report(out: pathlib.Path, config, summaries: dict, command: str) -> pathlib.Path:
    """report.md, and summary.json: the judges' scores with intervals, their paired differences,
    the command, config, stage times and machine."""
    p, syn, sd = summaries["prepare"], summaries["synth"], summaries["synth_dpo"]
    comparison = compare(out, summaries, config.eval.seed)
    (out / "summary.json").write_text(json.dumps({
        **comparison, "command": command, "config": dataclasses.asdict(config),
        "seconds": {name: s.get("seconds") for name, s in summaries.items()},
        "peak_rss_gb": {name: s.get("peak_rss_gb") for name, s in summaries.items()}, "machine": machine(),
        "data": {"prepare": p, "synth": syn, "synth_dpo": sd}}, indent=1) + "\n")
    lines = [
        "# judgejax pipeline report", "",
        f"Command: `{command}`", "",
        f"Base model: `{config.base_model}`; teacher: `{config.synth.teacher}`; output: `{out}`.", "",
        f"## Judges ({'both A/B orders' if config.eval.both_orders else 'one seeded A/B order per example'})", "",
        *_eval_sections(config, comparison),
        "## Data at each filter", "",
        "| stage | count |", "|---|---|",
        *_prepare_rows(config, p),
        f"| dropped by decontamination | {syn.get('dropped_decontamination', 0)} |",
        f"| judge instructions (both orders) | {syn['instructions']} |",
        f"| teacher judgements / parse errors | {syn['judgements']} / {syn['parse_errors']} |",
        f"| rows right in both orders → SFT examples | {syn['sft_rows_consistent_correct']} → {syn['sft_examples']} |",
        f"| DPO candidate instructions (held out: {syn.get('dpo_candidates_held_out', 0)} rows) | "
        f"{syn['dpo_candidate_instructions']} |",
        f"| SFT-judge samples per candidate | {sd['samples_per_candidate']} |",
        f"| DPO pairs (chosen from the teacher) / dropped all-correct / dropped all-wrong | {sd['dpo_pairs']} "
        f"({sd['chosen_from_teacher']}) / {sd['dropped_all_correct']} / {sd['dropped_all_wrong']} |", "",
        "## Training", "",
        "| stage | steps | first loss | last loss |", "|---|---|---|---|",
        *(f"| {s} | {summaries[s]['steps']} | {summaries[s]['first_loss']:.4f} | {summaries[s]['last_loss']:.4f} |"
          for s in ("sft", "dpo")), "",
        "![sft loss](sft/loss_curve.png) ![dpo loss](dpo/loss_curve.png)", "",
        "## Stage times and memory", "",
        "| stage | seconds | peak resident GB |", "|---|---|---|",
        *(f"| {name} | {s.get('seconds', '–')} | {s.get('peak_rss_gb') or '–'} |" for name, s in summaries.items()),
        f"| all | {round(sum(s.get('seconds') or 0 for s in summaries.values()), 1)} | "
        f"{max((s.get('peak_rss_gb') or 0 for s in summaries.values()), default=0) or '–'} |", "",
        "Peak resident: the process's high-water mark during the stage (the memory each stage frees is returned "
        "to the system when it ends).", "",
        (f"Exported judge (HF folder, loads with transformers): `{summaries['export']['folder']}`." if "export" in
         summaries else "Not exported yet (the export stage has not run)."), "",
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

"""Reports of one judge's grades over every model it graded in an output folder: a Markdown table
per category, a JSON file with all numbers (full precision), a grouped bar chart (PNG), the
ranking, error and truncation counts, the prompt files used and the commands that wrote the folder."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from judgejax.general import alignbench_data, mtbench_data
from judgejax.data.hashing import file_sha256
from judgejax.general.layout import Layout
from judgejax.general.records import read_objects
from judgejax.general.scores import alignbench_scores, mtbench_scores


def write_mtbench_report(layout: Layout, judge: str) -> dict[str, Path]:
    models = {}
    for model in layout.graded_models(judge):
        judgments = [record for _, record in read_objects(layout.judgments(judge, model))]
        models[model] = mtbench_scores(judgments) | _finish_counts(layout, judge, model, judgments)
    columns = [("MT-Bench", "overall"), ("turn 1", "turn_1"), ("turn 2", "turn_2")]
    columns += [(c, ("categories", c)) for c in mtbench_data.CATEGORIES]
    notes = [
        "Scores: FastChat `show_result.py --mode single`: judgments without a parseable rating (score -1) "
        "are dropped; MT-Bench = mean of all remaining judgments (both turns pooled); a category = mean "
        "of its judgments over both turns.",
        "Prompt files: " + ", ".join(f"`{p.name}` sha256 {file_sha256(p)[:16]}"
                                     for p in (mtbench_data.JUDGE_PROMPTS, mtbench_data.REFERENCES)),
    ]
    return _write(layout, judge, "mtbench", f"MT-Bench, judged by {judge}", models, columns, notes,
                  chart_labels=list(mtbench_data.CATEGORIES),
                  chart_values=lambda s: [s["categories"].get(c) for c in mtbench_data.CATEGORIES])


def write_alignbench_report(layout: Layout, judge: str) -> dict[str, Path]:
    models = {}
    for model in layout.graded_models(judge):
        judgments = [record for _, record in read_objects(layout.judgments(judge, model))]
        scores = alignbench_scores(judgments)
        scores["overall_official_errors"] = alignbench_scores(judgments, official_errors=True)["overall"]
        scores["prompts"] = dict(Counter(j["prompt_source"] for j in judgments))
        models[model] = scores | _finish_counts(layout, judge, model, judgments)
    groups = list(alignbench_data.GROUPS)
    categories = [c for members in alignbench_data.GROUPS.values() for c in members]
    columns = [("总分 Overall", "overall")]
    columns += [(f"{g} {alignbench_data.ENGLISH[g]}", ("groups", g)) for g in groups]
    columns += [(f"{c} {alignbench_data.ENGLISH[c]}", ("categories", c)) for c in categories]
    columns += [("总分 with -1 kept", "overall_official_errors")]
    notes = [
        "Scores: AlignBench `show_result.py`: category = mean score of its questions; 中文推理 = mean of "
        "数学计算 and 逻辑推理; 中文语言 = mean of the other six categories; 总分 = mean of the two. "
        "Judgments without a parseable score are excluded here; the official script averages them in "
        "as -1 (column '总分 with -1 kept').",
        "Judge prompts used (judgments per prompt): "
        + "; ".join(f"{m}: {s['prompts']}" for m, s in models.items()),
    ]
    labels = [alignbench_data.ENGLISH[c] for c in categories] + [alignbench_data.ENGLISH[g] for g in groups]
    return _write(layout, judge, "alignbench", f"AlignBench, judged by {judge}", models, columns, notes,
                  chart_labels=labels,
                  chart_values=lambda s: [s["categories"].get(c) for c in categories]
                  + [s["groups"][g] for g in groups])


def _finish_counts(layout: Layout, judge: str, model: str, judgments: list[dict[str, Any]]) -> dict[str, Any]:
    answers: Counter = Counter()
    if layout.answers(model).is_file():
        for _, record in read_objects(layout.answers(model)):
            reasons = record.get("finish_reasons", [record["finish_reason"]] if "finish_reason" in record else [])
            answers.update(reasons)
    return {"answer_finish_reasons": dict(answers),
            "judge_finish_reasons": dict(Counter(j.get("finish_reason", "unknown") for j in judgments))}


def _lookup(scores: dict[str, Any], key: str | tuple[str, str]) -> float | None:
    return scores[key] if isinstance(key, str) else scores[key[0]].get(key[1])


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _write(layout: Layout, judge: str, bench: str, title: str, models: dict[str, dict[str, Any]],
           columns: list[tuple[str, str | tuple[str, str]]], notes: list[str], *,
           chart_labels: list[str], chart_values) -> dict[str, Path]:
    folder = layout.report(judge)
    folder.mkdir(parents=True, exist_ok=True)
    ranking = sorted(models, key=lambda m: -math.inf if models[m]["overall"] is None else models[m]["overall"],
                     reverse=True)
    commands = layout.recorded_commands()
    lines = [f"# {title}", "", "| model | " + " | ".join(h for h, _ in columns) + " | judgments | rating errors |",
             "|---" * (len(columns) + 3) + "|"]
    for model in ranking:
        s = models[model]
        cells = [_fmt(_lookup(s, key)) for _, key in columns]
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {s['judgments']} | {s['errors']} |")
    scored = [m for m in ranking if models[m]["overall"] is not None]
    unscored = [m for m in ranking if models[m]["overall"] is None]
    lines += ["", "Ranking by overall score: " + (" > ".join(scored) or "none")
              + (f" (no overall score: {', '.join(unscored)})" if unscored else ""), ""]
    for model in ranking:
        s = models[model]
        lines.append(f"- {model}: answer finish reasons {s['answer_finish_reasons'] or 'not recorded'}; "
                     f"judge finish reasons {s['judge_finish_reasons']}")
    lines += [""] + [f"- {note}" for note in notes]
    lines += ["", "Commands that wrote this folder:", "", "```"] + commands + ["```", ""]
    paths = {"md": folder / f"{bench}.md", "json": folder / f"{bench}.json", "png": folder / f"{bench}.png"}
    paths["md"].write_text("\n".join(lines), encoding="utf-8")
    paths["json"].write_text(json.dumps({"benchmark": bench, "judge": judge, "ranking": scored, "models": models,
                                         "notes": notes, "commands": commands}, ensure_ascii=False, indent=2),
                             encoding="utf-8")
    _bar_chart(paths["png"], title, chart_labels, {m: chart_values(models[m]) for m in ranking})
    return paths


def _bar_chart(path: Path, title: str, labels: Sequence[str], series: dict[str, list[float | None]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    width = 0.8 / max(len(series), 1)
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(8.0, 0.9 * len(labels) * max(len(series), 1) ** 0.5), 4.5))
    for i, (model, values) in enumerate(series.items()):
        heights = [np.nan if v is None else v for v in values]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width, label=model)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylim(0, 10)
    ax.set_ylabel("score (1-10)")
    ax.set_title(title)
    if series:
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

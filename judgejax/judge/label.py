"""The downstream loop (RISE-Judge's policy experiment): a policy samples two answers per
prompt, the trained judge compares them in both A/B orders, and a pick that agrees in both
orders becomes a preference pair for `judgejax dpo`.

Files in the output folder: answers.jsonl (two answers per prompt), verdicts.jsonl (one greedy
judgement per prompt and order), pairs.jsonl (prompt / chosen / rejected, the DPO trainer's
format, with provenance) and summary.json (counts at each filter). Answers and verdicts are
appended chunk by chunk; a rerun after a crash skips the finished prompts."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections import Counter
from itertools import islice

from pydantic import Field

from judgejax.config import section
from judgejax.data.jsonl import append_jsonl, read_appended, read_jsonl, write_jsonl
from judgejax.judge.records import Instruction, Judgement
from judgejax.judge.synth import ORDERS, ChatTeacher, SynthConfig, instruction, sample_judgements
from judgejax.judge.templates import DEFAULT_TEMPLATE, TEMPLATES
from judgejax.sample.chat import ChatBackend
from judgejax.sources.pair import Pair


@section
class LabelConfig:
    template: str = Field(DEFAULT_TEMPLATE, description="judge template: the judge's prompt and verdict format")
    temperature: float = Field(0.8, description="the policy's sampling temperature (> 0: two answers must differ)")
    max_new_tokens: int = Field(256, description="most tokens of a policy answer")
    judge_max_new_tokens: int = Field(512, description="most tokens of a judgement")
    seed: int = Field(0, description="seed of the policy's sampling and of the A/B order of each judgement")
    chunk: int = Field(64, description="prompts per resumable unit of work")

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise ValueError(f"template {self.template!r}: choose one of {sorted(TEMPLATES)}")
        if self.temperature <= 0:
            raise ValueError(f"temperature={self.temperature}: the policy must sample (> 0) to give two answers")


def _user_message(value) -> str | None:
    """The text of a prompt column: a string, the first of a list of strings (MT-Bench turns), or
    the first user message of a chat (a list of role/content messages)."""
    if isinstance(value, list) and value:
        value = next((m.get("content") for m in value if isinstance(m, dict) and m.get("role") == "user"), value[0])
    return value if isinstance(value, str) and value.strip() else None


def read_prompts(path: pathlib.Path, field: str = "question", limit: int | None = None) -> list[dict]:
    """Prompts from a JSONL file: `field` holds the user message (see `_user_message`); `id` (or
    `question_id`) names the row, else FILE:LINE does. A bad line is an error naming file, line
    and field."""
    prompts, seen = [], set()
    for number, row in islice(read_jsonl(path), limit):
        question = _user_message(row.get(field)) if isinstance(row, dict) else None
        if question is None:
            raise ValueError(f"{path} line {number}, field {field!r}: missing, empty, or not a string, "
                             "a list of strings or a list of chat messages")
        named = row.get("id", row.get("question_id"))
        row_id = str(named) if named is not None else f"{path.name}:{number}"
        if row_id in seen:
            raise ValueError(f"{path} line {number}, field 'id': {row_id!r} appears twice")
        seen.add(row_id)
        prompts.append({"id": row_id, "question": question})
    return prompts


def sample_answers(prompts: list[dict], policy: ChatBackend, config: LabelConfig, path: pathlib.Path) -> list[dict]:
    """Two sampled answers per prompt, appended to `path` chunk by chunk (finished prompts skipped)."""
    done = {a["id"] for a in read_appended(path)}
    todo = [p for p in prompts if p["id"] not in done]
    for start in range(0, len(todo), config.chunk):
        chunk = todo[start:start + config.chunk]
        samples = policy.complete([[{"role": "user", "content": p["question"]}] for p in chunk], n=2,
                                  temperature=config.temperature, max_new_tokens=config.max_new_tokens,
                                  seed=config.seed + start, desc=f"policy {start + len(chunk)}/{len(todo)}")
        append_jsonl(path, [{"id": p["id"], "question": p["question"], "policy": policy.name,
                             "answers": [g.text for g in gens], "finish_reasons": [g.finish_reason for g in gens]}
                            for p, gens in zip(chunk, samples)])
    return read_appended(path)


def distinct(answer: dict) -> bool:
    """Whether a prompt's two answers can be compared: both non-empty and different."""
    first, second = answer["answers"]
    return bool(first) and bool(second) and first != second


def comparisons(answers: list[dict], template: str) -> list[Instruction]:
    """Both orders of each prompt's two answers: answer 0 shown as A, then as B. `chosen_position`
    is where answer 0 stands, so a judgement's `correct` means "answer 0 is better"."""
    out = []
    for a in answers:
        first, second = a["answers"]
        pair = Pair(a["id"], a["policy"], a["id"], TEMPLATES[template].criteria,
                    ({"role": "user", "content": a["question"]},), first, second)
        out += [instruction(pair, TEMPLATES[template], order, swapped) for order, swapped in zip(ORDERS, (False, True))]
    return out


def consistent_pairs(answers: list[dict], verdicts: list[Judgement], judge: str,
                     template: str) -> tuple[list[dict], Counter]:
    """A pair for each prompt whose judge picks the same answer in both orders."""
    by_id: dict[str, dict[str, Judgement]] = {}
    for v in verdicts:
        by_id.setdefault(v.id, {})[v.order] = v
    counts = Counter(dict.fromkeys(("prompts", "identical_or_empty_answers", "judged", "parse_errors",
                                    "inconsistent", "pairs"), 0))
    pairs = []
    for a in answers:
        counts["prompts"] += 1
        if not distinct(a):
            counts["identical_or_empty_answers"] += 1
            continue
        first, second = a["answers"]
        both = by_id.get(a["id"], {})
        if len(both) < len(ORDERS):
            continue
        counts["judged"] += 1
        if any(v.verdict == "error" for v in both.values()):
            counts["parse_errors"] += 1
            continue
        first_wins = {v.correct for v in both.values()}
        if len(first_wins) > 1:
            counts["inconsistent"] += 1
            continue
        winner, loser = (first, second) if first_wins.pop() else (second, first)
        counts["pairs"] += 1
        pairs.append({"prompt": [{"role": "user", "content": a["question"]}], "chosen": winner, "rejected": loser,
                      "id": a["id"], "policy": a["policy"], "judge": judge, "template": template,
                      "verdicts": [both[o].verdict for o in ORDERS]})
    return pairs, counts


def label(prompts: list[dict], policy: ChatBackend, judge: ChatBackend, out: pathlib.Path, config: LabelConfig) -> dict:
    """The whole loop into `out`; returns the summary (also written to summary.json)."""
    out.mkdir(parents=True, exist_ok=True)
    answers = sample_answers(prompts, policy, config, out / "answers.jsonl")
    judging = SynthConfig(templates=(config.template,), samples=1, temperature=0.0,
                          max_new_tokens=config.judge_max_new_tokens, seed=config.seed, chunk=2 * config.chunk)
    todo = comparisons([a for a in answers if distinct(a)], config.template)
    verdicts = sample_judgements(todo, ChatTeacher(judge), judging, out / "verdicts.jsonl", 1, "judge")
    pairs, counts = consistent_pairs(answers, verdicts, judge.name, config.template)
    write_jsonl(out / "pairs.jsonl", pairs)
    summary = {"policy": policy.name, "judge": judge.name, **dataclasses.asdict(config), **dict(counts),
               "share_of_verdicts_A": _share_a(verdicts)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _share_a(verdicts: list[Judgement]) -> float | None:
    """Share of parsed verdicts that pick A (0.5 for a judge without position bias)."""
    parsed = [v.verdict for v in verdicts if v.verdict in ("A", "B")]
    return round(parsed.count("A") / len(parsed), 3) if parsed else None

"""Judge-data synthesis (RISE-Judge stages 1-4).

1. Each preference row becomes a judge instruction: a template drawn per row (by domain and
   language, from a hash of seed and row id) and an A/B order drawn per row (`swap_for`).
2. The teacher samples k judgements of the instruction in both A/B orders.
3. Verdicts are parsed; a row whose teacher is right in both orders (dual verification) gives
   SFT rows (instruction -> the teacher's correct judgement, one per order); every other row is
   a DPO candidate (difficulty-based stratification).
4. (`dpo_pairs`) The SFT model samples n judgements per DPO candidate; a correct one is chosen,
   a wrong one rejected, written in the preference format the DPO trainer reads.

Every row carries provenance. Work is appended to `judgements.jsonl` batch by batch, so a rerun
after a crash skips what is done."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
from collections import Counter
from typing import Iterable, Protocol, Sequence

from pydantic import Field

from judgejax.config import section
from judgejax.data.hashing import seeded_int, seeded_share
from judgejax.data.jsonl import append_jsonl, write_jsonl
from judgejax.judge.decontam import Decontaminator
from judgejax.judge.records import Instruction, Judgement, read_records, to_json
from judgejax.judge.templates import DEFAULT_TEMPLATE, TEMPLATES, JudgeTemplate, pair_messages, swap_for
from judgejax.sample.chat import ChatBackend, Generation
from judgejax.sources.pair import Pair

ORDERS = ("drawn", "flipped")
CJK = re.compile(r"[\u3400-\u9fff]")


@section
class SynthConfig:
    templates: tuple[str, ...] = Field(tuple(name for name in TEMPLATES if name != DEFAULT_TEMPLATE),
                                       description="judge templates, one drawn per row by its language and domain")
    samples: int = Field(2, description="teacher judgements per instruction and order (stage dpo: per candidate)")
    temperature: float = Field(0.7, description="the teacher's sampling temperature")
    max_new_tokens: int = Field(512, description="most tokens of a judgement")
    seed: int = Field(0, description="seed of the template and A/B order drawn per row and of the teacher's sampling")
    chunk: int = Field(64, description="rows per resumable unit of work")

    def __post_init__(self) -> None:
        unknown = [t for t in self.templates if t not in TEMPLATES]
        if unknown or not self.templates:
            raise ValueError(f"synth.templates: {list(self.templates)}; choose one or more of {sorted(TEMPLATES)}")


def language_of(text: str) -> str:
    """"zh" for a text with CJK characters, else "en" (the templates' languages)."""
    return "zh" if CJK.search(text) else "en"


def draw_template(pair: Pair, names: Sequence[str], seed: int) -> JudgeTemplate:
    """A template matching the pair's language, preferring its domain's criteria (else general)."""
    language = language_of(pair.question)
    pool = [TEMPLATES[n] for n in names if TEMPLATES[n].language == language]
    if not pool:
        raise ValueError(f"row {pair.id}: no template in {list(names)} for language {language!r}")
    matching = [t for t in pool if t.criteria == pair.domain] or [t for t in pool if t.criteria == "general"] or pool
    return matching[seeded_int(seed, "template", pair.id) % len(matching)]


def instruction(pair: Pair, template: JudgeTemplate, order: str, swapped: bool) -> Instruction:
    """The judge instruction of a preference pair in one order (`swapped`: chosen shown as B)."""
    messages, chosen_position = pair_messages(template, pair.question, pair.chosen, pair.rejected, swapped)
    return Instruction(pair.id, pair.source, pair.source_row, pair.domain, template.name, order, messages,
                       chosen_position, swapped)


def build_instructions(pairs: Iterable[Pair], config: SynthConfig) -> list[Instruction]:
    """Stage 1: the drawn order and its flip for every pair, with provenance."""
    out = []
    for pair in pairs:
        template = draw_template(pair, config.templates, config.seed)
        swapped = swap_for(config.seed, pair.id)
        out += [instruction(pair, template, order, s) for order, s in zip(ORDERS, (swapped, not swapped))]
    return out


class Teacher(Protocol):
    """What synthesis asks of a teacher: `n` judgements per instruction (an instruction carries its
    row id, order, template, messages and chosen position), and which rows it sends straight to
    the DPO candidates instead of judging them."""

    name: str

    def judge(self, instructions: Sequence[Instruction], n: int, config: SynthConfig,
              desc: str) -> list[list[Generation]]: ...

    def holds_out(self, pair: Pair) -> bool: ...


class ChatTeacher:
    """A chat backend (a local model or an endpoint) sampling judgements of the instructions' messages."""

    def __init__(self, backend: ChatBackend):
        self.backend = backend
        self.name = backend.name

    def judge(self, instructions: Sequence[Instruction], n: int, config: SynthConfig,
              desc: str) -> list[list[Generation]]:
        return self.backend.complete([i.messages for i in instructions], n=n, temperature=config.temperature,
                                     max_new_tokens=config.max_new_tokens, seed=config.seed, desc=desc)

    def holds_out(self, pair: Pair) -> bool:
        return False


class WritingTeacher:
    """A teacher that writes each instruction's correct judgement itself (`text(instruction)`), the
    same for every sample; also the chosen judgement of a DPO candidate the policy never gets right."""

    def judge(self, instructions: Sequence[Instruction], n: int, config: SynthConfig | None = None,
              desc: str = "") -> list[list[Generation]]:
        return [[Generation(self.text(inst), "stop", 0)] * n for inst in instructions]


class LabelTeacher(WritingTeacher):
    """A teacher that knows the label: a short fixed analysis ending in the correct verdict, in the
    template's language and format. For CPU demos and for bootstrapping the judge format when no
    strong teacher is at hand; it teaches the format and the label, not a real analysis. It holds a
    seeded `dpo_share` of the rows out for the DPO stage (it is never wrong, so stage 3 sends
    nothing there)."""

    name = "labels"
    ANALYSIS = {
        "en": "Comparing the two answers to the question, Assistant {w}'s answer is more accurate, relevant "
              "and helpful, while Assistant {l}'s answer is weaker.",
        "zh": "比较两个回答：助手{w}的回答更准确、更相关、更有帮助，而助手{l}的回答较弱。",
    }

    def __init__(self, dpo_share: float = 0.0, seed: int = 0):
        self.dpo_share, self.seed = dpo_share, seed

    def text(self, inst: Instruction) -> str:
        template = TEMPLATES[inst.template]
        w = inst.chosen_position
        return template.judgement(self.ANALYSIS[template.language].format(w=w, l="B" if w == "A" else "A"), w)

    def holds_out(self, pair: Pair) -> bool:
        """A seeded hash draw of the pair's id."""
        return seeded_share(self.seed, "dpo", pair.id) < self.dpo_share


def sample_judgements(instructions: list[Instruction], teacher: Teacher, config: SynthConfig,
                      path: pathlib.Path, n: int, desc: str) -> list[Judgement]:
    """n judgements per instruction, appended to `path` chunk by chunk; instructions already in
    the file are skipped (resume)."""
    done = {j.key for j in read_records(Judgement, path, appended=True)}
    todo = [i for i in instructions if i.key not in done]
    if done:
        print(f"{path}: {len(done)} instructions already judged, {len(todo)} to go")
    for start in range(0, len(todo), config.chunk):
        chunk = todo[start:start + config.chunk]
        samples = teacher.judge(chunk, n, dataclasses.replace(config, seed=config.seed + start),
                                f"{desc} {start + len(chunk)}/{len(todo)}")
        records = []
        for inst, generations in zip(chunk, samples):
            for index, g in enumerate(generations):
                verdict = TEMPLATES[inst.template].parse(g.text)
                records.append(Judgement(inst.id, inst.order, index, teacher.name, inst.template, inst.swapped,
                                         inst.chosen_position, verdict, verdict == inst.chosen_position,
                                         g.finish_reason, g.tokens, g.text))
        append_jsonl(path, map(to_json, records))
    return read_records(Judgement, path, appended=True)


def _by_key(judgements: list[Judgement]) -> dict[tuple[str, str], list[Judgement]]:
    by_key: dict[tuple[str, str], list[Judgement]] = {}
    for j in judgements:
        by_key.setdefault(j.key, []).append(j)
    return by_key


def stratify(instructions: list[Instruction],
             judgements: list[Judgement]) -> tuple[list[dict], list[Instruction], Counter]:
    """Stage 3: SFT rows from rows right in both orders; the other rows' instructions (drawn
    order and flip) become DPO candidates."""
    by_key = _by_key(judgements)
    rows: dict[str, list[Instruction]] = {}
    for inst in instructions:
        rows.setdefault(inst.id, []).append(inst)
    counts: Counter = Counter(dict.fromkeys(("judgements", "parse_errors", "sft_rows_consistent_correct",
                                             "dpo_candidates_right_in_one_order", "dpo_candidates_wrong_in_both_orders"), 0))
    sft, candidates = [], []
    for pair in rows.values():
        firsts = [next((j for j in by_key.get(i.key, []) if j.correct), None) for i in pair]
        verdicts = [j.verdict for i in pair for j in by_key.get(i.key, [])]
        counts["parse_errors"] += verdicts.count("error")
        counts["judgements"] += len(verdicts)
        if all(firsts):
            counts["sft_rows_consistent_correct"] += 1
            for inst, j in zip(pair, firsts):
                sft.append({"messages": inst.messages + [{"role": "assistant", "content": j.text}],
                            **inst.provenance(), "teacher": j.teacher, "sample": j.sample, "verdict": j.verdict})
        else:
            counts["dpo_candidates_" + ("right_in_one_order" if any(firsts) else "wrong_in_both_orders")] += 1
            candidates.extend(pair)
    return sft, candidates, counts


def dpo_pairs(candidates: list[Instruction], judgements: list[Judgement],
              fallback: WritingTeacher | None = None) -> tuple[list[dict], Counter]:
    """Stage 4: for each candidate instruction, the first correct judgement is chosen and the
    first wrong one (wrong verdict or none) rejected. With a `fallback` teacher that writes correct
    judgements (the label teacher, GPT-4's recorded critiques), a candidate the policy never gets
    right takes the teacher's judgement as chosen."""
    by_key = _by_key(judgements)
    pairs, counts = [], Counter(dpo_pairs=0, dropped_all_wrong=0, dropped_all_correct=0, chosen_from_teacher=0)
    for inst in candidates:
        samples = by_key.get(inst.key, [])
        right = next((j for j in samples if j.correct), None)
        wrong = next((j for j in samples if not j.correct), None)
        if right is None and wrong is not None and fallback is not None:
            counts["chosen_from_teacher"] += 1
            right = Judgement(inst.id, inst.order, -1, fallback.name, inst.template, inst.swapped, inst.chosen_position,
                              inst.chosen_position, True, "stop", 0, fallback.text(inst))
        if right is None or wrong is None:
            counts["dropped_all_wrong" if right is None else "dropped_all_correct"] += 1
            continue
        counts["dpo_pairs"] += 1
        pairs.append({"prompt": inst.messages, "chosen": right.text, "rejected": wrong.text,
                      **inst.provenance(), "policy": right.teacher,
                      "chosen_sample": right.sample, "rejected_sample": wrong.sample,
                      "rejected_verdict": wrong.verdict})
    return pairs, counts


def decontaminate(pairs: list[Pair], checker: Decontaminator | None) -> tuple[list[Pair], list[dict]]:
    """Pairs kept, and a report of those dropped (pair id, matched evaluation row, overlap share)."""
    if checker is None:
        return pairs, []
    kept, dropped = [], []
    for pair in pairs:
        hit = checker.check(pair.question)
        if hit:
            dropped.append({"id": pair.id, "matched": hit.reference, "share": round(hit.share, 3)})
        else:
            kept.append(pair)
    return kept, dropped


def stage_one(pairs: list[Pair], out: pathlib.Path, config: SynthConfig,
              checker: Decontaminator | None) -> tuple[list[Pair], list[dict], list[Instruction]]:
    """Stage 1 into `out` (made if needed): decontamination.jsonl (the pairs dropped) and
    instructions.jsonl; returns the pairs kept, the pairs dropped and the instructions."""
    out.mkdir(parents=True, exist_ok=True)
    kept, dropped = decontaminate(pairs, checker)
    write_jsonl(out / "decontamination.jsonl", dropped)
    instructions = build_instructions(kept, config)
    write_jsonl(out / "instructions.jsonl", map(to_json, instructions))
    return kept, dropped, instructions


def synthesize(pairs: list[Pair], out: pathlib.Path, teacher: Teacher, config: SynthConfig,
               checker: Decontaminator | None = None) -> dict:
    """Stages 1-3 into `out`: instructions.jsonl, judgements.jsonl, sft.jsonl,
    dpo_candidates.jsonl, decontamination.jsonl and summary.json (counts at each filter)."""
    kept, dropped, instructions = stage_one(pairs, out, config, checker)
    held_ids = {pair.id for pair in kept if teacher.holds_out(pair)}
    held = [i for i in instructions if i.id in held_ids]
    instructions = [i for i in instructions if i.id not in held_ids]
    judgements = sample_judgements(instructions, teacher, config, out / "judgements.jsonl", config.samples, "teacher")
    sft, candidates, counts = stratify(instructions, judgements)
    candidates += held
    counts["dpo_candidates_held_out"] = len(held) // len(ORDERS)
    write_jsonl(out / "sft.jsonl", sft)
    write_jsonl(out / "dpo_candidates.jsonl", map(to_json, candidates))
    summary = {"input_rows": len(pairs), "dropped_decontamination": len(dropped), "rows": len(kept),
               "instructions": len(instructions) + len(held), "teacher": teacher.name, "samples_per_instruction": config.samples,
               **dict(counts), "sft_examples": len(sft), "dpo_candidate_instructions": len(candidates),
               "by_source": dict(Counter(pair.source for pair in kept)),
               "sft_by_template": dict(Counter(r["template"] for r in sft))}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def synthesize_dpo(out: pathlib.Path, policy: Teacher, config: SynthConfig,
                   fallback: WritingTeacher | None = None) -> dict:
    """Stage 4 into `out`: policy_judgements.jsonl, dpo.jsonl and dpo_summary.json."""
    candidates = read_records(Instruction, out / "dpo_candidates.jsonl")
    judgements = sample_judgements(candidates, policy, config, out / "policy_judgements.jsonl", config.samples, "policy")
    pairs, counts = dpo_pairs(candidates, judgements, fallback)
    write_jsonl(out / "dpo.jsonl", pairs)
    summary = {"candidates": len(candidates), "policy": policy.name, "samples_per_candidate": config.samples,
               "temperature": config.temperature, **dict(counts)}
    (out / "dpo_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary

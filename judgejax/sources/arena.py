"""GPT-4's single-answer judgements of Arena-Bench-V1 (judgejax/teacher_data/arena-bench-v1) as
pairwise teacher judgements.

Answers to the same prompt whose GPT-4 ratings differ by at least `min_gap` make a pair (the
higher-rated one chosen), at most `max_pairs_per_prompt` per prompt (a seeded draw). Each pair keeps
GPT-4's critique of each answer, cleaned for a pairwise prompt by `brief_critique`. The critiques
were written against a GPT-4 reference answer that a pairwise judge prompt (pair-v2, as on
RewardBench) does not show; rather than show the reference at training time only, sentences that
cite it are dropped, so the judge learns to judge from what its prompt holds. Prompts are split
by a seeded hash into train and an in-domain held-out test, so no test prompt's text is in
training. The rating gap is the pair's difficulty: the recipe's teacher sends pairs with a gap of
at least `sft_min_gap` to SFT and the rest to the DPO stage.

A line that is not JSON is an error naming file and line; a row with a missing or malformed field
or no rating is counted by reason and skipped."""
from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable

from judgejax.config import section
from judgejax.data.errors import DataError
from judgejax.data.hashing import seeded_share
from judgejax.data.readers import read_records
from judgejax.data.shipped import shipped
from judgejax.sources.pair import Grading, Pair

SHIPPED = shipped("teacher_data", "arena-bench-v1", "judgements.jsonl.gz")
SOURCE = "arena-bench-v1"
FIELDS = {"question_id": str, "question": str, "model": str, "answer": str, "judgment": str, "source_row": str}
# Where a critique's own answer ends and its rewrite of the answer or its rating begins.
CUT = re.compile(r"here(?: is|'s) (?:a |the )?(?:corrected|revised|improved|correct)|```|\n\s*(?:corrected|revised)\b",
                 re.IGNORECASE)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
DROP = re.compile(r"reference|\[\[|\brat(?:e|ing)\b|\bscore\b", re.IGNORECASE)
ASSISTANT = re.compile(r"\b(?:the|this) (?:AI )?assistant\b", re.IGNORECASE)


@section
class ArenaConfig:
    min_gap: int = 2  # smallest rating difference that makes a pair
    sft_min_gap: int = 5  # pairs at least this far apart go to SFT, closer ones to the DPO stage
    max_pairs_per_prompt: int = 4
    max_answer_chars: int = 0  # skip answers longer than this (0: no limit); keeps CPU runs short
    max_critique_chars: int = 240  # whole sentences of a critique that fit (at least one)
    test_share: float = 0.2  # share of prompts held out for the in-domain test
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.min_gap <= self.sft_min_gap:
            raise ValueError(f"arena: need 1 <= min_gap ({self.min_gap}) <= sft_min_gap ({self.sft_min_gap})")
        if not 0 <= self.test_share < 1 or self.max_pairs_per_prompt < 1 or self.max_critique_chars < 1:
            raise ValueError(f"arena: test_share={self.test_share} must be in [0, 1), max_pairs_per_prompt="
                             f"{self.max_pairs_per_prompt} and max_critique_chars={self.max_critique_chars} >= 1")


@dataclasses.dataclass
class ArenaSplit:
    train: list[Pair]
    test: list[Pair]
    counts: Counter


def read_judgements(path: str | Path = SHIPPED) -> tuple[dict[str, list[dict]], Counter]:
    """Rated judgements by question id, and the rows skipped by reason (`missing_<field>`,
    `no_rating`). A line that is not JSON is an error naming the file and line."""
    by_question: dict[str, list[dict]] = defaultdict(list)
    skipped: Counter = Counter()
    for ref, row in read_records(path):
        if isinstance(row, DataError):
            raise row
        if not isinstance(row, dict):
            raise DataError(ref, None, "wrong_type", f"expected an object, got {type(row).__name__}")
        bad = next((name for name, kind in FIELDS.items() if not isinstance(row.get(name), kind) or not row[name]), None)
        score = row.get("score")
        if bad is not None:
            skipped[f"missing_{bad}"] += 1
        elif isinstance(score, bool) or not isinstance(score, (int, float)) or not 1 <= score <= 10:
            skipped["no_rating"] += 1
        else:
            by_question[row["question_id"]].append(row)
    return dict(by_question), skipped


def brief_critique(judgment: str, max_chars: int) -> str:
    """GPT-4's critique of one answer, for a pairwise judgement: the part before any rewrite of the
    answer, without sentences that cite the reference answer or state a rating, as many whole
    sentences as fit in `max_chars` (at least one); "" when nothing is left."""
    text = CUT.split(judgment, maxsplit=1)[0]
    kept: list[str] = []
    for paragraph in text.split("\n"):
        for sentence in SENTENCE_END.split(paragraph.strip()):
            if not sentence or DROP.search(sentence) or sentence.endswith(":"):
                continue
            if kept and sum(len(s) + 1 for s in kept) + len(sentence) > max_chars:
                return " ".join(kept)
            kept.append(sentence)
    return " ".join(kept)


def name_assistant(critique: str, letter: str) -> str:
    """A critique of "the assistant" as a critique of Assistant `letter`."""
    return ASSISTANT.sub(f"Assistant {letter}", critique)


def prompt_of(pair_id: str) -> str:
    """The question id of an arena pair's id ("arena-bench-v1/<question id>/<model>/<model>")."""
    return pair_id.split("/")[1]


def prompt_of_example(key: tuple) -> str:
    """The question id of an evaluated arena pair, keyed (subset, id) as in judgejax.eval.bootstrap:
    the cluster its intervals resample (the pairs of one prompt share its question)."""
    return prompt_of(str(key[1]))


def _held_out(question_id: str, config: ArenaConfig) -> bool:
    return seeded_share(config.seed, "test", question_id) < config.test_share


def build_pairs(by_question: dict[str, list[dict]], config: ArenaConfig,
                excluded: Callable[[str], bool] = lambda question: False) -> ArenaSplit:
    """Preference pairs graded by GPT-4 (ratings and the two critiques), split into train and test
    by prompt. `excluded(question)` drops a prompt (decontamination)."""
    counts: Counter = Counter()
    train, test = [], []
    for question_id in sorted(by_question):
        graded = by_question[question_id]
        question = graded[0]["question"]
        if excluded(question):
            counts["decontam_prompts"] += 1
            continue
        if config.max_answer_chars:
            counts["answers_too_long"] += sum(len(g["answer"]) > config.max_answer_chars for g in graded)
            graded = [g for g in graded if len(g["answer"]) <= config.max_answer_chars]
        candidates = []
        for i, a in enumerate(graded):
            for b in graded[i + 1:]:
                if abs(a["score"] - b["score"]) < config.min_gap:
                    continue
                if a["answer"].strip() == b["answer"].strip():
                    counts["same_answers"] += 1
                    continue
                candidates.append((a, b) if a["score"] > b["score"] else (b, a))
        random.Random(f"{config.seed}\x1f{question_id}").shuffle(candidates)
        counts["over_prompt_cap"] += max(0, len(candidates) - config.max_pairs_per_prompt)
        split = test if _held_out(question_id, config) else train
        for chosen, rejected in candidates[: config.max_pairs_per_prompt]:
            critiques = {name: brief_critique(g["judgment"], config.max_critique_chars)
                         for name, g in (("chosen", chosen), ("rejected", rejected))}
            if not all(critiques.values()):
                counts["empty_critique"] += 1
                continue
            split.append(Pair(
                f"{SOURCE}/{question_id}/{chosen['model']}/{rejected['model']}", SOURCE,
                f"{chosen['source_row']} vs {rejected['source_row']}", "general",
                ({"role": "user", "content": question},), chosen["answer"], rejected["answer"],
                Grading((chosen["score"], rejected["score"]), critiques["chosen"], critiques["rejected"])))
    counts["train_pairs"], counts["test_pairs"] = len(train), len(test)
    counts["train_prompts"] = len({p.question for p in train})
    counts["test_prompts"] = len({p.question for p in test})
    return ArenaSplit(train, test, counts)

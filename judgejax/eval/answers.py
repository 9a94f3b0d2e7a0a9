"""Judgements that are not a pair in an A/B order: one answer rated alone (`RatingItem`), and four
answers shown at once with the correct one at a seeded slot (`RankingItem`).

Like a pairwise `Item`, each is keyed by (row, False) for the shard files, where `row` numbers the
judgements of a run (the benchmark row it comes from is in its record as `source_row`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from judgejax.data.hashing import seeded_int
from judgejax.eval.examples import SubsetKeyed
from judgejax.judge.templates import RANKING_LETTERS


@dataclass(frozen=True)
class Judgement(SubsetKeyed):
    """What every such judgement has: its number in the run, its benchmark row's subset, id and
    prompt; it is its own example (one order, the seeded one)."""

    row: int
    subset: str
    id: int | str
    prompt: str
    swapped = False

    @property
    def example(self) -> "Judgement":
        return self

    @property
    def key(self) -> tuple[int, bool]:
        return (self.row, False)

    def _fields(self) -> dict[str, Any]:
        return {"subset": self.subset, "id": self.id, "row": self.row, "swapped": False, "seeded": True}


@dataclass(frozen=True)
class RatingItem(Judgement):
    answer: str
    meta: tuple[tuple[str, Any], ...]  # which answer of its row this is (and whether it is a correct one)
    ties: bool = False  # rated with the Ties prompt (RewardBench 2)

    @property
    def kind(self) -> str:
        return "ties" if self.ties else "rating"

    def record_fields(self) -> dict[str, Any]:
        return self._fields() | dict(self.meta)


@dataclass(frozen=True)
class RankingItem(Judgement):
    answers: tuple[str, ...]  # as shown, A to D
    slot: int  # where the correct answer is shown
    meta: tuple[tuple[str, Any], ...]
    kind = "ranking"

    def record_fields(self) -> dict[str, Any]:
        return self._fields() | {"chosen_position": RANKING_LETTERS[self.slot], **dict(self.meta)}


def seeded_slot(seed: int, key: str, slots: int = len(RANKING_LETTERS)) -> int:
    """The slot the correct answer is shown in: a seeded draw from (seed, key), the same on every
    machine (the official script draws it unseeded with numpy)."""
    return seeded_int(seed, "slot", key) % slots


def shown_order(correct: str, rejected: tuple[str, str, str], slot: int) -> tuple[str, ...]:
    """The four answers as RewardBench 2 shows them: the correct one first, then the three rejected,
    with the correct one exchanged with the answer at `slot` (the others keep their places)."""
    answers = [correct, *rejected]
    answers[0], answers[slot] = answers[slot], answers[0]
    return tuple(answers)

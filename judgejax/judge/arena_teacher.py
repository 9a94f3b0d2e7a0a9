"""GPT-4 as a recorded teacher: pairwise judgements composed from its critiques of Arena-Bench-V1
answers (`judgejax.sources.arena`), in the instruction's template and A/B order."""
from __future__ import annotations

from collections.abc import Sequence

from judgejax.judge.records import Instruction
from judgejax.judge.synth import WritingTeacher
from judgejax.judge.templates import TEMPLATES
from judgejax.sources.arena import name_assistant
from judgejax.sources.pair import Grading, Pair


class ArenaTeacher(WritingTeacher):
    """Judges the arena pairs it was built from: GPT-4's brief critique of the answer shown as A,
    then of the one shown as B, then the verdict for the higher-rated answer. Pairs whose rating gap
    is below `sft_min_gap` are held out for the DPO stage (the teacher's less certain pairs)."""

    name = "gpt-4 (arena-bench-v1 critiques)"

    def __init__(self, pairs: Sequence[Pair], sft_min_gap: int):
        self.gradings = {pair.id: pair.grading for pair in pairs}
        self.sft_min_gap = sft_min_gap

    def _grading(self, pair_id: str) -> Grading:
        grading = self.gradings.get(pair_id)
        if grading is None:
            raise ValueError(f"row {pair_id!r} is not an arena pair with GPT-4 critiques")
        return grading

    def text(self, inst: Instruction) -> str:
        grading = self._grading(inst.id)
        winner = inst.chosen_position
        critiques = (grading.chosen_critique, grading.rejected_critique)
        first, second = critiques if winner == "A" else critiques[::-1]
        analysis = (f"Assistant A: {name_assistant(first, 'A')}\n\nAssistant B: {name_assistant(second, 'B')}\n\n"
                    f"Assistant {winner}'s answer is better.")
        return TEMPLATES[inst.template].judgement(analysis, winner)

    def holds_out(self, pair: Pair) -> bool:
        return self._grading(pair.id).gap < self.sft_min_gap

"""The GPT-4 arena teacher: pairs from real shipped judgements, critiques cleaned for a pairwise
prompt, the train / held-out split by prompt, decontamination, and judgements in both orders."""
import gzip
import json

import pytest

from judgejax.general.mtbench_data import mtbench_references
from judgejax.judge.arena_teacher import ArenaTeacher
from judgejax.judge.decontam import Decontaminator
from judgejax.judge.synth import SynthConfig, build_instructions
from judgejax.judge.templates import TEMPLATES
from judgejax.data.errors import RowRef
from judgejax.sources.arena import SENTENCE_END, SHIPPED, ArenaConfig, brief_critique, build_pairs, read_judgements
from judgejax.sources.pair import Pair

MT_BENCH_PUZZLE = "91956666f79a4a9688fa40972cfa994c"  # the parking-space puzzle, an MT-Bench question


@pytest.fixture(scope="module")
def judgements():
    return read_judgements()


def test_reads_every_shipped_row_and_counts_the_unrated(judgements):
    by_question, skipped = judgements
    assert len(by_question) == 300
    assert sum(map(len, by_question.values())) + sum(skipped.values()) == 4500
    assert skipped["no_rating"] == 38  # the teacher README's count of unreadable ratings


def test_pairs_gaps_caps_and_orientation(judgements):
    by_question, _ = judgements
    config = ArenaConfig(min_gap=3, max_pairs_per_prompt=2, test_share=0.3, seed=1)
    split = build_pairs(by_question, config)
    per_prompt: dict[str, int] = {}
    graded = {g["source_row"]: g for gs in by_question.values() for g in gs}
    for row in split.train + split.test:
        chosen, rejected = (graded[where] for where in row.source_row.split(" vs "))
        qid = chosen["question_id"]
        assert rejected["question_id"] == qid and row.id == f"arena-bench-v1/{qid}/{chosen['model']}/{rejected['model']}"
        per_prompt[qid] = per_prompt.get(qid, 0) + 1
        assert (row.chosen, row.rejected, row.question) == (chosen["answer"], rejected["answer"], chosen["question"])
        assert row.grading.gap == chosen["score"] - rejected["score"] >= 3
        assert row.grading.scores == (chosen["score"], rejected["score"])
        assert row.prompt_messages == ({"role": "user", "content": row.question},)
        assert Pair.from_json(json.loads(json.dumps(row.to_json())), RowRef("x", "line", 1)) == row
    assert max(per_prompt.values()) == 2
    assert len({r.id for r in split.train + split.test}) == len(split.train) + len(split.test)


def test_held_out_prompts_never_in_training(judgements):
    by_question, _ = judgements
    split = build_pairs(by_question, ArenaConfig(seed=0))
    train_questions = {r.question for r in split.train}
    test_questions = {r.question for r in split.test}
    assert test_questions and not train_questions & test_questions
    assert 0.1 < len(test_questions) / (len(train_questions) + len(test_questions)) < 0.3
    # another seed draws another split
    other = build_pairs(by_question, ArenaConfig(seed=5))
    assert {r.question for r in other.test} != test_questions


def test_decontamination_drops_the_mt_bench_question(judgements):
    by_question, _ = judgements
    checker = Decontaminator(mtbench_references())
    split = build_pairs(by_question, ArenaConfig(), lambda q: checker.check(q) is not None)
    assert split.counts["decontam_prompts"] == 1
    assert not any(MT_BENCH_PUZZLE in r.id for r in split.train + split.test)
    assert any(MT_BENCH_PUZZLE in r.id for r in build_pairs(by_question, ArenaConfig()).train +
               build_pairs(by_question, ArenaConfig()).test)


def test_critiques_lose_the_reference_the_rating_and_the_rewrite():
    judgment = ("The assistant's answer is incorrect. The reference answer uses the power rule, which the "
                "assistant missed. The assistant also forgets the constant.\n\nHere is a corrected version:\n"
                "```python\nprint(1)\n```\nRating: [[3]]")
    assert brief_critique(judgment, 500) == "The assistant's answer is incorrect. The assistant also forgets the constant."
    assert brief_critique(judgment, 10) == "The assistant's answer is incorrect."  # at least one whole sentence
    assert brief_critique("Compared to the reference answer, it is fine. Rating: [[9]]", 500) == ""


def test_no_shipped_critique_keeps_a_reference_or_a_rating(judgements):
    by_question, _ = judgements
    split = build_pairs(by_question, ArenaConfig(max_pairs_per_prompt=50))
    critiques = [c for r in split.train + split.test for c in (r.grading.chosen_critique, r.grading.rejected_critique)]
    assert len(critiques) > 5000
    assert not [c for c in critiques if "reference" in c.lower() or "[[" in c or "Rating" in c]
    assert all(len(c) <= 240 or len(SENTENCE_END.split(c)) == 1 for c in critiques)


def test_teacher_judges_both_orders_for_the_higher_rated_answer(judgements):
    by_question, _ = judgements
    rows = build_pairs(by_question, ArenaConfig()).train[:6]
    teacher = ArenaTeacher(rows, sft_min_gap=5)
    instructions = build_instructions(rows, SynthConfig(templates=("pair-v2", "en-general-json"), seed=2))
    texts = teacher.judge(instructions, 2)
    for inst, generations in zip(instructions, texts):
        grading = {r.id: r.grading for r in rows}[inst.id]
        template = TEMPLATES[inst.template]
        assert len(generations) == 2 and template.parse(generations[0].text) == inst.chosen_position
        shown_a = grading.chosen_critique if inst.chosen_position == "A" else grading.rejected_critique
        assert "the assistant" not in generations[0].text.lower()
        if inst.template == "pair-v2":
            first = generations[0].text.split("\n\n")[0]
            assert first.startswith("Assistant A: ") and shown_a.split()[-1] in first
    assert [teacher.holds_out(r) for r in rows] == [r.grading.gap < 5 for r in rows]


def test_a_bad_line_names_file_and_line_and_bad_rows_are_counted(tmp_path):
    good = {"question_id": "q", "question": "Q?", "model": "m", "answer": "a", "judgment": "Fine.", "score": 7,
            "source_row": "x row 0"}
    path = tmp_path / "j.jsonl.gz"
    lines = [good, {**good, "score": None}, {**good, "answer": ""}, {**good, "score": 11}, {**good, "model": 3}]
    with gzip.open(path, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in lines)
    by_question, skipped = read_judgements(path)
    assert len(by_question["q"]) == 1
    assert skipped == {"no_rating": 2, "missing_answer": 1, "missing_model": 1}
    with gzip.open(path, "at") as f:
        f.write("{not json\n")
    with pytest.raises(ValueError, match=r"j\.jsonl\.gz line 6: not valid JSON"):
        read_judgements(path)


def test_shipped_data_carries_its_license():
    assert "Apache License" in (SHIPPED.parent / "LICENSE").read_text()
    assert "Apache-2.0" in (SHIPPED.parent / "README.md").read_text()

"""The generative judge on RewardBench 2's ranking and rating judgements: the prompt ids it encodes are
the templates' messages through the tokenizer's chat template, and what it reads back from an output
is the parsers' verdict or rating and the official result. (Generation itself is the one `generate`
call every judgement kind goes through, tested with the pairwise judgements.)"""
from __future__ import annotations

import pytest

from judgejax.eval import rewardbench2
from judgejax.eval.answers import RankingItem, RatingItem
from judgejax.eval.generative import GenerativeJudge
from judgejax.judge.templates import RANKING_LETTERS, RANKING_TEMPLATES, RATING_TEMPLATES
from test_bench_eval import rb2_rows, write_rb2
from test_eval_tiny_models import DATA, tiny_tokenizer


def test_ranking_and_rating_prompts_and_readings(tmp_path):
    if not DATA.is_file():
        pytest.skip("the tiny tokenizer is trained on shared/data/rewardbench, not on this machine")
    tokenizer = tiny_tokenizer()
    rows, _ = rewardbench2.load(write_rb2(tmp_path / "rb2.parquet", rb2_rows()))
    items = rewardbench2.plan(rows, "rankings", seed=0)
    ranking, rating, ties = RANKING_TEMPLATES["rank4-v2"], RATING_TEMPLATES["rating-v2"], RATING_TEMPLATES["rating-v2-ties"]
    judge = GenerativeJudge(None, tokenizer, None, stop_ids=[0], max_new_tokens=1, batch_multiple=1,
                            rating_template=rating, ties_template=ties, ranking_template=ranking)
    by_id = {r["id"]: r for r in rb2_rows()}
    assert sorted({type(i).__name__ for i in items}) == ["RankingItem", "RatingItem"]
    for item in items:
        row = by_id[item.id]
        if isinstance(item, RankingItem):
            correct = RANKING_LETTERS[item.slot]
            assert item.answers[item.slot] == row["chosen"][0] and sorted(item.answers) == sorted(row["chosen"] + row["rejected"])
            messages = ranking.messages(row["prompt"], item.answers)
            assert judge.read(item, f"So [[{correct}]].") == {"verdict": correct, "result": 1.0}
            wrong = RANKING_LETTERS[(item.slot + 1) % 4]
            assert judge.read(item, f"[[{wrong}]]") == {"verdict": wrong, "result": 0.0}
            assert judge.read(item, "none") == {"verdict": "error", "result": 0.25}
        else:
            assert isinstance(item, RatingItem) and item.ties and item.kind == "ties"
            messages = ties.messages(row["prompt"], (row["chosen"] + row["rejected"])[dict(item.meta)["answer"]])
            assert judge.read(item, "Fine.\n7") == {"rating": 7} and judge.read(item, "Rating: 7/10.") == {"rating": None}
        rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert tokenizer.decode(judge.encode(item)) == rendered
    no_ranking = GenerativeJudge(None, tokenizer, None, stop_ids=[0], max_new_tokens=1, batch_multiple=1)
    item = next(i for i in items if isinstance(i, RankingItem))
    with pytest.raises(ValueError, match="no ranking template"):
        no_ranking.encode(item)

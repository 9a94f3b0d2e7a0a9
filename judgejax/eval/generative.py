"""Generative judging (RewardBench's official protocol): the judge prompt through the model's chat
template, greedy decoding with the jitted sampler, and the verdict read back from the text.

Two verdict rules are recorded: the official one for "[[A]]"/"[[B]]" tag templates ("[[A]]"
anywhere wins, else "[[B]]", else error) and the template's own rule (the last verdict stated).
The official rule decides `result` when the template uses tags; otherwise the template's rule does.

The same judge also rates one answer alone (`answers.RatingItem`, with a rating template: `rating`
is the parsed 1-10 or None) and picks the best of four (`answers.RankingItem`, with a ranking
template: `verdict` A-D or "error", `result` 1 / 0 / 0.25 as RewardBench 2 scores it).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from judgejax.eval.answers import RankingItem, RatingItem
from judgejax.eval.examples import Item
from judgejax.eval.rb2_scoring import ranking_result
from judgejax.eval.scoring import example_result
from judgejax.judge.templates import JudgeTemplate, RankingTemplate, RatingTemplate, pair_messages
from judgejax.judge.verdicts import TAG, official_tag_verdict
from judgejax.model.llm import CausalLM
from judgejax.sample.methods import Greedy
from judgejax.sample.prefix import PrefixCache
from judgejax.sample.sampler import generate
from judgejax.tokenizer import chat_token_ids


def judge_prompt_ids(tokenizer: Any, template: JudgeTemplate, item: Item) -> list[int]:
    """Token ids of the judge prompt for `item` (its A/B order), with the generation prompt."""
    e = item.example
    messages, _ = pair_messages(template, e.prompt, e.chosen, e.rejected, item.swapped)
    return chat_token_ids(tokenizer, messages, add_generation_prompt=True)


class GenerativeJudge:
    mode = "generative"

    def __init__(self, model: CausalLM, tokenizer: Any, template: JudgeTemplate | None, *, stop_ids: Sequence[int],
                 max_new_tokens: int, batch_multiple: int, share_and_pack: bool = True,
                 memory_budget: int | None = None,
                 rating_template: RatingTemplate | None = None, ties_template: RatingTemplate | None = None,
                 ranking_template: RankingTemplate | None = None):
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={max_new_tokens}: must be >= 1")
        self.model, self.tokenizer = model, tokenizer
        self.templates = {"pair": template, "rating": rating_template, "ties": ties_template,
                          "ranking": ranking_template}
        self.stop_ids, self.max_new_tokens, self.batch_multiple = tuple(stop_ids), max_new_tokens, batch_multiple
        self.memory_budget = memory_budget  # bytes a sampler batch may plan (judgejax.sample.sampler)
        self.prefixes, self.pack = PrefixCache(model, batch_multiple, share=share_and_pack), share_and_pack

    def _template(self, item: Item | RatingItem | RankingItem) -> Any:
        template = self.templates[item.kind]
        if template is None:
            raise ValueError(f"this judge was given no {item.kind} template")
        return template

    def encode(self, item: Item | RatingItem | RankingItem) -> list[int]:
        if isinstance(item, Item):
            return judge_prompt_ids(self.tokenizer, self._template(item), item)
        shown = item.answer if isinstance(item, RatingItem) else item.answers
        return chat_token_ids(self.tokenizer, self._template(item).messages(item.prompt, shown),
                              add_generation_prompt=True)

    def length(self, prompt_ids: list[int]) -> int:
        return len(prompt_ids)

    def prompt_ids(self, prompt_ids: list[int]) -> list[int]:
        return prompt_ids

    def judge(self, items: Sequence[Item], prompts: Sequence[list[int]]) -> list[dict[str, Any]]:
        completions = generate(self.model, prompts, max_new_tokens=self.max_new_tokens, stop_ids=self.stop_ids,
                               method=Greedy(), batch_multiple=self.batch_multiple, prefixes=self.prefixes,
                               pack=self.pack, memory_budget=self.memory_budget)
        records = []
        for item, completion in zip(items, completions):
            text = self.tokenizer.decode(completion.tokens, skip_special_tokens=True)
            records.append({"output": text, "output_ids": completion.tokens, "n_tokens": len(completion.tokens),
                            "finish_reason": completion.finish_reason} | self.read(item, text))
        return records

    def read(self, item: Item | RatingItem | RankingItem, text: str) -> dict[str, Any]:
        """The record fields of a judgement's text: its verdict and result, or its rating."""
        template = self._template(item)
        if isinstance(item, RatingItem):
            return {"rating": template.parse(text)}
        if isinstance(item, RankingItem):
            verdict = template.parse(text)
            return {"verdict": verdict, "result": ranking_result(verdict, item.slot)}
        official = official_tag_verdict(text) if template.verdict == TAG else None
        last = template.parse(text)
        verdict = official if official is not None else last
        return {"verdict_official": official, "verdict_last": last, "verdict": verdict,
                "result": example_result(verdict, item.chosen_position),
                "result_last": example_result(last, item.chosen_position)}

"""Generative judging (RewardBench's official protocol): the judge prompt through the model's chat
template, greedy decoding with the jitted sampler, and the verdict read back from the text.

Two verdict rules are recorded: the official one for "[[A]]"/"[[B]]" tag templates ("[[A]]"
anywhere wins, else "[[B]]", else error) and the template's own rule (the last verdict stated).
The official rule decides `result` when the template uses tags; otherwise the template's rule does.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from judgejax.eval.examples import Item
from judgejax.eval.scoring import example_result
from judgejax.judge.templates import JudgeTemplate, pair_messages
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

    def __init__(self, model: CausalLM, tokenizer: Any, template: JudgeTemplate, *, stop_ids: Sequence[int],
                 max_new_tokens: int, batch_multiple: int, share_and_pack: bool = True):
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={max_new_tokens}: must be >= 1")
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.stop_ids, self.max_new_tokens, self.batch_multiple = tuple(stop_ids), max_new_tokens, batch_multiple
        self.prefixes, self.pack = PrefixCache(model, batch_multiple, share=share_and_pack), share_and_pack

    def encode(self, item: Item) -> list[int]:
        return judge_prompt_ids(self.tokenizer, self.template, item)

    def length(self, prompt_ids: list[int]) -> int:
        return len(prompt_ids)

    def prompt_ids(self, prompt_ids: list[int]) -> list[int]:
        return prompt_ids

    def judge(self, items: Sequence[Item], prompts: Sequence[list[int]]) -> list[dict[str, Any]]:
        completions = generate(self.model, prompts, max_new_tokens=self.max_new_tokens, stop_ids=self.stop_ids,
                               method=Greedy(), batch_multiple=self.batch_multiple, prefixes=self.prefixes,
                               pack=self.pack)
        records = []
        for item, completion in zip(items, completions):
            text = self.tokenizer.decode(completion.tokens, skip_special_tokens=True)
            official = official_tag_verdict(text) if self.template.verdict == TAG else None
            last = self.template.parse(text)
            verdict = official if official is not None else last
            records.append({
                "output": text,
                "output_ids": completion.tokens,
                "n_tokens": len(completion.tokens),
                "finish_reason": completion.finish_reason,
                "verdict_official": official,
                "verdict_last": last,
                "verdict": verdict,
                "result": example_result(verdict, item.chosen_position),
                "result_last": example_result(last, item.chosen_position),
            })
        return records

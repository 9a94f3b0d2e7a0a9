"""Verdict-probability judging: no generation. The judge prompt (after the generation prompt) is
scored with each verdict as its continuation, the template's `verdict_text("A")` vs
`verdict_text("B")` tokenized on their own; the likelier continuation is the verdict (a tie is an
error).

One prefill over the prompts fills a KV cache; each continuation is then a short
forward from that cache, so the prompt is read once for both verdicts. Only the last prompt
position is projected to the vocabulary. The tokens every prompt of a batch starts with (the
template's system turn) are computed once and shared (`judgejax.sample.prefix`), and the rest of
the prompts are prefilled packed into rows (`judgejax.sample.packing`).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from judgejax.eval.examples import Item
from judgejax.eval.generative import judge_prompt_ids
from judgejax.eval.scoring import example_result
from judgejax.judge.templates import JudgeTemplate
from judgejax.model.llm import CausalLM, SharedPrefix
from judgejax.sample.buckets import DEFAULT_BUCKETS
from judgejax.sample.prefix import PrefixCache
from judgejax.sample.sampler import device_arrays, pack_batch, prefill
from judgejax.model.logprobs import token_logprobs


@functools.partial(jax.jit, static_argnames=("graphdef", "continuations"))
def _continuation_logps(graphdef, state, prefix: SharedPrefix | None, packed: dict, *, continuations):
    """Summed log p(continuation | prompt) for each continuation: float32 [B, len(continuations)]."""
    model: CausalLM = nnx.merge(graphdef, state)
    batch, length = packed["row"].shape[0], packed["tokens"].shape[1]
    dtype = model.cfg.compute_jnp_dtype
    capacity = length + max(len(c) for c in continuations) - 1
    hidden_bd, cache = prefill(model, packed, capacity, prefix)
    first_bv = jax.nn.log_softmax(model.logits(hidden_bd[:, None])[:, 0], axis=-1)
    scores = []
    for continuation in continuations:
        logp_b = first_bv[:, continuation[0]]
        rest = len(continuation) - 1
        if rest:
            inputs_bn = jnp.broadcast_to(jnp.asarray(continuation[:-1], jnp.int32), (batch, rest))
            targets_bn = jnp.broadcast_to(jnp.asarray(continuation[1:], jnp.int32), (batch, rest))
            positions_bn = packed["next_position"][:, None] + jnp.arange(rest)
            hidden_bnd, _ = model.hidden_states(inputs_bn, positions_bn, jnp.ones((batch, rest), jnp.int32), cache)
            logp_b = logp_b + token_logprobs(hidden_bnd, model.unembed_dv(), targets_bn, compute_dtype=dtype,
                                           vocab_size=model.cfg.vocab_size).sum(-1)
        scores.append(logp_b)
    return jnp.stack(scores, axis=1)


def verdict_continuations(tokenizer: Any, template: JudgeTemplate) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Token ids of the template's A and B verdict texts (no special tokens added)."""
    ids = tuple(tuple(tokenizer(template.verdict_text(letter), add_special_tokens=False)["input_ids"])
                for letter in ("A", "B"))
    if not ids[0] or not ids[1] or ids[0] == ids[1]:
        raise ValueError(f"template {template.name!r}: verdict texts tokenize to {ids}; "
                         "they must be two different non-empty sequences")
    return ids  # type: ignore[return-value]


class VerdictProbJudge:
    mode = "verdict-prob"

    def __init__(self, model: CausalLM, tokenizer: Any, template: JudgeTemplate, *, batch_multiple: int,
                 buckets: Sequence[int] = DEFAULT_BUCKETS, share_and_pack: bool = True):
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.batch_multiple, self.buckets, self.pack = batch_multiple, tuple(buckets), share_and_pack
        self.prefixes = PrefixCache(model, batch_multiple, share=share_and_pack)
        self.continuations = verdict_continuations(tokenizer, template)

    def encode(self, item: Item) -> list[int]:
        return judge_prompt_ids(self.tokenizer, self.template, item)

    def length(self, prompt_ids: list[int]) -> int:
        return len(prompt_ids)

    def prompt_ids(self, prompt_ids: list[int]) -> list[int]:
        return prompt_ids

    def scores(self, prompts: Sequence[list[int]]) -> np.ndarray:
        """log p(verdict A), log p(verdict B) per prompt: float32 [len(prompts), 2]."""
        prefix, packed = pack_batch(self.prefixes, prompts, shards=self.batch_multiple, buckets=self.buckets,
                                    pack=self.pack)
        graphdef, state = nnx.split(self.model)
        out = _continuation_logps(graphdef, state, prefix, device_arrays(self.model, packed),
                                  continuations=self.continuations)
        return np.asarray(jax.device_get(out))[:len(prompts)]

    def judge(self, items: Sequence[Item], prompts: Sequence[list[int]]) -> list[dict[str, Any]]:
        records = []
        for item, (logp_a, logp_b) in zip(items, self.scores(prompts)):
            verdict = "A" if logp_a > logp_b else "B" if logp_b > logp_a else "error"
            records.append({
                "logp_a": float(logp_a),
                "logp_b": float(logp_b),
                "verdict": verdict,
                "result": example_result(verdict, item.chosen_position),
            })
        return records

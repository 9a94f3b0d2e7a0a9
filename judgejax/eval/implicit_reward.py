"""Implicit-reward scoring of a DPO policy against its reference (how RewardBench scores DPO
models): reward = log pi(completion | prompt) - log pi_ref(completion | prompt), each a float32 sum
over the completion's tokens; an example scores 1 only if the chosen answer's reward is strictly
higher than the rejected one's. The prompt is the plain user message through the chat template.

Each completion is scored inside the tokenization of the whole conversation (prompt + answer, as
DPO training tokenizes it). When the answer's first characters merge with the end of the
generation prompt into one token (an answer starting with spaces or a newline, as code answers
do), the completion starts at that merged token, as TRL's DPO tokenization (which RewardBench's
DPO scoring uses) does; such records say `boundary_merged`.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from judgejax.data.chat import chat_ids
from judgejax.data.errors import RowRef
from judgejax.eval.batching import padded_rows, right_pad
from judgejax.eval.examples import Item
from judgejax.eval.scoring import scalar_result
from judgejax.model.llm import CausalLM
from judgejax.sample.buckets import DEFAULT_BUCKETS
from judgejax.model.logprobs import sequence_logps, token_logprobs
from judgejax.sharding import shard_batch


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _completion_logps(graphdef, state, tokens_bt, segments_bt, completion_bt):
    """Summed log-probs of the tokens marked in `completion_bt` (right-padded rows): float32 [B]."""
    model: CausalLM = nnx.merge(graphdef, state)
    positions_bt = jnp.broadcast_to(jnp.arange(tokens_bt.shape[1]), tokens_bt.shape)
    hidden_btd, _ = model.hidden_states(tokens_bt, positions_bt, segments_bt)
    logps_bt = token_logprobs(hidden_btd[:, :-1], model.unembed_dv(), tokens_bt[:, 1:],
                              compute_dtype=model.cfg.compute_jnp_dtype, vocab_size=model.cfg.vocab_size)
    return sequence_logps(logps_bt, completion_bt[:, 1:])


@dataclasses.dataclass(frozen=True)
class EncodedPair:
    prompt_ids: list[int]  # the prompt with the generation prompt
    sequences: tuple[list[int], list[int]]  # prompt + chosen, prompt + rejected
    starts: tuple[int, int]  # where each completion's scored tokens start

    @property
    def boundary_merged(self) -> bool:
        return min(self.starts) < len(self.prompt_ids)


def encode_pair(tokenizer: Any, prompt: str, chosen: str, rejected: str, ref: RowRef) -> EncodedPair:
    """Token ids of the prompt and of prompt + each answer, and where each answer's tokens start:
    after the prompt ids, or at the first token where the conversation's ids leave them."""
    user = [{"role": "user", "content": prompt}]
    prompt_ids = chat_ids(tokenizer, user, True, ref)
    sequences, starts = [], []
    for answer in (chosen, rejected):
        full = chat_ids(tokenizer, user + [{"role": "assistant", "content": answer}], False, ref)
        start = next((i for i, (a, b) in enumerate(zip(prompt_ids, full)) if a != b), len(prompt_ids))
        if start >= len(full) or start < len(prompt_ids) - 1:
            raise ValueError(f"{ref}: the conversation's tokens leave the prompt's at token {start} of "
                             f"{len(prompt_ids)}; only the last prompt token may merge with the answer")
        sequences.append(full)
        starts.append(start)
    return EncodedPair(prompt_ids, tuple(sequences), tuple(starts))


class ImplicitRewardJudge:
    mode = "implicit-reward"

    def __init__(self, policy: CausalLM, reference: CausalLM, tokenizer: Any, *, source: str, batch_multiple: int,
                 buckets: Sequence[int] = DEFAULT_BUCKETS):
        self.policy, self.reference, self.tokenizer = policy, reference, tokenizer
        self.source, self.batch_multiple, self.buckets = source, batch_multiple, tuple(buckets)
        self.mesh = policy.outer.embed_vd[...].sharding.mesh

    def encode(self, item: Item) -> EncodedPair:
        e = item.example
        return encode_pair(self.tokenizer, e.prompt, e.chosen, e.rejected, RowRef(self.source, "row", e.row))

    def length(self, encoded: EncodedPair) -> int:
        return max(len(s) for s in encoded.sequences)

    def prompt_ids(self, encoded: EncodedPair) -> list[int]:
        return encoded.prompt_ids

    def logps(self, model: CausalLM, encoded: Sequence[EncodedPair]) -> np.ndarray:
        """Summed completion log-probs under `model`: float32 [len(encoded), 2] (chosen, rejected)."""
        sequences = [s for pair in encoded for s in pair.sequences]
        starts = [start for pair in encoded for start in pair.starts]
        tokens, segments = right_pad(sequences, padded_rows(len(sequences), self.batch_multiple), self.buckets)
        completion = np.zeros_like(segments)
        for i, (start, sequence) in enumerate(zip(starts, sequences)):
            completion[i, start:len(sequence)] = 1
        graphdef, state = nnx.split(model)
        placed = shard_batch(self.mesh, {"tokens": tokens, "segments": segments, "completion": completion})
        out = _completion_logps(graphdef, state, placed["tokens"], placed["segments"], placed["completion"])
        return np.asarray(jax.device_get(out))[:len(sequences)].reshape(len(encoded), 2)

    def judge(self, items: Sequence[Item], encoded: Sequence[EncodedPair]) -> list[dict[str, Any]]:
        policy, reference = self.logps(self.policy, encoded), self.logps(self.reference, encoded)
        records = []
        for pair, (pc, pr), (rc, rr) in zip(encoded, policy, reference):
            reward_chosen, reward_rejected = float(pc) - float(rc), float(pr) - float(rr)
            records.append({
                "policy_chosen_logp": float(pc), "policy_rejected_logp": float(pr),
                "reference_chosen_logp": float(rc), "reference_rejected_logp": float(rr),
                "reward_chosen": reward_chosen, "reward_rejected": reward_rejected,
                "boundary_merged": pair.boundary_merged,
                "result": scalar_result(reward_chosen, reward_rejected),
            })
        return records

"""A local chat model answering batches of conversations through the jitted sampler: the model
under test, and a local judge. The model loads on first use, so a run with nothing left to do
never loads it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Sequence

import jax
from jax.sharding import Mesh

from judgejax.model.checkpoint import assets_dir, load_model
from judgejax.sample.methods import Greedy, Sample
from judgejax.sample.sampler import DEFAULT_BUCKETS, generate
from judgejax.tokenizer import chat_token_ids, load_tokenizer, stop_token_ids

Message = dict[str, str]
PROMPT_TOO_LONG = "prompt_too_long"
# transformers' `generate` samples with top_k=50 and top_p=1.0 unless the model's generation
# config says otherwise; the official MT-Bench answers were generated that way.
HF_SAMPLING_DEFAULTS = {"top_k": 50, "top_p": 1.0}
GREEDY_BELOW = 1e-4  # FastChat: a temperature below this means greedy decoding


@dataclasses.dataclass(frozen=True)
class Reply:
    text: str  # decoded without special tokens, stripped
    finish_reason: str  # "stop", "length", "cache_full" or "prompt_too_long" (not generated; text "")
    tokens: int


class LocalChat:
    """An HF folder, judgejax checkpoint or training run, chatting through its own chat template."""

    def __init__(self, path: str | Path, mesh: Mesh, *, max_new_tokens: int, batch_size: int,
                 buckets: Sequence[int] = DEFAULT_BUCKETS, param_dtype: str = "float32",
                 compute_dtype: str = "float32") -> None:
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError(f"batch_size={batch_size} and max_new_tokens={max_new_tokens} must be >= 1")
        self.path = Path(path)
        self.mesh = mesh
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.buckets = tuple(buckets)
        self.dtypes = {"param_dtype": param_dtype, "compute_dtype": compute_dtype}
        assets = assets_dir(self.path)
        self.tokenizer = load_tokenizer(assets)
        generation_config = assets / "generation_config.json"
        self.stop_ids = stop_token_ids(self.tokenizer, generation_config if generation_config.is_file() else None)
        self.sampling = dict(HF_SAMPLING_DEFAULTS)
        if generation_config.is_file():
            saved = json.loads(generation_config.read_text())
            self.sampling.update({k: saved[k] for k in HF_SAMPLING_DEFAULTS if saved.get(k) is not None})
        self._model = None

    def method(self, temperature: float) -> Greedy | Sample:
        if temperature < GREEDY_BELOW:
            return Greedy()
        return Sample(temperature=temperature, top_k=int(self.sampling["top_k"]), top_p=float(self.sampling["top_p"]))

    def reply(self, conversations: Sequence[list[Message]], *, temperature: float = 0.0, seed: int = 0) -> list[Reply]:
        """One reply per conversation (ending in a user message), generated in batches of
        `batch_size` sorted by prompt length. A prompt longer than the largest bucket is not
        generated: its reply is empty with finish_reason "prompt_too_long"."""
        prompts = [chat_token_ids(self.tokenizer, messages, add_generation_prompt=True) for messages in conversations]
        replies: list[Reply | None] = [None] * len(prompts)
        limit = max(self.buckets)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        for i in order:
            if len(prompts[i]) > limit:
                replies[i] = Reply("", PROMPT_TOO_LONG, 0)
        fitting = [i for i in order if replies[i] is None]
        with jax.set_mesh(self.mesh):
            for start in range(0, len(fitting), self.batch_size):
                rows = fitting[start:start + self.batch_size]
                completions = generate(
                    self._loaded(), [prompts[i] for i in rows], max_new_tokens=self.max_new_tokens,
                    stop_ids=self.stop_ids, method=self.method(temperature), seed=seed + start,
                    buckets=self.buckets, batch_multiple=self.mesh.shape["data"] * self.mesh.shape["fsdp"],
                )
                for i, completion in zip(rows, completions):
                    text = self.tokenizer.decode(completion.tokens, skip_special_tokens=True).strip()
                    replies[i] = Reply(text, completion.finish_reason, len(completion.tokens))
        return replies

    def release(self) -> None:
        """Drop the loaded weights (the next reply loads them again)."""
        self._model = None

    def _loaded(self):
        if self._model is None:
            self._model = load_model(self.path, self.mesh, **self.dtypes)
        return self._model

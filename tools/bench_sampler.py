"""Decode throughput of the jitted sampler vs transformers `generate` on SmolLM2-135M-Instruct.

    python tools/bench_sampler.py [--batches 1 8 32] [--new-tokens 128] [--lora]

Same prompts, greedy, fp32, same run. Decode tokens/s = generated tokens / (generation time -
prefill time), prefill measured separately with max_new_tokens=1; compilation excluded (warm-up
call first). The memory-bandwidth roofline assumes every decode step reads all parameters once
(plus the KV cache); this machine's bandwidth is measured in the same run. With --lora, the same sampler also runs the
model with rank-16 adapters on all seven projections applied per token (as a LoRA run's judge would
sample unmerged) beside the plain model (what `load_model` gives: the adapters merged)."""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np
import torch
import transformers

from judgejax.model import lora
from judgejax.model.build import model_from_params, params_of
from judgejax.model.config import LoraConfig
from judgejax.model.hf_import import import_hf
from judgejax.fetch.smollm2 import smollm2_path
from judgejax.sample.sampler import generate
from judgejax.sharding import MeshConfig, make_mesh
from judgejax.tokenizer import chat_token_ids, load_tokenizer

QUESTIONS = ["What is the capital of France?", "Write a haiku about the sea.", "Explain photosynthesis briefly.",
             "Which is larger, 9.11 or 9.9?", "Give three tips for learning a language.", "What does DPO stand for?",
             "Name a prime number above 100.", "Summarise the plot of Hamlet in two sentences."]


def bandwidth_gbs() -> float:
    src = np.ones(64 * 2**20 // 4, np.float32)  # 64 MiB, past the caches
    dst = np.empty_like(src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(5))
    return 2 * src.nbytes / best / 1e9  # read + write


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--lora", action="store_true", help="also time adapters applied instead of merged")
    args = parser.parse_args()
    path = smollm2_path()
    tokenizer = load_tokenizer(path)
    hf = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    mesh = make_mesh(MeshConfig(data=1), devices=jax.devices()[:1])
    model = import_hf(path, mesh)
    if args.lora:
        adapted = model.cfg.replace(lora=LoraConfig())
        applied = model_from_params(adapted, lora.with_fresh_adapters(adapted, params_of(model), mesh))
    params_bytes = sum(p.numel() * 4 for p in hf.parameters())
    bw = bandwidth_gbs()
    torch.set_num_threads(os.cpu_count() or 1)
    n = args.new_tokens
    rows, lora_rows = [], []
    for batch in args.batches:
        prompts = [chat_token_ids(tokenizer, [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}], True)
                   for i in range(batch)]
        kw = dict(stop_ids=[], buckets=(64,))
        generate(model, prompts, max_new_tokens=n, **kw)  # compile
        generate(model, prompts, max_new_tokens=1, **kw)
        prefill = min(_timed(lambda: generate(model, prompts, max_new_tokens=1, **kw)) for _ in range(2))
        ours = min(_timed(lambda: generate(model, prompts, max_new_tokens=n, **kw)) for _ in range(2)) - prefill
        if args.lora:
            generate(applied, prompts, max_new_tokens=n, **kw)  # compile
            generate(applied, prompts, max_new_tokens=1, **kw)
            a_prefill = min(_timed(lambda: generate(applied, prompts, max_new_tokens=1, **kw)) for _ in range(2))
            a_decode = min(_timed(lambda: generate(applied, prompts, max_new_tokens=n, **kw)) for _ in range(2)) - a_prefill
            lora_rows.append((batch, batch * n / ours, batch * n / a_decode))

        tokenizer.padding_side = "left"
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        kwargs = dict(attention_mask=mask, do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=None)
        with torch.no_grad():
            hf.generate(ids, max_new_tokens=2, **kwargs)
            hf_prefill = _timed(lambda: hf.generate(ids, max_new_tokens=1, **kwargs))
            theirs = _timed(lambda: hf.generate(ids, max_new_tokens=n, min_new_tokens=n, **kwargs)) - hf_prefill
        roofline = batch * bw * 1e9 / params_bytes  # tokens/s if each step only streams the weights
        rows.append((batch, batch * n / ours, batch * n / theirs, (batch * n / ours) / roofline))
    print(f"bandwidth {bw:.1f} GB/s, parameters {params_bytes / 1e6:.0f} MB fp32, {n} new tokens, greedy\n")
    print("| batch | judgejax decode tok/s | transformers generate tok/s | ratio | share of bandwidth roofline |")
    print("|---|---|---|---|---|")
    for batch, ours, theirs, share in rows:
        print(f"| {batch} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x | {share:.0%} |")
    if lora_rows:
        print("\n| batch | merged decode tok/s | adapters applied decode tok/s | merged / applied |\n|---|---|---|---|")
        for batch, merged, applied_rate in lora_rows:
            print(f"| {batch} | {merged:.1f} | {applied_rate:.1f} | {merged / applied_rate:.2f}x |")
    print(f"\ncommand: python tools/bench_sampler.py --batches {' '.join(map(str, args.batches))} --new-tokens {n}"
          + (" --lora" if args.lora else ""))


if __name__ == "__main__":
    main()

"""Examples/s of `judgejax eval rewardbench` (verdict-prob and generative) vs a transformers
implementation, on the same stratified RewardBench sample with SmolLM2-135M-Instruct, same run.

    python tools/bench_eval.py [--data FILE] [--limit-per-subset 1] [--new-tokens 32] [--batch-size 8]
    python tools/bench_eval.py --full-verdict-prob [--full-out DIR]   # also the full 2,985-row run

Both sides judge the same items (each example in its seeded A/B order, pair-v2 prompt through the
chat template, float32) in the same length-sorted batches; each timing covers tokenization and
judging. judgejax runs its eval shard loop (`run_shard`) on one device: a first pass compiles
(reported as "cold"), the second is timed. It runs twice: as `judgejax eval` does (the prompt
prefix every prompt of a batch shares computed once, the rest packed into rows), and with every
prompt prefilled whole in a row of its own (what the transformers side does), so the table shows
what each part is worth. transformers: left-padded batches on CPU;
verdict-prob is one prefill (only the last position projected to the vocabulary) and one cached
forward per verdict continuation; generative is `generate(do_sample=False)` with the same stop
ids. The agreement columns check that both sides computed the same thing.

With --full-verdict-prob, also times `judgejax eval rewardbench --mode verdict-prob` over all
2,985 rows (model load and compilation included) and prints its scores. That run takes hours on
a 2-core CPU; it resumes from --full-out when stopped."""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import tempfile
import time
from pathlib import Path

import jax
import torch
import transformers

from bench_common import cores, markdown_table
from judgejax.data.jsonl import read_appended
from judgejax.eval.examples import Item, load_rewardbench, make_items, select_examples
from judgejax.eval.options import EvalOptions
from judgejax.eval.run import build_judge, evaluate, run_shard
from judgejax.eval.shards import record_key, shard_path
from judgejax.judge.templates import get_template, pair_messages
from judgejax.fetch.smollm2 import smollm2_path
from judgejax.sharding import MeshConfig, make_mesh
from judgejax.tokenizer import stop_token_ids

DATA_ENV = "JUDGEJAX_REWARDBENCH"
TEMPLATE = "pair-v2"


def judgejax_pass(judge, items: list[Item], batch_size: int) -> tuple[float, dict]:
    """Seconds for judgejax's shard loop over `items` (into a scratch folder), and its records by key."""
    with tempfile.TemporaryDirectory() as out:
        began = time.perf_counter()
        run_shard(judge, items, Path(out), 0, 1, batch_size, show_progress=False)
        seconds = time.perf_counter() - began
        return seconds, {record_key(r): r for r in read_appended(shard_path(out, 0, 1), repair=False)}


class TransformersJudge:
    """The transformers side: chat-template prompts, left-padded batches, torch on CPU."""

    def __init__(self, model, tokenizer, stop_ids: list[int]):
        self.model, self.tokenizer, self.stop_ids = model, tokenizer, stop_ids
        self.template = get_template(TEMPLATE)
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
        self.verdicts = [tokenizer(self.template.verdict_text(letter), add_special_tokens=False)["input_ids"]
                         for letter in "AB"]

    def prompt(self, item: Item) -> list[int]:
        e = item.example
        messages, _ = pair_messages(self.template, e.prompt, e.chosen, e.rejected, item.swapped)
        return list(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                       return_dict=True)["input_ids"])

    def left_pad(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[self.pad] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        return ids, mask

    @torch.no_grad()
    def verdict_logps(self, prompts: list[list[int]]) -> torch.Tensor:
        """log p(verdict A), log p(verdict B) per prompt: [len(prompts), 2]."""
        ids, mask = self.left_pad(prompts)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(out.logits[:, -1].float(), -1)
        rows = len(prompts)
        scores = []
        for verdict in self.verdicts:
            logp = first[:, verdict[0]]
            rest = len(verdict) - 1
            if rest:
                step = self.model(input_ids=torch.tensor(verdict[:-1]).expand(rows, rest),
                                  attention_mask=torch.cat([mask, torch.ones(rows, rest, dtype=mask.dtype)], 1),
                                  position_ids=positions[:, -1:] + 1 + torch.arange(rest),
                                  cache=copy.deepcopy(out.cache))
                steps = torch.log_softmax(step.logits.float(), -1)
                logp = logp + steps[:, torch.arange(rest), torch.tensor(verdict[1:])].sum(-1)
            scores.append(logp)
        return torch.stack(scores, 1)

    @torch.no_grad()
    def greedy(self, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
        """Greedy continuations, each cut after its first stop id."""
        ids, mask = self.left_pad(prompts)
        out = self.model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=new_tokens,
                                  pad_token_id=self.pad, eos_token_id=self.stop_ids)
        completions = []
        for row in out[:, ids.shape[1]:].tolist():
            end = next((i + 1 for i, token in enumerate(row) if token in self.stop_ids), len(row))
            completions.append(row[:end])
        return completions

    def run(self, mode: str, items: list[Item], batch_size: int, new_tokens: int) -> tuple[float, dict]:
        """Seconds to judge `items` (tokenization included), longest prompts first in batches, and
        per key (log p(A), log p(B)) or the greedy tokens."""
        began = time.perf_counter()
        prompts = [self.prompt(item) for item in items]
        order = sorted(range(len(items)), key=lambda i: -len(prompts[i]))
        results = {}
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            chunk = [prompts[i] for i in batch]
            outputs = (self.verdict_logps(chunk).tolist() if mode == "verdict-prob"
                       else self.greedy(chunk, new_tokens))
            results.update({items[i].key: output for i, output in zip(batch, outputs)})
        return time.perf_counter() - began, results


def agreement(mode: str, ours: dict, theirs: dict) -> str:
    keys = sorted(ours)
    if mode == "verdict-prob":
        same = sum(ours[k]["verdict"] == ("A" if theirs[k][0] > theirs[k][1] else "B") for k in keys)
        gap = max(abs(ours[k][f] - theirs[k][j]) for k in keys for j, f in enumerate(("logp_a", "logp_b")))
        return f"{same}/{len(keys)} same verdict, max abs log-prob difference {gap:.1e}"
    same = sum(ours[k]["output_ids"] == theirs[k] for k in keys)
    return f"{same}/{len(keys)} identical greedy outputs"


def full_verdict_prob(args: argparse.Namespace, model: str, mesh) -> None:
    out = args.full_out or tempfile.mkdtemp(prefix="bench-eval-full-")
    opts = EvalOptions(benchmark="rewardbench", model=model, data=args.data, out=out, mode="verdict-prob",
                       seed=args.seed, batch_size=args.batch_size)
    began = time.perf_counter()
    summary = evaluate(opts, mesh=mesh)
    seconds = time.perf_counter() - began
    scores = summary["scores"]
    print(f"\nFull verdict-prob run ({summary['num_examples']} rows, model load and compilation included): "
          f"{seconds:.0f} s, {summary['num_examples'] / seconds:.2f} examples/s; results in {out}")
    print(markdown_table(["overall", *scores["sections"]],
                         [[f"{100 * scores['overall']:.1f}", *(f"{100 * v:.1f}" for v in scores["sections"].values())]]))
    print(f"\noptions: {json.dumps(opts.recorded())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get(DATA_ENV),
                        help=f"the RewardBench v1 `filtered` split (default ${DATA_ENV})")
    parser.add_argument("--model", default=None, help="HF folder (default: the cached SmolLM2-135M-Instruct)")
    parser.add_argument("--subsets", nargs="+", metavar="SUBSET", help="only these subsets (default: all 23)")
    parser.add_argument("--limit-per-subset", type=int, default=1, help="examples per subset, a seeded draw (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the draw and each example's A/B order")
    parser.add_argument("--new-tokens", type=int, default=32, help="generative: new-token cap (default 32)")
    parser.add_argument("--batch-size", type=int, default=8, help="judgements per batch, both sides (default 8)")
    parser.add_argument("--torch-threads", type=int, default=cores(),
                        help="torch intra-op threads (default: the cores this process may use)")
    parser.add_argument("--full-verdict-prob", action="store_true",
                        help="also time the full 2,985-row verdict-prob run and print its scores (hours on 2 cores)")
    parser.add_argument("--full-out", help="output folder of the full run (default: a new temporary folder)")
    args = parser.parse_args()
    if args.data is None:
        parser.error(f"give --data or set ${DATA_ENV} to the RewardBench v1 `filtered` split")
    model_path = args.model or str(smollm2_path())
    torch.set_num_threads(args.torch_threads)

    items = make_items(select_examples(load_rewardbench(args.data), args.subsets, args.limit_per_subset, args.seed),
                       args.seed, both_orders=False)
    mesh = make_mesh(MeshConfig(data=1), devices=jax.devices()[:1])
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_path)
    hf = transformers.AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    generation_config = Path(model_path) / "generation_config.json"
    stop_ids = stop_token_ids(tokenizer, generation_config if generation_config.is_file() else None)
    reference = TransformersJudge(hf, tokenizer, stop_ids)

    rows = []
    n = len(items)
    with jax.set_mesh(mesh):
        for mode in ("verdict-prob", "generative"):
            opts = EvalOptions(benchmark="rewardbench", model=model_path, data=args.data, out="", mode=mode,
                               template=TEMPLATE, seed=args.seed, batch_size=args.batch_size,
                               max_new_tokens=args.new_tokens if mode == "generative" else None)
            label = mode if mode == "verdict-prob" else f"generative ({args.new_tokens} new tokens)"
            seconds, theirs = reference.run(mode, items, args.batch_size, args.new_tokens)
            rows.append([label, "transformers", n, "", f"{seconds:.1f}", f"{n / seconds:.2f}", "1.00x", ""])
            for share_and_pack, name in ((False, "judgejax, whole prompts"), (True, "judgejax (shared prefix, packed)")):
                judge = build_judge(opts, mesh, share_and_pack=share_and_pack)
                cold, _ = judgejax_pass(judge, items, args.batch_size)
                warm, ours = judgejax_pass(judge, items, args.batch_size)
                rows.append([label, name, n, f"{cold:.1f}", f"{warm:.1f}", f"{n / warm:.2f}",
                             f"{seconds / warm:.2f}x", agreement(mode, ours, theirs)])

    lengths = sorted(len(reference.prompt(item)) for item in items)
    print(f"SmolLM2-135M-Instruct ({model_path}), float32, {len(items)} examples ({args.limit_per_subset} per subset, "
          f"seed {args.seed}, seeded A/B order), prompts {lengths[0]}-{lengths[-1]} tokens (median "
          f"{lengths[len(lengths) // 2]}), batch {args.batch_size}; {cores()} cores, torch threads "
          f"{args.torch_threads}, jax {jax.__version__} on {jax.devices()[0].platform}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}\n")
    print(markdown_table(["mode", "implementation", "examples", "cold s", "s", "ex/s", "vs transformers",
                          "agreement with transformers"], rows))
    command = ["python", "tools/bench_eval.py", "--data", args.data, "--limit-per-subset", str(args.limit_per_subset),
               "--seed", str(args.seed), "--new-tokens", str(args.new_tokens), "--batch-size", str(args.batch_size),
               "--torch-threads", str(args.torch_threads)]
    if args.model:
        command += ["--model", args.model]
    if args.subsets:
        command += ["--subsets", *args.subsets]
    if args.full_verdict_prob:
        command += ["--full-verdict-prob"] + (["--full-out", args.full_out] if args.full_out else [])
    print(f"\ncommand: {shlex.join(command)}")
    if args.full_verdict_prob:
        full_verdict_prob(args, model_path, mesh)


if __name__ == "__main__":
    main()

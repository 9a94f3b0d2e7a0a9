"""`judgejax label`: the downstream loop. The policy (--policy) samples two answers to every
prompt; the judge (--judge) compares them greedily in both A/B orders with --template; a prompt
whose judge picks the same answer in both orders becomes a pair in OUT/pairs.jsonl
(prompt/chosen/rejected), which `judgejax dpo` reads as data.path. Identical answers, parse errors
and inconsistent picks are counted in OUT/summary.json and dropped. Resumable: rerun the same
command after a crash."""

from __future__ import annotations

import argparse
import json
import pathlib

from judgejax.commands.common import add_mesh, chat_backend, model_path
from judgejax.commands.sections import add_section_options, section_from_args
from judgejax.judge.label import LabelConfig


def register(sub) -> None:
    help_line = "make preference pairs for a policy with a trained judge (both orders, consistent picks)"
    p = sub.add_parser("label", help=help_line, description=__doc__, epilog="example: judgejax label --prompts judgejax/demo_data/pref_en.jsonl --field prompt "
               "--policy SmolLM2-135M-Instruct --judge runs/demo/judge-hf --out runs/label")
    p.add_argument("--prompts", required=True,
                   help="JSONL of prompts: --field holds the user message, `id` (optional) names the row")
    p.add_argument("--field", default="question",
                   help="column with the user message (default question): a string, a list of strings (the first "
                        "is used) or a chat (its first user message)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--policy", type=model_path, help="the policy: HF folder, judgejax checkpoint or training run")
    p.add_argument("--policy-url", help="OpenAI-compatible endpoint serving the policy, instead of --policy")
    p.add_argument("--policy-url-model", help="model name at --policy-url")
    p.add_argument("--judge", type=model_path, help="the trained judge: HF folder, judgejax checkpoint or training run")
    p.add_argument("--judge-url", help="OpenAI-compatible endpoint serving the judge, instead of --judge")
    p.add_argument("--judge-url-model", help="model name at --judge-url")
    add_section_options(p, LabelConfig)
    p.add_argument("--limit", type=int, help="use the first N prompts (default: all)")
    p.add_argument("--batch-size", type=int, default=8,
                   help="conversations per sampler batch (or requests in flight) (default 8)")
    add_mesh(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> None:
    from judgejax.judge.label import label, read_prompts

    config = section_from_args(LabelConfig, args)
    prompts = read_prompts(pathlib.Path(args.prompts), args.field, args.limit)
    policy = chat_backend(args.policy, args.policy_url, args.policy_url_model, args.mesh, args.batch_size,
                          ("--policy", "--policy-url"))
    judge = chat_backend(args.judge, args.judge_url, args.judge_url_model, args.mesh, args.batch_size,
                         ("--judge", "--judge-url"))
    summary = label(prompts, policy, judge, pathlib.Path(args.out), config)
    print(json.dumps(summary, indent=2))

"""`judgejax synth`: judge-data synthesis from preference rows (stages 1-3), or DPO pairs from
the SFT judge's own samples (`--stage dpo`)."""

from __future__ import annotations

import argparse
import json
import pathlib

from judgejax.commands.common import add_mesh, chat_backend


def register(sub) -> None:
    p = sub.add_parser(
        "synth", help="synthesize judge SFT data and DPO candidates (or, with --stage dpo, DPO pairs)",
        description="Stage sft (default): preference rows (JSONL from `judgejax data prepare`: id, source, "
                    "source_row, domain, question, chosen, rejected) become judge instructions with a template and "
                    "A/B order drawn per row; the teacher judges each in both orders; rows it gets right in both "
                    "orders become SFT data, the others DPO candidates. Stage dpo: the SFT judge (--model) samples "
                    "judgements of the candidates; right vs wrong verdicts become DPO pairs. Resumable.")
    p.add_argument("--stage", choices=("sft", "dpo"), default="sft")
    p.add_argument("--input", help="preference rows (stage sft)")
    p.add_argument("--out", required=True, help="output folder (stage dpo reads its dpo_candidates.jsonl)")
    p.add_argument("--model", help="teacher (stage sft) or SFT judge (stage dpo): HF folder, checkpoint or run; "
                                   "`labels` (stage sft) writes a fixed short analysis with the correct verdict "
                                   "and holds --dpo-share of the rows out for the DPO stage")
    p.add_argument("--dpo-share", type=float, default=0.5, help="with --model labels: rows held out for DPO")
    p.add_argument("--url", help="OpenAI-compatible endpoint (e.g. http://host:8000/v1) instead of --model; "
                                 "API key from $OPENAI_API_KEY if set; failed requests retried with backoff")
    p.add_argument("--url-model", help="model name at --url")
    p.add_argument("--templates", help="comma-separated template names (default: all but pair-v2)")
    p.add_argument("--samples", type=int, default=2, help="judgements per instruction and order (default 2)")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="use the first N input rows")
    p.add_argument("--decontaminate", help="RewardBench parquet: drop rows whose question overlaps its prompts")
    p.add_argument("--batch-size", type=int, default=8,
                   help="conversations per sampler batch (--model), or concurrent requests (--url)")
    add_mesh(p)
    p.set_defaults(func=main)


def teacher(args: argparse.Namespace):
    from judgejax.judge.synth import ChatTeacher, LabelTeacher

    if args.model == "labels" and not args.url:
        return LabelTeacher(args.dpo_share, args.seed)
    return ChatTeacher(chat_backend(args.model, args.url, args.url_model, args.mesh, args.batch_size))


def main(args: argparse.Namespace) -> None:
    from judgejax.judge.synth import SynthConfig, read_rows, synthesize, synthesize_dpo

    fields = dict(samples=args.samples, temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=args.seed)
    if args.templates:
        fields["templates"] = tuple(t.strip() for t in args.templates.split(","))
    config = SynthConfig(**fields)
    out = pathlib.Path(args.out)
    if args.stage == "dpo":
        summary = synthesize_dpo(out, teacher(args), config)
    else:
        if not args.input:
            raise SystemExit("--stage sft needs --input")
        rows = read_rows(pathlib.Path(args.input), args.limit)
        checker = None
        if args.decontaminate:
            from judgejax.judge.decontam import Decontaminator, rewardbench_references

            checker = Decontaminator(rewardbench_references(args.decontaminate))
        summary = synthesize(rows, out, teacher(args), config, checker)
    print(json.dumps(summary, indent=2))

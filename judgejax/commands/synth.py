"""`judgejax synth`: judge-data synthesis. Stage sft (default): preference rows (JSONL from
`judgejax data prepare`: id, source, source_row, domain, question, chosen, rejected) become judge
instructions with a template and A/B order drawn per row; the teacher judges each in both orders;
rows it gets right in both orders become SFT data, the others DPO candidates. Stage dpo: the SFT
judge (--model) samples judgements of the candidates; right vs wrong verdicts become DPO pairs.
Resumable. A teacher behind the OpenAI Batch API, paid once and replayable: --batch-requests
writes the teacher requests as a Batch API input file; --batch-output runs stages 1-3 with its
output file (give both the same --input, --limit, --samples, --temperature, --seed and
--templates)."""

from __future__ import annotations

import argparse
import json
import pathlib
from judgejax.commands.common import add_mesh, chat_backend, model_path
from judgejax.commands.sections import add_section_options, section_from_args
from judgejax.judge.synth import SynthConfig

SHOWN = 10  # rows awaiting replies and problems of each reason printed (batch_summary.json has all)


def register(sub) -> None:
    help_line = "synthesize judge SFT data and DPO candidates (or, with --stage dpo, DPO pairs)"
    p = sub.add_parser("synth", help=help_line, description=__doc__)
    p.add_argument("--stage", choices=("sft", "dpo"), default="sft")
    p.add_argument("--input", help="preference rows (stage sft)")
    p.add_argument("--out", required=True, help="output folder (stage dpo reads its dpo_candidates.jsonl)")
    teachers = p.add_mutually_exclusive_group()
    teachers.add_argument("--model", type=model_path, help="teacher (stage sft) or SFT judge (stage dpo): HF folder, checkpoint or run; "
                                   "`labels` (stage sft) writes a fixed short analysis with the correct verdict "
                                   "and holds --dpo-share of the rows out for the DPO stage")
    p.add_argument("--dpo-share", type=float, default=0.5, help="with --model labels: rows held out for DPO (default 0.5)")
    teachers.add_argument("--url", help="OpenAI-compatible endpoint (e.g. http://host:8000/v1) instead of --model; "
                                        "API key from $OPENAI_API_KEY if set; failed requests retried with backoff")
    teachers.add_argument("--batch-requests", metavar="FILE",
                          help="stage sft, instead of --model/--url: write stage 1 to --out and the teacher requests "
                               "(model --url-model; one per instruction and sample, custom_id ID|ORDER|SAMPLE|DIGEST) "
                               "as an OpenAI Batch API input file, then stop. Only replies never received are asked "
                               "for (instructions in judgements.jsonl or replies in batch_replies.jsonl are not), so "
                               "a rerun after a partial output file asks for what is missing")
    teachers.add_argument("--batch-output", metavar="FILE",
                          help="stage sft, instead of --model/--url: the Batch API output file answering "
                               "--batch-requests; rows whose requests are all answered are judged (stages 1-3), "
                               "the others wait for a later output file. Bad lines are counted by reason in "
                               "--out/batch_summary.json")
    p.add_argument("--url-model", help="model name at --url, or in the requests of --batch-requests")
    add_section_options(p, SynthConfig)
    p.add_argument("--limit", type=int, help="use the first N input rows (default: all)")
    p.add_argument("--decontaminate", nargs="+", metavar="[BENCHMARK=]PATH",
                   help="drop rows whose question overlaps these evaluation prompts: a RewardBench v1 parquet, or "
                        "rewardbench2=PATH, judgebench=PATH, rmbench=PATH (RM-Bench's prompts are RewardBench's: give "
                        "both) (default: no check)")
    p.add_argument("--batch-size", type=int, default=8,
                   help="conversations per sampler batch (--model), or concurrent requests (--url) (default 8)")
    add_mesh(p)
    p.set_defaults(func=main)


def teacher(args: argparse.Namespace, config: SynthConfig):
    from judgejax.judge.synth import ChatTeacher, LabelTeacher

    if args.model == "labels" and not args.url:
        return LabelTeacher(args.dpo_share, config.seed)
    return ChatTeacher(chat_backend(args.model, args.url, args.url_model, args.mesh, args.batch_size))


def main(args: argparse.Namespace) -> None:
    from judgejax.judge.synth import synthesize_dpo

    config = section_from_args(SynthConfig, args)
    out = pathlib.Path(args.out)
    if args.stage == "dpo":
        if args.batch_requests or args.batch_output:
            raise SystemExit("--batch-requests and --batch-output are for --stage sft")
        summary = synthesize_dpo(out, teacher(args, config), config)
    else:
        summary = sft(args, out, config)
    print(json.dumps(summary, indent=2, ensure_ascii=False))


def sft(args: argparse.Namespace, out: pathlib.Path, config: SynthConfig) -> dict:
    """Stages 1-3 with the chosen teacher, the Batch API requests, or stages 1-3 with its replies."""
    from judgejax.judge.batch_api import replay, write_requests
    from judgejax.judge.synth import synthesize
    from judgejax.sources.pair import read_pairs

    if not args.input:
        raise SystemExit("--stage sft needs --input")
    pairs = read_pairs(args.input, args.limit)
    checker = None
    if args.decontaminate:
        from judgejax.eval.benchmarks import decontamination_references
        from judgejax.judge.decontam import Decontaminator

        checker = Decontaminator(decontamination_references(args.decontaminate))
    if args.batch_requests:
        if not args.url_model:
            raise SystemExit("--batch-requests needs --url-model (the model named in the requests)")
        return write_requests(pairs, out, pathlib.Path(args.batch_requests), args.url_model, config, checker)
    if args.batch_output:
        batch, summary = replay(pairs, out, pathlib.Path(args.batch_output), config, checker)
        shown = {reason: problems[:SHOWN] for reason, problems in batch["problems"].items()}
        print(json.dumps({**batch, "awaiting_rows": batch["awaiting_rows"][:SHOWN], "problems": shown},
                         indent=2, ensure_ascii=False))
        print(f"(at most {SHOWN} rows and problems of each reason shown; all in {out / 'batch_summary.json'})")
        return summary
    return synthesize(pairs, out, teacher(args, config), config, checker)

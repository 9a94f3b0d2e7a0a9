"""`judgejax eval rewardbench|pairwise|merge`: sharded pairwise-judge evaluation with official
RewardBench scoring, per-example records and a report."""

from __future__ import annotations

import argparse
import os

from judgejax.commands.common import add_dtypes, add_mesh, model_path

DATA_ENV = "JUDGEJAX_REWARDBENCH"
MODES = ("generative", "verdict-prob", "implicit-reward")
MODE_HELP = ("generative: the judge prompt through the chat template, greedy decoding, verdict parsed from the text "
             "(RewardBench's official protocol). verdict-prob: no generation; compares log p(verdict A) and "
             "log p(verdict B) as continuations of the judge prompt. implicit-reward: a DPO policy against its "
             "--reference; 1 iff the chosen answer's summed log-prob ratio is strictly higher")


def shard_arg(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: expected INDEX/COUNT such as 0/4")
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: need 0 <= INDEX < COUNT")
    return index, count


def _common(p: argparse.ArgumentParser, both_orders_default: bool) -> None:
    p.add_argument("--model", required=True, type=model_path, help="HF model folder, `judgejax import` checkpoint or training run folder")
    p.add_argument("--mode", choices=MODES, default="generative", help=MODE_HELP)
    p.add_argument("--template", help="judge template (default pair-v2, RewardBench's official prompt); any name from "
                                      "judgejax.judge.templates, so a judge trained in its own format is scored in it")
    p.add_argument("--both-orders", action=argparse.BooleanOptionalAction, default=both_orders_default,
                   help="also judge every example with A and B exchanged: both-order accuracy, consistency, position "
                        f"bias P(verdict=A), parse-error rate (default: {'on' if both_orders_default else 'off'})")
    p.add_argument("--subsets", nargs="+", metavar="SUBSET", help="only these subsets")
    p.add_argument("--limit-per-subset", type=int, metavar="N",
                   help="at most N examples per subset, a seeded draw (a quick stratified run)")
    p.add_argument("--seed", type=int, default=0, help="seeds each example's A/B order and the per-subset draw")
    p.add_argument("--max-new-tokens", type=int, help="generative mode: new-token limit (default 2048, as official)")
    p.add_argument("--reference", type=model_path, help="implicit-reward mode: the reference model the DPO policy was trained against")
    p.add_argument("--out", required=True, help="output folder (resumes the run already there)")
    p.add_argument("--batch-size", type=int, default=8,
                   help="judgements per batch, best a multiple of the mesh's data x fsdp size (default 8)")
    p.add_argument("--shard", type=shard_arg, metavar="I/N",
                   help="run shard I of N as an independent job (default: one shard per JAX process); the job "
                        "that completes the last shard merges")
    add_mesh(p)
    add_dtypes(p)


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a judge: RewardBench v1 or any pairwise file",
                       description="Evaluate a pairwise judge. Writes per-judgement JSONL shards, then (when all "
                                   "shards are done) results.jsonl, summary.json, report.md and scores.png.")
    benchmarks = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")

    rb = benchmarks.add_parser("rewardbench", help="RewardBench v1 (2,985 pairs), scored as the official code does",
                               description="RewardBench v1 with official scoring: per-subset means, sections "
                                           "weighted by the official counts (math-prm 984), overall = mean of the "
                                           "four sections. The chosen answer is shown as A or B by a seeded coin "
                                           "per example, recorded in each record.")
    rb.add_argument("--data", default=os.environ.get(DATA_ENV),
                    help=f"the RewardBench `filtered` split as parquet/jsonl (default ${DATA_ENV}); columns "
                         "prompt/chosen/rejected/subset/id, or question/response_A/response_B/subset/id with "
                         "response_A the chosen answer")
    _common(rb, both_orders_default=False)
    rb.set_defaults(func=main)

    pw = benchmarks.add_parser("pairwise", help="any pairwise file (prompt, two answers, which is better)",
                               description="Judge a pairwise file (jsonl, json, parquet or a datasets folder) "
                                           "through a column mapping; reports accuracy per subset and overall, and "
                                           "(by default) both-order diagnostics.")
    pw.add_argument("--data", required=True, help="the pairwise file")
    pw.add_argument("--columns", required=True, metavar="prompt=COL,a=COL,b=COL[,label=COL][,subset=COL][,id=COL]",
                    help="which columns hold the prompt and the two answers; label says which answer is better "
                         "('A'/'B', or 0 for a, 1 for b; without it, a is); subset groups rows; id names them "
                         "(default: the row index)")
    _common(pw, both_orders_default=True)
    pw.set_defaults(func=main)

    mg = benchmarks.add_parser("merge", help="merge the shards of an evaluation folder and write its report",
                               description="Check that the shard files hold every expected judgement exactly once "
                                           "(fails naming what is missing, duplicated or unexpected), then write "
                                           "results.jsonl, summary.json, report.md and scores.png.")
    mg.add_argument("out", help="the evaluation folder")
    mg.set_defaults(func=merge_main)


def main(args: argparse.Namespace) -> None:
    from judgejax.eval.examples import parse_columns
    from judgejax.eval.options import EvalOptions
    from judgejax.eval.run import evaluate

    if args.data is None:
        raise SystemExit(f"judgejax eval rewardbench: give --data or set ${DATA_ENV} to the RewardBench v1 "
                         "`filtered` split (Hugging Face dataset allenai/reward-bench)")
    opts = EvalOptions(
        benchmark=args.benchmark, model=args.model, data=args.data, out=args.out, mode=args.mode,
        columns=parse_columns(args.columns) if args.benchmark == "pairwise" else None,
        template=args.template, reference=args.reference, both_orders=args.both_orders, subsets=args.subsets,
        limit_per_subset=args.limit_per_subset, seed=args.seed, max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size, mesh=args.mesh, shard=args.shard, param_dtype=args.param_dtype,
        compute_dtype=args.compute_dtype,
    )
    summary = evaluate(opts)
    if summary is not None:
        print(f"wrote {args.out}/report.md; overall {100 * summary['scores']['overall']:.1f}")


def merge_main(args: argparse.Namespace) -> None:
    from judgejax.eval.run import finish

    summary = finish(args.out)
    print(f"wrote {args.out}/report.md; overall {100 * summary['scores']['overall']:.1f}")

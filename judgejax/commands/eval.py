"""`judgejax eval rewardbench|rewardbench2|judgebench|rmbench|pairwise|merge`: sharded judge
evaluation with each benchmark's official scoring, per-judgement records and a report."""

from __future__ import annotations

import argparse
import dataclasses
import os

from judgejax.commands.common import add_dtypes, add_mesh, model_path
from judgejax.eval.options import (DEFAULT_MAX_NEW_TOKENS, DEFAULT_RATING_TEMPLATE, DEFAULT_TIES_TEMPLATE, MODES,
                                   JudgeSettings)
from judgejax.judge.templates import DEFAULT_TEMPLATE

DEFAULTS = JudgeSettings()  # the flags' defaults are the settings' own

DATA_ENV = "JUDGEJAX_REWARDBENCH"
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


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, type=model_path, help="HF model folder, `judgejax import` checkpoint or training run folder")
    p.add_argument("--subsets", nargs="+", metavar="SUBSET", help="only these subsets (default: all)")
    p.add_argument("--limit-per-subset", type=int, metavar="N",
                   help="at most N examples per subset, a seeded draw (a quick stratified run; default: all)")
    p.add_argument("--max-new-tokens", type=int, help=f"generative modes: new-token limit (default {DEFAULT_MAX_NEW_TOKENS}, as official)")
    p.add_argument("--out", required=True, help="output folder (resumes the run already there)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                   help=f"judgements per batch, best a multiple of the mesh's data x fsdp size (default {DEFAULTS.batch_size})")
    p.add_argument("--memory-budget", type=float, default=DEFAULTS.memory_budget, metavar="GB",
                   help="on CPU, generative modes: the memory a sampler batch may plan (XLA's plan of its compiled "
                        "program); a batch over it is generated in halves (default 0: 60%% of the memory available "
                        "when the run starts)")
    p.add_argument("--shard", type=shard_arg, metavar="I/N",
                   help="run shard I of N as an independent job (default: one shard per JAX process); the job "
                        "that completes the last shard merges")
    add_mesh(p)
    add_dtypes(p)


def _common(p: argparse.ArgumentParser, both_orders_default: bool) -> None:
    _run_options(p)
    p.add_argument("--mode", choices=MODES, default=MODES[0], help=MODE_HELP)
    p.add_argument("--template", help=f"judge template (default {DEFAULT_TEMPLATE}, RewardBench's official prompt); any "
                                      "name from judgejax.judge.templates, so a judge trained in its own format is "
                                      "scored in it")
    p.add_argument("--both-orders", action=argparse.BooleanOptionalAction, default=both_orders_default,
                   help="also judge every example with A and B exchanged: both-order accuracy, consistency, position "
                        f"bias P(verdict=A), parse-error rate (default: {'on' if both_orders_default else 'off'})")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help=f"seeds each example's A/B order and the per-subset draw (default {DEFAULTS.seed})")
    p.add_argument("--reference", type=model_path, help="implicit-reward mode: the reference model the DPO policy was trained against")


BENCHMARK_HELP = {
    "rewardbench2": ("RewardBench 2 (1,865 prompts, six subsets), scored as the official code does",
                     "rankings: the four answers shown at once (system prompt and format of the official four-way "
                     "prompt), the correct one at a seeded slot. ratings: every answer rated 1-10 alone. pairwise "
                     "(judgejax's own, not the official protocol): the correct answer against each rejected one in both "
                     "orders, a prompt correct only if it wins all. Ties is rated in every mode."),
    "judgebench": ("JudgeBench (GPT-4o split: 350 pairs; Claude split: 270), scored as the official code does",
                   "generative: the judge prompt through the chat template, greedy decoding, the verdict parsed from "
                   "the text. verdict-prob: no generation; the likelier of the template's A and B verdict texts (a "
                   "fast screen). Each pair is judged in both orders."),
    "rmbench": ("RM-Bench (chat, code, math, safety; three styles per answer), scored as the official code does",
                "generative / verdict-prob: each of the 9 (chosen style, rejected style) pairs of a prompt in both "
                "orders. ratings: each of the 6 answers rated 1-10 alone, chosen beats rejected when rated higher."),
}


def _benchmark(benchmarks, name: str) -> None:
    from judgejax.eval.benchmarks import BENCHMARKS

    bench, (short, modes_help) = BENCHMARKS[name], BENCHMARK_HELP[name]
    env = f"JUDGEJAX_{name.upper()}"
    p = benchmarks.add_parser(name, help=short, description=f"{short}. {bench.protocol} Writes per-judgement JSONL "
                              "shards, then results.jsonl, summary.json (scores, 95% bootstrap intervals over prompts, "
                              "input rows skipped by reason) and report.md.")
    default = os.environ.get(env, str(bench.shipped) if bench.shipped else None)
    shipped = f", else the shipped {bench.shipped.name}" if bench.shipped else ""
    p.add_argument("--data", default=default,
                   help=f"the benchmark's data: a file or folder in its published layout, or the hub id {bench.hub} "
                        f"(ID[:SPLIT]; downloaded into --out, needs a network) (default ${env}{shipped})")
    _run_options(p)
    p.add_argument("--mode", choices=bench.modes, default=bench.modes[0], help=f"{modes_help} (default {bench.modes[0]})")
    four_way = "; rankings mode: the four-way template (default rank4-v2)" if name == "rewardbench2" else ""
    p.add_argument("--template", help=f"pairwise modes: the pair template (default {DEFAULT_TEMPLATE}){four_way}")
    if "ratings" in bench.modes:
        p.add_argument("--rating-template", help=f"ratings mode: the rating template (default {DEFAULT_RATING_TEMPLATE}, "
                                                 "RewardBench 2's ratings prompt)")
    if name == "rewardbench2":
        p.add_argument("--ties-template", help=f"the Ties subset's rating template (default {DEFAULT_TIES_TEMPLATE}, the "
                                               "official Ties prompt)")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help=f"seeds the answers' order or slot and the per-subset draw (default {DEFAULTS.seed})")
    p.set_defaults(func=main, both_orders=False, reference=None)


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a judge: RewardBench v1 and 2, JudgeBench, RM-Bench or any pairwise file",
                       description="Evaluate a judge. Writes per-judgement JSONL shards, then (when all shards are "
                                   "done) results.jsonl, summary.json, report.md (and for RewardBench v1 and pairwise "
                                   "files scores.png).")
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
    for name in BENCHMARK_HELP:
        _benchmark(benchmarks, name)

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

    from judgejax.eval.benchmarks import BENCHMARKS, hub_data

    if args.data is None:
        if args.benchmark in BENCHMARKS:
            raise SystemExit(f"judgejax eval {args.benchmark}: give --data or set $JUDGEJAX_{args.benchmark.upper()} "
                             f"(Hugging Face dataset {BENCHMARKS[args.benchmark].hub})")
        raise SystemExit(f"judgejax eval rewardbench: give --data or set ${DATA_ENV} to the RewardBench v1 "
                         "`filtered` split (Hugging Face dataset allenai/reward-bench)")
    if args.benchmark in BENCHMARKS:
        args.data = hub_data(args.data, args.out, BENCHMARKS[args.benchmark].hub.partition(":")[2])
    # Each flag is the option of its name (a benchmark without the flag keeps the option's default).
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(EvalOptions) if hasattr(args, f.name)}
    if args.benchmark == "pairwise":
        given["columns"] = parse_columns(args.columns)
    opts = EvalOptions(**given)
    summary = evaluate(opts)
    if summary is not None:
        print(_written(args.out, summary))


def merge_main(args: argparse.Namespace) -> None:
    from judgejax.eval.run import finish

    print(_written(args.out, finish(args.out)))


def _written(out: str, summary: dict) -> str:
    score = summary["scores"]["overall"]
    return f"wrote {out}/report.md; overall " + ("– (a score is undefined on this sample)" if score is None
                                                 else f"{100 * score:.1f}")

"""`judgejax mtbench` and `judgejax alignbench`: general-ability evaluation of chat models,
graded by a local judge model or an OpenAI-compatible endpoint."""

from __future__ import annotations

import argparse
import shlex

from judgejax.commands.common import add_dtypes, add_mesh, model_path

LAYOUT_HELP = ("Output: OUT/answers/{model}.jsonl (answers, written first), OUT/judgments/{judge}/{model}.jsonl, "
               "OUT/report/{judge}/{bench}.md|json|png (every model that judge graded in OUT, side by side) and "
               "OUT/commands.jsonl. Everything resumes: finished answers and judgments are skipped. With neither "
               "--model nor --answers, the judge's report is rewritten from the judgments already in OUT.")


def register(sub) -> None:
    p = sub.add_parser(
        "mtbench", help="MT-Bench: answer the 80 two-turn questions, grade with a judge, report",
        description="MT-Bench single-answer grading as FastChat runs it: category temperatures (writing/roleplay "
                    "0.7, stem/humanities 0.1, others greedy), official single-v1 / single-math-v1 (reference-"
                    "guided for math, reasoning, coding) judge prompts and their multi-turn variants for turn 2, "
                    "[[rating]] parsing (unparseable ratings counted, never guessed), scores per turn, per "
                    "category and overall. Data: the shipped FastChat files (Apache-2.0). " + LAYOUT_HELP)
    _add_common(p, max_new_tokens=1024)
    p.set_defaults(func=main, bench="mtbench")

    p = sub.add_parser(
        "alignbench", help="AlignBench: answer the Chinese questions, grade per dimension with a judge, report",
        description="AlignBench as its official scripts run it: temperatures per category from "
                    "config/temperature.json, a reference-guided judge prompt listing the dimensions of the "
                    "question's subcategory, the final {'...': n, '综合得分': n} dict parsed, scores per category, "
                    "per group (中文推理, 中文语言) and overall. AlignBench has no license and is not shipped: "
                    "--data is a copy of https://github.com/THUDM/AlignBench (data/data_v1.1_release.jsonl and "
                    "config/); when it holds judge.py, its official prompt text is used, otherwise judgejax's own "
                    "wording of the same instructions. " + LAYOUT_HELP)
    p.add_argument("--data", required=True, help="AlignBench folder (data/ and config/, e.g. a clone of the repo)")
    _add_common(p, max_new_tokens=2048)
    p.set_defaults(func=main, bench="alignbench")


def _add_common(p: argparse.ArgumentParser, *, max_new_tokens: int) -> None:
    p.add_argument("--out", required=True, help="output folder shared by models and judges")
    p.add_argument("--model", action="append", default=[], metavar="[NAME=]PATH",
                   help="model under test (HF folder, judgejax checkpoint or training run); repeat for several; "
                        "named after the folder unless NAME= is given")
    p.add_argument("--answers", action="append", default=[], metavar="[NAME=]FILE",
                   help="grade an existing answer file (FastChat model_answer format for mtbench, AlignBench "
                        "answer format for alignbench); named after the file unless NAME= is given")
    judge = p.add_mutually_exclusive_group()
    judge.add_argument("--judge", metavar="[NAME=]PATH",
                       help="local judge model (HF folder, checkpoint or training run), greedy decoding")
    judge.add_argument("--judge-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 "
                                           "(temperature 0; API key from $OPENAI_API_KEY if set; requests failing "
                                           "with 408/409/429/5xx or on the network are retried 3 times)")
    p.add_argument("--judge-model", help="model name sent to --judge-url; also names the judge's folders")
    p.add_argument("--judge-max-new-tokens", type=int, default=2048,
                   help="judgment length limit (local judge tokens, or the endpoint's max_tokens)")
    p.add_argument("--judge-parallel", type=int, default=8, help="concurrent requests to --judge-url")
    p.add_argument("--max-new-tokens", type=int, default=max_new_tokens, help="answer length limit per turn")
    p.add_argument("--batch-size", type=int, default=16, help="prompts per sampler batch (models and local judge)")
    p.add_argument("--limit", type=int, help="only the first N questions (a quick check)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed of the models under test")
    add_mesh(p)
    add_dtypes(p)


def command_line(args: argparse.Namespace) -> str:
    """The command as parsed (defaults included), for the output folder's record."""
    parts = ["judgejax", args.bench]
    for name, value in sorted(vars(args).items()):
        if name in ("func", "bench", "command") or value is None or value == []:
            continue
        flag = "--" + name.replace("_", "-")
        for item in value if isinstance(value, list) else [value]:
            text = ",".join(str(getattr(item, axis)) for axis in ("data", "fsdp", "tensor")) if name == "mesh" else str(item)
            parts += [flag, text]
    return shlex.join(parts)


def main(args: argparse.Namespace) -> None:
    from judgejax.general.judges import Judge
    from judgejax.general.layout import named_path
    from judgejax.sample.chat import LocalChat
    from judgejax.sample.http_chat import HttpChat
    from judgejax.sharding import make_mesh

    if args.judge_url and not args.judge_model:
        raise SystemExit("--judge-url needs --judge-model (the model name the endpoint serves)")
    if args.judge_model and not args.judge_url:
        raise SystemExit("--judge-model names the model of --judge-url; give --judge-url too")
    if not (args.model or args.answers or args.judge or args.judge_url):
        raise SystemExit("nothing to do: give --model and/or --answers, and --judge or --judge-url to grade")
    mesh = make_mesh(args.mesh) if args.model or args.judge else None

    def chat(path: str, max_new_tokens: int) -> LocalChat:
        return LocalChat(model_path(path), mesh, max_new_tokens=max_new_tokens, batch_size=args.batch_size,
                         param_dtype=args.param_dtype, compute_dtype=args.compute_dtype)

    models = [(name, chat(path, args.max_new_tokens)) for name, path in map(named_path, args.model)]
    judge = None
    if args.judge:
        name, path = named_path(args.judge)
        judge = Judge(chat(path, args.judge_max_new_tokens), name)
    elif args.judge_url:
        judge = Judge(HttpChat(args.judge_url, args.judge_model, max_new_tokens=args.judge_max_new_tokens,
                               parallel=args.judge_parallel), args.judge_model)
    common = dict(models=models, answer_files=[named_path(a) for a in args.answers], judge=judge,
                  limit=args.limit, seed=args.seed, command=command_line(args))
    if args.bench == "mtbench":
        from judgejax.general.mtbench import run_mtbench

        report = run_mtbench(args.out, **common)
    else:
        from judgejax.general.alignbench import run_alignbench

        report = run_alignbench(args.data, args.out, **common)
    if report is None:
        print(f"answers in {args.out}/answers; grade them with --judge or --judge-url")
    else:
        print(report["md"].read_text())
        print(f"report: {report['md']}, {report['json']}, {report['png']}")

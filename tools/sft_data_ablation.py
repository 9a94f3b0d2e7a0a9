"""The data-amount ablation of the SFT stage: the same SFT run on nested shares of the SFT pairs,
each judge scored on the in-domain held-out pairs and on a RewardBench sample.

A pipeline config (the GPT-4 teacher: `synth.teacher: gpt4-arena`) gives the data and the SFT
settings: its prepare and synth stages run once (skipped when done, e.g. by `judgejax pipeline`
in the same output_dir). The SFT pairs (both orders of one pair stay together) are put in a
seeded order and each fraction takes a prefix of it, so every smaller share lies inside the larger
ones; SFT then runs from the base model with the config's own settings (its epochs: fewer pairs,
fewer steps). Fraction 0 is the base model; fraction 1 reuses the pipeline's SFT judge when its
stage is done (same data, same settings). Each judge is scored in both orders (generative, or
verdict-prob with `--mode verdict-prob`) on every held-out pair (95% intervals resampled by
prompt) and on `--rewardbench-per-subset` rows of each RewardBench subset. Settings are chosen on
the held-out split, never on RewardBench. Resumable; `OUT/ablation.json` is rewritten after each
point.

  python tools/sft_data_ablation.py --config configs/judge-quality-h100.yaml --out runs/sft-data-ablation
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import shlex
import sys
import time

import bench_common as bc
from judge_quality_report import ablation_table
from learning_curve import METRICS, arena_pipeline, score
from judgejax.data.jsonl import read_appended, write_jsonl
from judgejax.eval.options import EvalOptions
from judgejax.eval.run import evaluate
from judgejax.pipeline.config import stage_config
from judgejax.pipeline.stages import Pipeline
from judgejax.train.loop import run as train

DEFAULT_FRACTIONS = (0.125, 0.25, 0.5, 1.0)


def nested_shares(rows: list[dict], fractions: list[float], seed: int) -> dict[float, list[dict]]:
    """For each fraction, the rows of the first round(fraction x pairs) pairs (by `id`, at least one
    for a fraction above 0) of one seeded order of the pairs; rows keep their file order."""
    pairs = list(dict.fromkeys(r["id"] for r in rows))
    random.Random(seed).shuffle(pairs)
    shares = {}
    for fraction in fractions:
        chosen = set(pairs[: max(1, round(fraction * len(pairs)))] if fraction else ())
        shares[fraction] = [r for r in rows if r["id"] in chosen]
    return shares


def rewardbench_sample(model: str, out: pathlib.Path, pipeline: Pipeline, mode: str, per_subset: int) -> dict:
    """Both-order scores on `per_subset` rows of every RewardBench subset: {metric: {"value", "ci"}}
    overall and per section."""
    e = pipeline.config.eval
    opts = EvalOptions.judging(e, mode=mode, benchmark="rewardbench", model=model, data=e.data, out=str(out),
                               limit_per_subset=per_subset, mesh=pipeline.config.mesh)
    intervals = evaluate(opts, pipeline.mesh)["intervals"]
    return {**{m: intervals["overall"][m] for m in METRICS},
            "sections": {name: part["mean_accuracy"] for name, part in intervals["groups"].items()}}


def trained(run: pathlib.Path) -> dict:
    """A finished SFT run: the model path, its last logged step and first and last logged losses."""
    records = read_appended(run / "metrics.jsonl")
    return {"model": str(run), "steps": records[-1]["step"] if records else 0,
            "first_loss": records[0]["loss"] if records else None, "last_loss": records[-1]["loss"] if records else None}


def train_share(pipeline: Pipeline, rows: list[dict], folder: pathlib.Path) -> dict:
    """SFT from the base model on `rows` with the config's SFT settings."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "sft.jsonl"
    write_jsonl(data, rows)
    run = folder / "sft"
    train(stage_config(pipeline.config, "sft", pipeline.config.base_model, str(data), str(run)), "sft")
    return trained(run)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="pipeline YAML with synth.teacher: gpt4-arena")
    parser.add_argument("--fractions", type=float, nargs="+", default=list(DEFAULT_FRACTIONS),
                        help="shares of the SFT pairs, increasing, in [0, 1]; 0 is the base model "
                             f"(default: {' '.join(f'{f:g}' for f in DEFAULT_FRACTIONS)})")
    parser.add_argument("--rewardbench-per-subset", type=int, default=10,
                        help="RewardBench rows per subset in each judge's sample (default: 10)")
    parser.add_argument("--mode", choices=("generative", "verdict-prob"), default="generative",
                        help="how each judge is scored (default: generative: analysis, then verdict)")
    parser.add_argument("--out", required=True, help="output folder (resumes the run already there)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="pipeline config overrides")
    args = parser.parse_args(argv)
    if args.fractions != sorted(set(args.fractions)) or not 0 <= args.fractions[0] <= args.fractions[-1] <= 1:
        parser.error(f"--fractions {args.fractions}: must be increasing, within [0, 1]")
    if args.rewardbench_per_subset < 1:
        parser.error(f"--rewardbench-per-subset {args.rewardbench_per_subset}: must be >= 1")
    out = pathlib.Path(args.out)
    pipeline = arena_pipeline(parser, args.config, args.overrides, "sft_data_ablation")
    config = pipeline.config
    rows = read_appended(pipeline.path("synth", "sft.jsonl"))
    heldout = pipeline.path("data", "heldout.jsonl")
    result = {"config": args.config, "overrides": args.overrides, "mode": args.mode, "base_model": config.base_model,
              "sft_pairs": len({r["id"] for r in rows}), "heldout_pairs": len(read_appended(heldout)),
              "rewardbench_per_subset": args.rewardbench_per_subset,
              "command": shlex.join(["python", "tools/sft_data_ablation.py", *(sys.argv[1:] if argv is None else argv)]),
              "points": []}
    for fraction, share in nested_shares(rows, args.fractions, config.prepare.seed).items():
        began, folder = time.time(), out / f"share-{fraction:g}"
        if not fraction:
            judge = {"model": config.base_model, "steps": 0, "first_loss": None, "last_loss": None}
        elif fraction == 1 and pipeline.path("done", "sft.json").is_file():
            bc.log("sft_data_ablation", f"share 1: the pipeline's SFT judge {pipeline.path('sft')}")
            judge = trained(pipeline.path("sft"))
        else:
            bc.log("sft_data_ablation", f"share {fraction:g}: SFT on {len(share)} examples")
            judge = train_share(pipeline, share, folder)
        point = {"fraction": fraction, "pairs": len({r["id"] for r in share}), "examples": len(share), **judge,
                 "heldout": score(judge["model"], heldout, folder / args.mode / "heldout", pipeline, args.mode),
                 "rewardbench": rewardbench_sample(judge["model"], folder / args.mode / "rewardbench", pipeline,
                                                   args.mode, args.rewardbench_per_subset)}
        result["points"].append({**point, "seconds": round(time.time() - began, 1)})
        out.mkdir(parents=True, exist_ok=True)
        (out / "ablation.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"SFT data-amount ablation, {config.base_model}: {result['sft_pairs']} SFT pairs, "
          f"{result['heldout_pairs']} held-out pairs, RewardBench {args.rewardbench_per_subset} rows per subset; "
          f"{args.mode} in both orders, 95% bootstrap intervals\n")
    print("\n".join(ablation_table(result["points"])))
    print(f"\nReproduce: `{result['command']}`")


if __name__ == "__main__":
    main()

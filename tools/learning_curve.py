"""Learning curves of the SFT stage on the in-domain split: how a judge's accuracy on the held-out
pairs, and on pairs it was trained on, moves with SFT steps and the learning rate.

A pipeline config (the GPT-4 teacher: `synth.teacher: gpt4-arena`) gives the data: its prepare and
synth stages run once (skipped when done). Then for each learning rate, SFT runs with a constant
schedule (after the config's warmup) and stops at each of `--steps`, resuming from its checkpoint
for the next, so the points lie on one run. At step 0 (the base model) and each stop, the judge is
scored in both orders (verdict-prob, or generative with `--mode generative`) on the held-out
pairs and on a sample of the SFT stage's training pairs: both-order accuracy, consistency and
P(verdict=A), with 95% bootstrap intervals (pairs resampled by prompt). Settings are chosen here, on the in-domain split, never on
RewardBench. Resumable: finished evaluations are read back.

  python tools/learning_curve.py --config configs/judge-quality-cpu.yaml --steps 10 25 50 \\
      --learning-rates 1e-5 5e-5 --out runs/learning-curve
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

import bench_common as bc
from judgejax.commands.common import model_path
from judgejax.data.jsonl import read_appended
from judgejax.eval.bootstrap import format_interval, run_intervals
from judgejax.eval.options import EvalOptions
from judgejax.eval.run import evaluate
from judgejax.eval.shards import MERGED
from judgejax.model.checkpoint import RUN_CHECKPOINTS
from judgejax.pipeline.config import ARENA_TEACHER, load_pipeline_config, stage_config
from judgejax.pipeline.stages import Pipeline
from judgejax.sources.arena import prompt_of_example
from judgejax.sources.pair import read_pairs, write_pairs
from judgejax.train.loop import run as train

COLUMNS = {"prompt": "question", "a": "chosen", "b": "rejected", "id": "id"}
METRICS = ("mean_accuracy", "consistency", "p_verdict_a")


def score(model: str, data: pathlib.Path, out: pathlib.Path, pipeline: Pipeline, mode: str) -> dict:
    """`mode` in both orders (generative: up to eval.max_new_tokens); {metric: {"value", "ci"}} over
    every example, resampled by prompt (the pairs of one prompt share its question and answers)."""
    e = pipeline.config.eval
    opts = EvalOptions.judging(e, mode=mode, benchmark="pairwise", model=model, data=str(data), out=str(out),
                               columns=COLUMNS, both_orders=True, subsets=None, limit_per_subset=None,
                               mesh=pipeline.config.mesh)
    evaluate(opts, pipeline.mesh)
    ci = run_intervals(read_appended(out / MERGED), str, seed=e.seed, cluster_of=prompt_of_example)
    return {m: ci["overall"][m] for m in METRICS}


def arena_pipeline(parser: argparse.ArgumentParser, path: str, overrides: list[str], command: str) -> Pipeline:
    """The pipeline of a config with the GPT-4 teacher (whose held-out split these tools score on),
    its base model resolved and its prepare and synth stages done (skipped when done before)."""
    config, _ = load_pipeline_config(path, overrides)
    if config.synth.teacher != ARENA_TEACHER:
        parser.error(f"{path}: synth.teacher must be {ARENA_TEACHER} (the in-domain split comes from it)")
    pipeline = Pipeline(dataclasses.replace(config, base_model=model_path(config.base_model)), command)
    pipeline.stage("prepare", pipeline.prepare)
    pipeline.stage("synth", pipeline.synth)
    return pipeline


def sft_config(pipeline: Pipeline, lr: float, steps: int, run: pathlib.Path):
    sft = dict(pipeline.config.sft)
    sft["optim"] = {**sft.get("optim", {}), "learning_rate": lr, "schedule": "constant"}
    sft["train"] = {**sft.get("train", {}), "steps": steps, "save_every": steps, "keep": 1}
    config = dataclasses.replace(pipeline.config, sft=sft)
    return stage_config(config, "sft", pipeline.config.base_model, str(pipeline.path("synth", "sft.jsonl")), str(run))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="pipeline YAML with synth.teacher: gpt4-arena")
    parser.add_argument("--steps", type=int, nargs="+", required=True, help="SFT steps at which to score (increasing)")
    parser.add_argument("--learning-rates", type=float, nargs="+", required=True)
    parser.add_argument("--mode", choices=("verdict-prob", "generative"), default="verdict-prob",
                        help="how each point is scored: verdict-prob (no generation) or generative (analysis, "
                             "then verdict: what an analysis-first judge is trained to do; slower)")
    parser.add_argument("--train-sample", type=int, default=40, help="SFT training pairs scored at each point")
    parser.add_argument("--out", required=True, help="output folder (resumes the run already there)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="pipeline config overrides")
    args = parser.parse_args(argv)
    if args.steps != sorted(set(args.steps)) or args.steps[0] < 1:
        parser.error("--steps must be increasing and >= 1")
    out = pathlib.Path(args.out)
    pipeline = arena_pipeline(parser, args.config, [*args.overrides, f"output_dir={out / 'pipeline'}"], "learning_curve")
    config = pipeline.config
    sft_gap = config.arena.sft_min_gap
    trained = [p for p in read_pairs(pipeline.path("data", "prefs.jsonl")) if p.grading.gap >= sft_gap]
    sample = out / "train-sample.jsonl"
    write_pairs(trained[: args.train_sample], sample)
    sets = {"heldout": pipeline.path("data", "heldout.jsonl"), "train": sample}

    points = []
    base = {name: score(config.base_model, data, out / args.mode / "base" / name, pipeline, args.mode)
            for name, data in sets.items()}
    for lr in args.learning_rates:
        points.append({"learning_rate": lr, "step": 0, **base})
        run = out / f"lr-{lr:g}" / "sft"
        for steps in args.steps:
            point = out / args.mode / f"lr-{lr:g}" / f"step-{steps}"
            if not all((point / name / "summary.json").exists() for name in sets):  # else scored before
                saved = [int(p.name) for p in (run / RUN_CHECKPOINTS).glob("*") if p.name.isdigit()]
                if max(saved, default=0) > steps:
                    raise SystemExit(f"{run} holds step {max(saved)}, past {steps}: give a new --out for these --steps")
                bc.log("learning_curve", f"lr {lr:g}: SFT to step {steps}")
                train(sft_config(pipeline, lr, steps, run), "sft")
            points.append({"learning_rate": lr, "step": steps,
                           **{name: score(str(run), data, point / name, pipeline, args.mode) for name, data in sets.items()}})
            (out / f"curve-{args.mode}.json").write_text(json.dumps(points, indent=1))

    rows = [[f"{p['learning_rate']:g}", p["step"], *(format_interval(p[name][m]) for name in sets for m in METRICS)]
            for p in points]
    header = ["lr", "SFT steps", *(f"{name} {m}" for name in sets for m in ("both-order acc", "consistency", "P(A)"))]
    print(f"SFT learning curves, {config.base_model}; {len(read_appended(sets['heldout']))} held-out pairs and "
          f"{len(read_appended(sample))} training pairs, {args.mode} in both orders, 95% bootstrap intervals\n")
    print(bc.markdown_table(header, rows))
    print("\nReproduce: `python tools/learning_curve.py " + " ".join(sys.argv[1:]) + "`")


if __name__ == "__main__":
    main()

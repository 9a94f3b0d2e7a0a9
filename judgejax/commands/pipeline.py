"""`judgejax pipeline`: the whole recipe in one command (see judgejax/pipeline/stages.py)."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys

from judgejax.commands.common import model_path


def register(sub) -> None:
    p = sub.add_parser(
        "pipeline", help="prepare -> synth -> SFT -> DPO pairs -> DPO -> eval base/SFT/DPO -> export -> report",
        description="Run the RISE-Judge recipe end to end from one YAML config (see configs/demo-cpu.yaml). "
                    "Stages whose output is complete are skipped, so rerunning after a crash resumes; "
                    "training stages resume from their checkpoints. Writes OUTPUT_DIR/report.md.")
    p.add_argument("--config", required=True, help="pipeline YAML")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: write the report from the stages and evaluations finished so far "
                        "(after training, a long run's progress; missing results are marked as not run)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. sft.train.steps=20")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> None:
    from judgejax.pipeline.config import load_pipeline_config
    from judgejax.pipeline.stages import Pipeline

    config, _ = load_pipeline_config(args.config, args.overrides)
    if not args.report_only:  # a report reads results only: no model is needed, none is built
        config = dataclasses.replace(
            config, base_model=model_path(config.base_model),
            synth=dataclasses.replace(config.synth, teacher=model_path(config.synth.teacher)),
            mtbench=dataclasses.replace(config.mtbench, judge=model_path(config.mtbench.judge)))
    command = shlex.join(["judgejax", "pipeline", "--config", args.config, *args.overrides])
    pipeline = Pipeline(config, command)
    report = pipeline.report_so_far() if args.report_only else pipeline.run()
    print(f"report: {report}", file=sys.stderr)

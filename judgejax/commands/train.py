"""`judgejax sft` and `judgejax dpo`: run a training stage from a YAML config."""

from __future__ import annotations

import argparse
import dataclasses

from judgejax.commands.common import model_path

STAGES = {
    "sft": "supervised fine-tuning on chat conversations (loss on assistant tokens)",
    "dpo": "DPO (+NLL on chosen) on preference pairs, against the starting model",
}


def register(sub) -> None:
    for stage, about in STAGES.items():
        p = sub.add_parser(stage, help=about, description=f"{about}. Reads a YAML run config; key=value "
                           "overrides such as optim.learning_rate=1e-5 or train.steps=100 follow it. Resumes "
                           "from the latest complete checkpoint in train.output_dir.")
        p.add_argument("--config", required=True, help="YAML run config (see configs/)")
        p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")
        p.set_defaults(func=main)


def main(args: argparse.Namespace) -> None:
    from judgejax.train.config import load_config
    from judgejax.train.loop import run

    config = load_config(args.config, args.overrides)
    run(dataclasses.replace(config, model=dataclasses.replace(config.model, path=model_path(config.model.path))),
        args.command)

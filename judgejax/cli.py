"""The `judgejax` command: one entry point, one subcommand per job (each in judgejax/commands/)."""

from __future__ import annotations

import argparse
import sys

from judgejax.commands import chat, convert, eval, general_eval, label, pipeline, plan, prepare, synth, train
from judgejax.distributed import initialize

# Each module registers its subcommands and sets `func` on their parsers.
COMMANDS = [chat, prepare, synth, train, eval, general_eval, label, pipeline, convert, plan]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="judgejax",
        description="Train LLM-as-a-judge models in JAX: SFT and DPO on sharded meshes, "
                    "HF import/export, sampling.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not getattr(args, "single_process", False):
        initialize()  # joins the other hosts of a multi-host run; a no-op for one process
    from judgejax.train.loop import Preempted

    try:
        args.func(args)
    except Preempted as stop:
        print(stop, file=sys.stderr)
        return 143  # 128 + SIGTERM, as if the signal had ended the process
    return 0


if __name__ == "__main__":
    sys.exit(main())

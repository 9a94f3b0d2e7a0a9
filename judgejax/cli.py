"""The `judgejax` command: one entry point, one subcommand per job (each in judgejax/commands/).

An expected failure (bad config, data, label, model folder, mesh or checkpoint; a missing file; an
endpoint that gives no reply) prints one line `judgejax: error: <message>` to stderr and exits 1;
`--debug` or JUDGEJAX_DEBUG=1 shows its traceback instead. Usage errors exit 2 (argparse)."""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (also JUDGEJAX_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from judgejax.distributed import DistributedInitError
    from judgejax.sample.http_chat import ChatError
    from judgejax.train.loop import Preempted

    try:
        if not getattr(args, "single_process", False):
            initialize()  # joins the other hosts of a multi-host run; a no-op for one process
        args.func(args)
    except Preempted as stop:
        print(stop, file=sys.stderr)
        return 143  # 128 + SIGTERM, as if the signal had ended the process
    except (ValueError, OSError, ChatError, DistributedInitError) as error:
        if args.debug or os.environ.get("JUDGEJAX_DEBUG", "") not in ("", "0"):
            raise
        message = " ".join(str(error).split())
        print(f"judgejax: error: {message or type(error).__name__}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Before a TPU slice is created: compile the run's programs for it on this host
(`judgejax plan --compile`, the TPU compiler from libtpu) and refuse a run that would not fit.

Only `judgejax sft|dpo --config FILE [KEY=VALUE ...]` runs are checked (any other command is
launched as it is). The check runs in a child process of this Python, from the repository root,
so the launcher itself needs no JAX."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Sequence

from judgejax.plan.chips import Slice

STAGES = ("sft", "dpo")
# libtpu's start-up lines while it looks for a TPU VM's metadata: not the check's output.
LIBTPU_NOISE = ("W0", "I0", "E0", "WARNING: could not determine", "Failed to find host bounds",
                "=== Source Location", "learning/", "libtpu_init", "WARNING: Logging before InitGoogle()")


class PreflightError(RuntimeError):
    pass


def plan_command(command: Sequence[str], slice_: Slice) -> list[str] | None:
    """The `judgejax plan --compile` arguments checking `command` on `slice_`, or None when
    `command` is not a `judgejax sft|dpo --config FILE` run."""
    if len(command) < 2 or pathlib.Path(command[0]).name != "judgejax" or command[1] not in STAGES:
        return None
    args, config, overrides = list(command[2:]), None, []
    while args:
        arg = args.pop(0)
        if arg == "--config" and args:
            config = args.pop(0)
        elif arg.startswith("--config="):
            config = arg.split("=", 1)[1]
        elif "=" in arg and not arg.startswith("-"):
            overrides.append(arg)
    if config is None:
        return None
    return ["plan", "--config", config, "--type", slice_.name, "--stage", command[1], "--compile", *overrides]


def without_noise(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line and not line.startswith(LIBTPU_NOISE))


def preflight(command: Sequence[str], slice_: Slice, repo: pathlib.Path) -> None:
    """Compile `command`'s run for `slice_`; raises PreflightError (with XLA's table) when a
    program does not fit or the check cannot run."""
    args = plan_command(command, slice_)
    if args is None:
        return
    print(f"preflight: judgejax {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "judgejax", *args], cwd=repo, capture_output=True, text=True)
    output = without_noise(done.stdout + done.stderr)
    if done.returncode == 0:
        print(output.splitlines()[-1] if output else "preflight: fits", flush=True)
        return
    raise PreflightError(f"the run does not fit {slice_.name} or cannot be checked (judgejax plan --compile exited "
                         f"{done.returncode}); nothing was created. Change the config (remat, mesh, "
                         f"train.grad_accum) or pass --no-preflight. Its output:\n{output}")

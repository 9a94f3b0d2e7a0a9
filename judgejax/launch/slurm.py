"""Run a judgejax command on N GPU nodes under SLURM: `python launch/gpu.py ... -- judgejax sft ...`.

Writes a batch script that starts one process per node (each drives the node's GPUs) with
`srun`, and submits it with `sbatch`. The script wires in the jax.distributed coordinator, the
first node of the allocation (`scontrol show hostnames`), through JUDGEJAX_COORDINATOR,
JUDGEJAX_NUM_PROCESSES and JUDGEJAX_PROCESS_ID, which `judgejax` reads at start-up
(judgejax/distributed.py). `srun --label` prefixes each line with the process number, and
`--kill-on-bad-exit` stops every process when one fails, instead of leaving the rest waiting.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import shlex
import sys
from typing import Sequence

from judgejax.launch.runner import CommandError, DryRunRunner, Runner, SubprocessRunner

REPO = pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class SlurmSpec:
    job_name: str
    nodes: int
    gpus_per_node: int = 8
    workdir: str = str(REPO)
    partition: str | None = None
    account: str | None = None
    time: str | None = None  # e.g. 24:00:00
    venv: str | None = None  # a virtual environment to activate on every node
    output: str = "%x-%j.out"

    def __post_init__(self) -> None:
        if self.nodes < 1 or self.gpus_per_node < 1:
            raise ValueError(f"--nodes {self.nodes} and --gpus-per-node {self.gpus_per_node} must be positive")


def batch_script(spec: SlurmSpec, command: Sequence[str]) -> str:
    """The sbatch script running `command` once per node."""
    directives = [f"--job-name={spec.job_name}", f"--nodes={spec.nodes}", "--ntasks-per-node=1",
                  f"--gpus-per-node={spec.gpus_per_node}", "--exclusive", f"--output={spec.output}"]
    directives += [f"--{key}={value}" for key, value in
                   (("partition", spec.partition), ("account", spec.account), ("time", spec.time)) if value]
    process = f"export JUDGEJAX_PROCESS_ID=$SLURM_PROCID; exec {shlex.join(command)}"
    lines = [
        "#!/bin/bash",
        *(f"#SBATCH {d}" for d in directives),
        f"# One process per node, each driving its {spec.gpus_per_node} GPUs; process 0 runs on the first node",
        "# and hosts the jax.distributed coordinator. Written by launch/gpu.py.",
        "set -euo pipefail",
        f"cd {shlex.quote(spec.workdir)}",
        *([f"source {shlex.quote(spec.venv)}/bin/activate"] if spec.venv else []),
        'export JUDGEJAX_COORDINATOR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)'
        ':$((20000 + SLURM_JOB_ID % 20000))"',
        'export JUDGEJAX_NUM_PROCESSES="$SLURM_NNODES"',
        f"srun --label --kill-on-bad-exit=1 --ntasks-per-node=1 bash -c {shlex.quote(process)}",
    ]
    return "\n".join(lines) + "\n"


def submit(script_path: pathlib.Path, runner: Runner) -> str:
    """sbatch the script; returns the job id."""
    argv = ["sbatch", str(script_path)]
    result = runner.run(argv)
    if result.returncode:
        raise CommandError(argv, result)
    match = re.search(r"Submitted batch job (\d+)", result.stdout)
    return match.group(1) if match else result.stdout.strip()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python launch/gpu.py", description=__doc__.split("\n\n")[1],
        epilog="example: python launch/gpu.py --nodes 2 --partition gpu --time 24:00:00 "
               "-- judgejax sft --config configs/qwen2.5-7b.yaml",
    )
    p.add_argument("--nodes", type=int, required=True, help="nodes (one process each)")
    p.add_argument("--gpus-per-node", type=int, default=8, help="GPUs per node (default 8)")
    p.add_argument("--job-name", default="judgejax", help="SLURM job name (default judgejax)")
    p.add_argument("--partition", help="SLURM partition")
    p.add_argument("--account", help="SLURM account")
    p.add_argument("--time", help="time limit, e.g. 24:00:00")
    p.add_argument("--workdir", default=str(REPO), help="folder the command runs in (default: this checkout)")
    p.add_argument("--venv", help="virtual environment to activate on every node (with jax[cuda12] installed)")
    p.add_argument("--script", help="where to write the batch script (default: JOB_NAME.sbatch here)")
    p.add_argument("--dry-run", action="store_true", help="print the script and the sbatch command; submit nothing")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command every node runs")
    return p


def main(argv: Sequence[str] | None = None, *, runner: Runner | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("launch/gpu.py: error: no command: put it after --", file=sys.stderr)
        return 1
    try:
        spec = SlurmSpec(args.job_name, args.nodes, args.gpus_per_node, args.workdir, args.partition,
                         args.account, args.time, args.venv)
    except ValueError as e:
        print(f"launch/gpu.py: error: {e}", file=sys.stderr)
        return 1
    script = batch_script(spec, command)
    path = pathlib.Path(args.script or f"{args.job_name}.sbatch")
    if args.dry_run:
        print(script, end="")
        runner = DryRunRunner()
    else:
        path.write_text(script)
        print(f"wrote {path}")
    try:
        job = submit(path, runner or SubprocessRunner())
    except CommandError as e:
        print(f"launch/gpu.py: error: {e}", file=sys.stderr)
        return 1
    if not args.dry_run:
        print(f"submitted job {job}: {spec.nodes} nodes x {spec.gpus_per_node} GPUs; log {spec.output}")
    return 0

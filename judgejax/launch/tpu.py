"""Run a judgejax command on a Cloud TPU slice: `python launch/tpu.py ... -- judgejax sft ...`.

Creates the slice through a queued resource (spot, reserved or on-demand), waits until it is
ACTIVE, ships the exact commit (git archive) to every worker, installs the pinned dependencies
with jax[tpu], runs the command on all workers with each output line prefixed `[worker N]`, and
when the slice is preempted (queued resource FAILED / SUSPENDED, the TPU gone or PREEMPTED)
deletes and recreates it and runs the same command again, a bounded number of times. The
training loop resumes from the latest checkpoint in train.output_dir, which should be on the
bucket (mounted at /gcs/BUCKET on every worker) so that it outlives the slice.

The gcloud command lines are built by pure functions; a Runner executes them (a dry-run runner
prints them instead), so the whole flow can be tested against a fake gcloud.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import shlex
import shutil
import sys
import tempfile
import time
from typing import Callable, Literal, Sequence

from judgejax.launch.preflight import PreflightError, preflight
from judgejax.launch.remote import pinned_requirements, run_script, setup_script
from judgejax.launch.runner import CommandError, DryRunRunner, Result, Runner, SubprocessRunner
from judgejax.launch.ship import Code, ShipError, code_to_ship
from judgejax.plan.chips import Slice, SliceError, slice_arg

Provisioning = Literal["spot", "reserved", "on-demand"]
WAITING = {"CREATING", "ACCEPTED", "PROVISIONING", "WAITING_FOR_RESOURCES"}  # queued resource states
NODE_WAITING = {"CREATING", "STARTING", "RESTARTING", "REPAIRING", "REIMAGING"}  # TPU node states
REPO = pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class TpuSpec:
    name: str  # the queued resource and the TPU node share it
    slice: Slice
    zone: str
    project: str | None = None
    provisioning: Provisioning = "on-demand"
    runtime_version: str | None = None  # default: the one Google lists for JAX on this generation
    bucket: str | None = None  # gs://NAME, mounted at /gcs/NAME on every worker

    @property
    def where(self) -> list[str]:
        return [f"--zone={self.zone}"] + ([f"--project={self.project}"] if self.project else [])


def create_command(spec: TpuSpec) -> list[str]:
    provisioning = {"spot": ["--spot"], "reserved": ["--reserved"], "on-demand": []}[spec.provisioning]
    return ["gcloud", "compute", "tpus", "queued-resources", "create", spec.name, f"--node-id={spec.name}",
            *spec.where, f"--accelerator-type={spec.slice.gcloud_type}",
            f"--runtime-version={spec.runtime_version or spec.slice.chip.runtime_version}", *provisioning]


def describe_queued_command(spec: TpuSpec) -> list[str]:
    return ["gcloud", "compute", "tpus", "queued-resources", "describe", spec.name, *spec.where,
            "--format=value(state.state)"]


def describe_node_command(spec: TpuSpec) -> list[str]:
    return ["gcloud", "compute", "tpus", "tpu-vm", "describe", spec.name, *spec.where, "--format=value(state)"]


def delete_queued_command(spec: TpuSpec) -> list[str]:
    """Deletes the queued resource and (--force) its TPU."""
    return ["gcloud", "compute", "tpus", "queued-resources", "delete", spec.name, *spec.where, "--force", "--quiet"]


def delete_node_command(spec: TpuSpec) -> list[str]:
    return ["gcloud", "compute", "tpus", "tpu-vm", "delete", spec.name, *spec.where, "--quiet"]


def scp_command(spec: TpuSpec, local: pathlib.Path) -> list[str]:
    return ["gcloud", "compute", "tpus", "tpu-vm", "scp", str(local), f"{spec.name}:{local.name}", *spec.where,
            "--worker=all", "--quiet"]


def ssh_command(spec: TpuSpec, script: str) -> list[str]:
    return ["gcloud", "compute", "tpus", "tpu-vm", "ssh", spec.name, *spec.where, "--worker=all", "--quiet",
            "--ssh-flag=-o ServerAliveInterval=30", "--ssh-flag=-o ServerAliveCountMax=10",
            f"--command={script}"]


def _short(argv: list[str], what: str) -> list[str]:
    """An ssh command line with its script replaced by `what`, for messages."""
    return [a if not a.startswith("--command=") else f"--command=<{what}>" for a in argv]


class LaunchError(RuntimeError):
    pass


class SliceLost(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class Options:
    reuse: bool = False  # run on an existing TPU of this name
    run_only: bool = False  # ... and do not ship code or install (until a recreation needs it)
    delete_at_end: bool = False
    max_retries: int = 3  # runs after the first, whatever made them fail
    provision_timeout_s: float = 7200.0
    poll_s: float = 30.0


class TpuLauncher:
    def __init__(self, spec: TpuSpec, repo: pathlib.Path, runner: Runner, options: Options, *,
                 allow_dirty: bool = False, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, log: Callable[[str], None] | None = None):
        self.spec, self.repo, self.runner, self.options = spec, repo, runner, options
        self.allow_dirty, self.sleep, self.clock = allow_dirty, sleep, clock
        self.log = log or (lambda message: print(f"[launch] {message}", flush=True))
        self.code: Code | None = None

    def _check(self, argv: list[str], result: Result, shown: list[str] | None = None) -> Result:
        if result.returncode:
            raise CommandError(shown or argv, result)
        return result

    def state(self) -> tuple[str, str]:
        """(active | waiting | lost | missing, a description) from the queued resource, or from the
        TPU node when there is no queued resource of this name (a TPU created otherwise)."""
        argv = describe_queued_command(self.spec)
        result = self.runner.run(argv)
        if result.returncode == 0:
            raw = result.stdout.strip()
            kind = "active" if raw == "ACTIVE" else "waiting" if raw in WAITING else "lost"
            return kind, f"queued resource {raw}"
        if "NOT_FOUND" not in result.stderr:
            self._check(argv, result)
        argv = describe_node_command(self.spec)
        result = self.runner.run(argv)
        if result.returncode == 0:
            raw = result.stdout.strip()
            kind = "active" if raw == "READY" else "waiting" if raw in NODE_WAITING else "lost"
            return kind, f"TPU {raw}"
        if "NOT_FOUND" not in result.stderr:
            self._check(argv, result)
        return "missing", "not found"

    def create(self) -> None:
        self.log(f"creating {self.spec.name}: {self.spec.slice.describe()}, {self.spec.provisioning}")
        argv = create_command(self.spec)
        self._check(argv, self.runner.run(argv))

    def delete(self) -> None:
        """Delete the queued resource (and its TPU), or the TPU alone; return once it is gone."""
        kind, raw = self.state()
        if kind == "missing":
            return
        self.log(f"deleting {self.spec.name} ({raw})")
        queued = raw.startswith("queued resource")
        argv = delete_queued_command(self.spec) if queued else delete_node_command(self.spec)
        self._check(argv, self.runner.run(argv))
        start = self.clock()
        while self.state()[0] != "missing":
            if self.clock() - start > self.options.provision_timeout_s:
                raise LaunchError(f"{self.spec.name} still exists {self.options.provision_timeout_s:.0f} s "
                                  "after its deletion")
            self.sleep(self.options.poll_s)

    def wait_active(self) -> None:
        start, shown = self.clock(), None
        while True:
            kind, raw = self.state()
            if raw != shown:
                self.log(f"{self.spec.name}: {raw}")
                shown = raw
            if kind == "active":
                return
            if kind in ("lost", "missing"):
                raise SliceLost(f"{self.spec.name} is {raw}")
            waited = self.clock() - start
            if waited > self.options.provision_timeout_s:
                raise LaunchError(
                    f"{self.spec.name} is still {raw} after {waited:.0f} s (--provision-timeout); it stays "
                    f"queued: delete it with `{shlex.join(delete_queued_command(self.spec))}`")
            self.sleep(self.options.poll_s)

    def ship_and_set_up(self) -> None:
        """Copy the code to every worker and install it with the pinned dependencies."""
        if self.code is None:
            self.code = code_to_ship(self.repo, self.allow_dirty)
        workdir = pathlib.Path(tempfile.mkdtemp(prefix="judgejax-ship-"))
        try:
            self.log(f"shipping {self.code.label} to every worker")
            argv = self.code.archive_command(workdir)
            self._check(argv, self.runner.run(argv))
            argv = scp_command(self.spec, workdir / self.code.archive_name)
            self._check(argv, self.runner.run(argv))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        requirements, python = pinned_requirements(self.repo / "pyproject.toml")
        argv = ssh_command(self.spec, setup_script(self.code.archive_name, requirements, python, self.spec.bucket))
        self.log("installing on every worker")
        self._check(argv, self.runner.run(argv, stream=print), _short(argv, "setup script"))

    def run_everywhere(self, command: Sequence[str]) -> Result:
        return self.runner.run(ssh_command(self.spec, run_script(command)), stream=lambda line: print(line, flush=True))

    def launch(self, command: Sequence[str]) -> None:
        """The whole flow; raises LaunchError when it gives up."""
        kind, raw = self.state()
        if self.options.reuse or self.options.run_only:
            if kind == "missing":
                raise LaunchError(f"no queued resource or TPU named {self.spec.name} in {self.spec.zone} to reuse")
        elif kind != "missing":
            raise LaunchError(f"a queued resource or TPU named {self.spec.name} already exists in "
                              f"{self.spec.zone} ({raw}); pass --reuse to run on it, or choose another --name")
        else:
            self.create()
        needs_setup = not self.options.run_only
        attempt = 0
        try:
            while True:
                attempt += 1
                try:
                    self.wait_active()
                    if needs_setup:
                        self.ship_and_set_up()
                        needs_setup = False
                    self.log(f"running on all workers (attempt {attempt}): {shlex.join(command)}")
                    result = self.run_everywhere(command)
                    if result.returncode == 0:
                        self.log("the command finished on all workers")
                        return
                    failure = f"the command exited with status {result.returncode}"
                except (SliceLost, CommandError) as e:
                    failure = str(e)
                kind, raw = self.state()
                lost = kind in ("lost", "missing")
                if lost:
                    failure += f"; {self.spec.name} is {raw} (preempted or failed)"
                self.log(f"attempt {attempt} failed: {failure}")
                if attempt > self.options.max_retries:
                    raise LaunchError(
                        f"giving up after {attempt} attempts (--max-retries {self.options.max_retries}); last "
                        f"failure: {failure}. Checkpoints in train.output_dir are kept: run the same command "
                        "again to resume from the latest one.")
                if lost:
                    self.log(f"recreating {self.spec.name} (retry {attempt} of {self.options.max_retries})")
                    self.delete()
                    self.create()
                    needs_setup = True
                else:
                    self.log(f"running again on the same slice (retry {attempt} of {self.options.max_retries})")
        finally:
            if self.options.delete_at_end:
                self.delete()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python launch/tpu.py",
        description=__doc__.split("\n\n")[1],
        epilog="example: python launch/tpu.py --name judge-7b --type v5p-64 --zone us-east5-a --spot "
               "--bucket gs://my-bucket -- judgejax sft --config configs/qwen2.5-7b.yaml",
    )
    p.add_argument("--name", required=True, help="name of the queued resource and of its TPU")
    p.add_argument("--type", required=True, type=slice_arg, metavar="TYPE",
                   help="slice type: v4-N / v5p-N (N TensorCores, 2 per chip), v5e-N (v5litepod-N) / v6e-N (N chips)")
    p.add_argument("--zone", required=True, help="e.g. us-east5-a")
    p.add_argument("--project", help="Google Cloud project (default: gcloud's)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--spot", action="store_const", dest="provisioning", const="spot",
                     help="spot capacity: cheaper, preemptible (the launcher recreates and resumes)")
    how.add_argument("--reserved", action="store_const", dest="provisioning", const="reserved",
                     help="the project's reservation")
    p.set_defaults(provisioning="on-demand")
    p.add_argument("--runtime-version", help="TPU software version (default: Google's JAX image for the generation)")
    p.add_argument("--bucket", help="gs://BUCKET to mount at /gcs/BUCKET on every worker (put the model, data and "
                                    "train.output_dir there)")
    p.add_argument("--max-retries", type=int, default=3, help="runs after the first one, after a preemption or a "
                                                             "failure (default 3)")
    p.add_argument("--provision-timeout", type=float, default=7200.0,
                   help="seconds to wait for the slice to become ACTIVE (default 7200)")
    p.add_argument("--poll-interval", type=float, default=30.0, help="seconds between state checks (default 30)")
    p.add_argument("--reuse", action="store_true", help="run on the existing TPU of this name (ships and installs)")
    p.add_argument("--run-only", action="store_true", help="run on the existing TPU without shipping or installing")
    p.add_argument("--delete-at-end", action="store_true", help="delete the slice when the launcher ends")
    p.add_argument("--dry-run", action="store_true", help="print every command (gcloud, git) and run none")
    p.add_argument("--no-preflight", dest="preflight", action="store_false",
                   help="skip the check that a `judgejax sft|dpo --config FILE` run fits the slice: by default its "
                        "programs are compiled for --type with the TPU compiler on this machine first (judgejax plan "
                        "--compile; needs the `tpu` extra) and a run that does not fit is refused before anything "
                        "is created")
    p.add_argument("--allow-dirty", action="store_true",
                   help="ship uncommitted changes to tracked files too (default: refuse a dirty tree)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run on every worker")
    return p


def main(argv: Sequence[str] | None = None, *, repo: pathlib.Path = REPO, runner: Runner | None = None,
         sleep: Callable[[float], None] = time.sleep) -> int:
    args = build_parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        if not command:
            raise LaunchError("no command: put it after --, e.g. -- judgejax sft --config configs/qwen2.5-7b.yaml")
        if not args.type.is_tpu:
            raise LaunchError(f"{args.type.name} is not a Cloud TPU type; for GPUs use launch/gpu.py")
        if args.bucket and not args.bucket.startswith("gs://"):
            raise LaunchError(f"--bucket {args.bucket!r}: expected gs://BUCKET")
        spec = TpuSpec(args.name, args.type, args.zone, args.project, args.provisioning, args.runtime_version,
                       args.bucket)
        options = Options(args.reuse, args.run_only, args.delete_at_end, args.max_retries, args.provision_timeout,
                          args.poll_interval)
        if args.dry_run:
            runner = DryRunRunner(exists=args.reuse or args.run_only)
        elif args.preflight:
            preflight(command, args.type, repo)
        launcher = TpuLauncher(spec, repo, runner or SubprocessRunner(), options, allow_dirty=args.allow_dirty,
                               sleep=sleep)
        launcher.launch(command)
    except (LaunchError, CommandError, ShipError, SliceError, PreflightError) as e:
        print(f"launch/tpu.py: error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0

"""How launchers run their commands: a subprocess runner that streams output, and a dry-run
runner that prints each command instead. Launchers take either, so tests can put a fake
`gcloud` on PATH and a dry run goes through exactly the same steps."""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
import sys
import threading
from typing import Callable, Protocol, Sequence

Stream = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


class CommandError(RuntimeError):
    """A command that failed: the command line and the end of its stderr."""

    def __init__(self, argv: Sequence[str], result: Result):
        self.argv, self.result = list(argv), result
        tail = "\n".join(result.stderr.strip().splitlines()[-20:])
        super().__init__(f"command failed (exit {result.returncode}): {shlex.join(self.argv)}"
                         + (f"\n{tail}" if tail else ""))


class Runner(Protocol):
    def run(self, argv: Sequence[str], *, stream: Stream | None = None) -> Result:
        """Run `argv`; with `stream`, hand it each stdout line as it arrives."""


class SubprocessRunner:
    """Runs commands for real. Streamed commands also echo their stderr lines to ours."""

    def run(self, argv: Sequence[str], *, stream: Stream | None = None) -> Result:
        try:
            proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    bufsize=1)
        except FileNotFoundError as e:
            raise CommandError(argv, Result(127, "", f"{argv[0]}: not found on PATH ({e})")) from None
        err_lines: list[str] = []

        def read_stderr() -> None:
            for line in proc.stderr:
                err_lines.append(line)
                if stream is not None:
                    print(line, end="", file=sys.stderr, flush=True)

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        out_lines = []
        for line in proc.stdout:
            out_lines.append(line)
            if stream is not None:
                stream(line.rstrip("\n"))
        proc.wait()
        reader.join()
        return Result(proc.returncode, "".join(out_lines), "".join(err_lines))


class DryRunRunner:
    """Prints each command and runs none. Answers state queries as for a TPU that does not
    exist until it is created (or does, with `exists=True`), so the launcher walks its
    normal path."""

    def __init__(self, exists: bool = False, out=None):
        self.exists = exists
        self.out = out or sys.stdout

    def run(self, argv: Sequence[str], *, stream: Stream | None = None) -> Result:
        print(f"+ {shlex.join(argv)}", file=self.out, flush=True)
        words = list(argv)
        if "describe" in words:
            if not self.exists:
                return Result(1, "", "NOT_FOUND (dry run)")
            return Result(0, "READY\n" if "tpu-vm" in words else "ACTIVE\n", "")
        if "create" in words:
            self.exists = True
        elif "delete" in words:
            self.exists = False
        return Result(0, "", "")

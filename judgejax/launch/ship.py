"""The exact code a launch runs: a `git archive` of HEAD (or, with --allow-dirty, of the working
tree's tracked files through `git stash create`, which writes no ref and leaves the tree as it is)."""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess


class ShipError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class Code:
    repo: pathlib.Path
    commit: str  # what `git archive` packs
    label: str  # short commit, with -dirty when uncommitted changes are included

    @property
    def archive_name(self) -> str:
        return f"judgejax-{self.label}.tar.gz"

    def archive_command(self, out_dir: pathlib.Path) -> list[str]:
        return ["git", "-C", str(self.repo), "archive", "--format=tar.gz", "-o",
                str(out_dir / self.archive_name), self.commit]


def _git(repo: pathlib.Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        stderr = getattr(e, "stderr", "") or str(e)
        raise ShipError(f"git {' '.join(args)} in {repo} failed: {stderr.strip()}") from None
    return done.stdout.strip("\n")


def code_to_ship(repo: pathlib.Path, allow_dirty: bool) -> Code:
    """HEAD, refusing uncommitted changes to tracked files unless `allow_dirty` (then they are
    shipped too; untracked files never are)."""
    head = _git(repo, "rev-parse", "HEAD")
    changed = _git(repo, "status", "--porcelain", "--untracked-files=no")
    if not changed:
        return Code(repo, head, head[:12])
    if not allow_dirty:
        files = ", ".join(line[3:] for line in changed.splitlines()[:5])
        raise ShipError(f"{repo} has uncommitted changes ({files}{', ...' if len(changed.splitlines()) > 5 else ''}); "
                        "commit them so the run is reproducible, or pass --allow-dirty to ship them as they are")
    return Code(repo, _git(repo, "stash", "create"), f"{head[:12]}-dirty")

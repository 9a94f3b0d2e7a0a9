"""What a source adapter declares: its name, domain, files, and how its records become pairs."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from judgejax.sources.pair import DOMAINS, Pair
from judgejax.sources.tally import OnError, Tally


@dataclass(frozen=True)
class Source:
    """name: the `source` of its pairs. domain: one of DOMAINS. files: paths under the source dir, in the layout of
    shared/data/preferences (a glob names a set of files; each is also its key in decontam_exclusions.json).
    pairs(source_dir, on_error, tally): the candidate pairs, in file order; a candidate that cannot make a pair is
    counted in `tally.dropped` under its reason."""

    name: str
    domain: str
    files: tuple[str, ...]
    pairs: Callable[[Path, OnError, Tally], Iterator[Pair]]

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"source {self.name!r}: domain {self.domain!r} not in {DOMAINS}")

    def missing(self, source_dir: Path) -> list[str]:
        """The declared files (or globs matching nothing) absent from `source_dir`."""
        gone = []
        for pattern in self.files:
            if any(c in pattern for c in "*?["):
                if not any(source_dir.glob(pattern)):
                    gone.append(pattern)
            elif not (source_dir / pattern).is_file():
                gone.append(pattern)
        return gone

"""The prepare config: which sources, how many pairs per source and per domain, the seed, malformed-row policy."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import Literal

from judgejax.config import build, read_yaml, section
from judgejax.sources.pair import DOMAINS
from judgejax.sources.registry import SOURCES


@section
class PrepareConfig:
    """sources: the sources to read (None: every source whose files are in the source dir).
    max_per_source / max_per_domain: the most pairs kept per source / per domain (absent: all). Pairs are kept in
        the order of a seeded hash of their id, so a cap keeps a seeded random subset, the same one whatever else
        is in the run.
    seed: that hash's seed; the output is written in the same order.
    on_error: "raise" on the first malformed source row, or "skip" it and count it by reason."""

    sources: tuple[str, ...] | None = None
    max_per_source: Mapping[str, int] = field(default_factory=dict)
    max_per_domain: Mapping[str, int] = field(default_factory=dict)
    seed: int = 0
    on_error: Literal["raise", "skip"] = "raise"

    def __post_init__(self) -> None:
        if self.sources is not None:
            if not self.sources:
                raise ValueError("sources must be a non-empty list of source names")
            for name in self.sources:
                if name not in SOURCES:
                    raise ValueError(f"sources: unknown source {name!r}; choose from {list(SOURCES)}")
            if len(set(self.sources)) != len(self.sources):
                raise ValueError(f"sources lists a source twice: {list(self.sources)}")
        for key, known in (("max_per_source", list(SOURCES)), ("max_per_domain", DOMAINS)):
            for name, cap in getattr(self, key).items():
                if name not in known:
                    raise ValueError(f"{key}.{name}: unknown name; choose from {list(known)}")
                if cap < 0:
                    raise ValueError(f"{key}.{name} must be a count >= 0, got {cap!r}")


def load_prepare_config(path: str | Path | None, overrides: Sequence[str] = ()) -> PrepareConfig:
    """The config of YAML file `path` (None: the defaults) with `a.b=value` overrides (values parsed as YAML)."""
    raw, source = read_yaml(path, overrides, name="prepare config")
    return build(PrepareConfig, raw, "", source)

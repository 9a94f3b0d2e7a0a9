"""The prepare config: which sources, how many pairs per source and per domain, the seed, malformed-row policy.
Read from YAML with dotted `key=value` overrides; unknown keys and bad values are errors naming the key."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from judgejax.sources.pair import DOMAINS
from judgejax.sources.registry import SOURCES


@dataclass(frozen=True)
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


def _caps(value: object, key: str, known: Sequence[str], where: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: {key} must be a mapping of name to count, got {value!r}")
    for name, cap in value.items():
        if name not in known:
            raise ValueError(f"{where}: {key}.{name}: unknown name; choose from {list(known)}")
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ValueError(f"{where}: {key}.{name} must be a count >= 0, got {cap!r}")
    return dict(value)


def config_from_dict(raw: object, where: str) -> PrepareConfig:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping at the top level, got {raw!r}")
    known = {"sources", "max_per_source", "max_per_domain", "seed", "on_error"}
    for key in raw:
        if key not in known:
            raise ValueError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
    sources = raw.get("sources")
    if sources is not None:
        if not isinstance(sources, list) or not sources:
            raise ValueError(f"{where}: sources must be a non-empty list of source names, got {sources!r}")
        for name in sources:
            if name not in SOURCES:
                raise ValueError(f"{where}: sources: unknown source {name!r}; choose from {list(SOURCES)}")
        if len(set(sources)) != len(sources):
            raise ValueError(f"{where}: sources lists a source twice: {sources}")
        sources = tuple(sources)
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"{where}: seed must be an integer, got {seed!r}")
    on_error = raw.get("on_error", "raise")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"{where}: on_error must be 'raise' or 'skip', got {on_error!r}")
    return PrepareConfig(
        sources=sources,
        max_per_source=_caps(raw.get("max_per_source", {}), "max_per_source", list(SOURCES), where),
        max_per_domain=_caps(raw.get("max_per_domain", {}), "max_per_domain", DOMAINS, where),
        seed=seed,
        on_error=on_error,
    )


def load_prepare_config(path: str | Path | None, overrides: Sequence[str] = ()) -> PrepareConfig:
    """The config of YAML file `path` (None: the defaults) with `a.b=value` overrides (values parsed as YAML)."""
    raw: dict = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ValueError(f"{path}: cannot read the prepare config ({e})") from e
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping at the top level, got {raw!r}")
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {override!r}: expected key=value, e.g. max_per_domain.safety=500")
        *parents, last = key.strip().split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {override!r}: {part} is not a mapping")
        node[last] = yaml.safe_load(text)
    where = str(path) if path is not None else "prepare config"
    if overrides:
        where += f" (with overrides {' '.join(overrides)})"
    return config_from_dict(raw, where)

"""Seeded caps per source and per domain.

Every pair gets a rank, SHA-256 of (seed, id): a seeded random order that does not depend on which other pairs are
present, the platform or the Python version. Going through the pairs in rank order, a pair is dropped as
"over_source_cap" when its source already has max_per_source pairs, else as "over_domain_cap" when its domain already
has max_per_domain pairs. So each source keeps its lowest-ranked pairs, and each domain the lowest-ranked of those.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from judgejax.data.hashing import seeded_digest
from judgejax.sources.pair import Pair
from judgejax.sources.tally import Tally


def rank(seed: int, pair_id: str) -> str:
    return seeded_digest(seed, pair_id, sep="\0").hex()


def balance(
    pairs: Iterable[Pair],
    max_per_source: Mapping[str, int],
    max_per_domain: Mapping[str, int],
    seed: int,
    tallies: Mapping[str, Tally],
) -> list[Pair]:
    """The kept pairs in rank order; the dropped ones are counted in their source's tally."""
    per_source: Counter[str] = Counter()
    per_domain: Counter[str] = Counter()
    kept = []
    for pair in sorted(pairs, key=lambda p: rank(seed, p.id)):
        per_source[pair.source] += 1
        if per_source[pair.source] > max_per_source.get(pair.source, float("inf")):
            tallies[pair.source].dropped["over_source_cap"] += 1
            continue
        per_domain[pair.domain] += 1
        if per_domain[pair.domain] > max_per_domain.get(pair.domain, float("inf")):
            tallies[pair.source].dropped["over_domain_cap"] += 1
            continue
        kept.append(pair)
    return kept

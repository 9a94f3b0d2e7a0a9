"""From source files to one preference JSONL: adapters, decontamination, checks, dedupe, balancing, a report.

For each source, in file order, a candidate pair is dropped (and counted by reason) when
- the adapter cannot build one (see each adapter: "transcripts_diverge", "no_good_vs_bad_step", ...);
- decontam_exclusions.json lists it ("decontam", or "listed_invalid" for its invalid pairs);
- an answer is empty ("empty_answer") or both answers are equal ("same_answers");
- an earlier pair has the same prompt and answers ("duplicate");
then the caps of the config apply (see `balance`), and the pairs are written in the seeded rank order.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from judgejax.sources.balance import balance
from judgejax.sources.config import PrepareConfig
from judgejax.sources.decontam import load_exclusions
from judgejax.sources.pair import DOMAINS, ExclusionKey, Pair
from judgejax.sources.registry import SOURCES
from judgejax.sources.tally import Tally

EXCLUSIONS = "decontam_exclusions.json"
# Report columns, in pipeline order; a column shows when some source has a count there.
REASONS = (
    "transcripts_diverge",
    "no_good_vs_bad_step",
    "no_wrong_final_answer",
    "decontam",
    "listed_invalid",
    "empty_answer",
    "same_answers",
    "duplicate",
    "over_source_cap",
    "over_domain_cap",
)


@dataclass
class Prepared:
    """pairs: the kept pairs in output order. tallies: per source read, in the order read. absent: sources left out
    because their files are not in the source dir, with the files missing. excluded_listed / excluded_matched: the
    entries of the exclusions file, and those that matched a candidate of the sources read."""

    pairs: list[Pair]
    tallies: dict[str, Tally]
    absent: dict[str, list[str]]
    excluded_listed: int
    excluded_matched: int


def _chosen_sources(source_dir: Path, config: PrepareConfig) -> tuple[list[str], dict[str, list[str]]]:
    missing = {name: source.missing(source_dir) for name, source in SOURCES.items()}
    if config.sources is None:
        names = [name for name in SOURCES if not missing[name]]
        if not names:
            raise FileNotFoundError(f"{source_dir}: none of the source files is here (expected e.g. "
                                    f"{source_dir / SOURCES['hh-rlhf'].files[0]})")
        return names, {name: files for name, files in missing.items() if files}
    for name in config.sources:
        if missing[name]:
            raise FileNotFoundError(f"source {name!r} is configured but {source_dir} lacks {', '.join(missing[name])}")
    return list(config.sources), {}


def prepare(source_dir: str | Path, config: PrepareConfig, exclusions: str | Path | None = None) -> Prepared:
    """Reads the sources of `config` from `source_dir` (laid out like shared/data/preferences) and applies the
    exclusions file (default: SOURCE_DIR/decontam_exclusions.json), the checks, dedupe and the caps."""
    source_dir = Path(source_dir)
    names, absent = _chosen_sources(source_dir, config)
    exclusions = Path(exclusions) if exclusions is not None else source_dir / EXCLUSIONS
    if not exclusions.is_file():
        raise FileNotFoundError(f"{exclusions}: no exclusions file; give one with --exclusions")
    excluded = load_exclusions(exclusions, {f for s in SOURCES.values() for f in s.files})
    matched: set[ExclusionKey] = set()
    seen: set[tuple[str, str, str]] = set()
    ids: set[str] = set()
    tallies: dict[str, Tally] = {}
    candidates: list[Pair] = []
    for name in names:
        tally = tallies[name] = Tally()
        pairs = SOURCES[name].pairs(source_dir, config.on_error, tally)
        for pair in tqdm(pairs, desc=name, unit=" pairs", leave=False, mininterval=1.0):
            if pair.id in ids:
                raise ValueError(f"two pairs have the id {pair.id!r} ({pair.source_row})")
            ids.add(pair.id)
            hits = pair.exclusion_keys & excluded.keys()
            key = (json.dumps(pair.prompt_messages, ensure_ascii=False), pair.chosen, pair.rejected)
            if hits:
                matched |= hits
                tally.dropped["decontam" if any(excluded[k] == "decontam" for k in hits) else "listed_invalid"] += 1
            elif not pair.chosen or not pair.rejected:
                tally.dropped["empty_answer"] += 1
            elif pair.chosen == pair.rejected:
                tally.dropped["same_answers"] += 1
            elif key in seen:
                tally.dropped["duplicate"] += 1
            else:
                seen.add(key)
                candidates.append(pair)
    kept = balance(candidates, config.max_per_source, config.max_per_domain, config.seed, tallies)
    for pair in kept:
        tallies[pair.source].kept += 1
    return Prepared(kept, tallies, absent, len(excluded), len(matched))


def format_report(prepared: Prepared) -> str:
    """A Markdown table of counts per source (records read, malformed rows skipped, candidate pairs, drops by
    reason, kept) with a total row, then kept pairs per domain and notes on skipped rows, exclusions and absent
    sources."""
    tallies = prepared.tallies
    reasons = [r for r in REASONS if any(t.dropped[r] for t in tallies.values())]
    unknown = sorted({r for t in tallies.values() for r in t.dropped} - set(REASONS))
    reasons += unknown
    head = ["source", "domain", "records", "skipped", "candidates", *reasons, "kept"]

    def row(name: str, domain: str, ts: list[Tally]) -> list[str]:
        counts = [sum(t.records for t in ts), sum(sum(t.skipped.values()) for t in ts), sum(t.candidates for t in ts)]
        counts += [sum(t.dropped[r] for t in ts) for r in reasons] + [sum(t.kept for t in ts)]
        return [name, domain, *(f"{c:,}" for c in counts)]

    rows = [row(name, SOURCES[name].domain, [t]) for name, t in tallies.items()]
    rows.append(row("total", "", list(tallies.values())))
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    out = [line(head), "|" + "|".join(("-" * (w + 2)) if i < 2 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"]
    out += [line(r) for r in rows]
    per_domain = {d: sum(1 for p in prepared.pairs if p.domain == d) for d in DOMAINS}
    out.append("")
    out.append("kept per domain: " + ", ".join(f"{d} {n:,}" for d, n in per_domain.items()))
    for name, t in tallies.items():
        if t.skipped:
            out.append(f"skipped malformed rows of {name}: " + ", ".join(f"{r} {n}" for r, n in sorted(t.skipped.items())))
    out.append(f"exclusions: {prepared.excluded_matched} of {prepared.excluded_listed} listed entries matched a candidate")
    for name, files in prepared.absent.items():
        out.append(f"not in the source dir, left out: {name} ({', '.join(files)})")
    return "\n".join(out)

"""DebugBench single-bug instances (thunlp/DebugBench, Apache-2.0; the problems and oracle solutions are LeetCode's
and its community's, which that licence cannot cover).

prompt = "Solve the following LeetCode problem in <language>." then `description`, the `examples` and the
`constraints`; chosen = `oracle_code`, rejected = `buggy_code` (the oracle with one implanted bug), both stripped.
The language is the file name's prefix (cpp, java, python3). `content` (the solution write-up) and `explanations`
(the bug) are not used. Not shipped with judgejax (third-party rights): read it from a full copy with --source-dir.
"""
from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

from judgejax.data.errors import DataError, RowRef
from judgejax.sources.pair import Pair, mapping, row_index, row_key, string_field, user_prompt
from judgejax.sources.source import Source
from judgejax.sources.tally import OnError, Tally, parsed_records

FILES = "debugbench/*.json"
LANGUAGES = {"cpp": "C++", "java": "Java", "python3": "Python 3"}


def language_of(path: Path) -> str:
    prefix = path.stem.split("_", 1)[0]
    if prefix not in LANGUAGES:
        raise ValueError(f"{path}: cannot tell the language from the file name; expected a prefix in {sorted(LANGUAGES)}")
    return LANGUAGES[prefix]


def problem_text(record: dict, ref: RowRef, language: str) -> str:
    examples = record.get("examples")
    if examples is None:
        raise DataError(ref, "examples", "missing_field", "field is missing or null")
    if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
        raise DataError(ref, "examples", "wrong_type", "expected a list of strings")
    parts = [f"Solve the following LeetCode problem in {language}.", string_field(record, "description", ref).strip()]
    if examples:
        parts.append("Examples:\n\n" + "\n\n".join(e.strip() for e in examples))
    parts.append("Constraints:\n\n" + string_field(record, "constraints", ref).strip())
    return "\n\n".join(parts)


def _parse(record: object, ref: RowRef, path: Path, language: str) -> Pair:
    record = mapping(record, ref)
    slug = string_field(record, "slug", ref)
    file = f"debugbench/{path.name}"
    index = row_index(ref)
    return Pair(
        id=f"debugbench/{path.stem}/{index}",
        source="debugbench",
        source_row=f"{file} row {index}",
        domain="code",
        prompt_messages=user_prompt(problem_text(record, ref, language), ref, "description"),
        chosen=string_field(record, "oracle_code", ref).strip(),
        rejected=string_field(record, "buggy_code", ref).strip(),
        exclusion_keys=frozenset({row_key(file, ref), (FILES, "slug", slug)}),
    )


def pairs(source_dir: Path, on_error: OnError, tally: Tally) -> Iterator[Pair]:
    for path in sorted(source_dir.glob(FILES)):
        parse = partial(_parse, path=path, language=language_of(path))
        yield from parsed_records(path, parse, on_error, tally)


SOURCE = Source("debugbench", "code", (FILES,), pairs)

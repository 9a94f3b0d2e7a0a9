"""CoCoNot contrast preference set (allenai/noncompliance, MIT on GitHub; GPT-4 chosen answers).

Prompts that look sensitive, incomplete or unanswerable but should be answered: chosen = GPT-4's answer, rejected =
a refusal or weaker answer. prompt = `prompt`, chosen = `chosen`, rejected = `rejected`, all stripped. Not shipped
with judgejax (the Hugging Face copy's licence is unread and the chosen answers are GPT-4 outputs): read it from a
full copy with --source-dir.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from judgejax.data.errors import RowRef
from judgejax.sources.pair import Pair, row_index, string_field, user_prompt
from judgejax.sources.source import Source
from judgejax.sources.tally import OnError, Tally, parsed_records

FILE = "coconot/coconot_pref.jsonl"


def _parse(record: object, ref: RowRef) -> Pair:
    row_id = string_field(record, "id", ref)
    prompt = string_field(record, "prompt", ref)
    return Pair(
        id=f"coconot/{row_id}",
        source="coconot",
        source_row=f"{FILE} row {row_index(ref)}",
        domain="safety",
        prompt_messages=user_prompt(prompt, ref, "prompt"),
        chosen=string_field(record, "chosen", ref).strip(),
        rejected=string_field(record, "rejected", ref).strip(),
        exclusion_keys=frozenset({(FILE, "id", row_id)}),
    )


def pairs(source_dir: Path, on_error: OnError, tally: Tally) -> Iterator[Pair]:
    yield from parsed_records(source_dir / FILE, _parse, on_error, tally)


SOURCE = Source("coconot", "safety", (FILE,), pairs)

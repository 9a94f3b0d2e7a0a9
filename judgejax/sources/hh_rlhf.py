"""Anthropic HH-RLHF harmless-base test transcripts (MIT).

Each row holds two full transcripts "\\n\\nHuman: ...\\n\\nAssistant: ..." that share the dialogue up to their last
"\\n\\nAssistant:" and differ in the final assistant turn. The prompt is the text before the last "\\n\\nAssistant:"
of `chosen`, split into turns at "\\n\\nHuman:" and "\\n\\nAssistant:"; chosen and rejected are the texts after the
last "\\n\\nAssistant:" of each field, stripped. Rows whose two transcripts differ before that point are dropped as
"transcripts_diverge" (their last turns are not two answers to one prompt).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from judgejax.data.errors import DataError, RowRef
from judgejax.sources.pair import Pair, prompt_messages, row_index, row_key, string_field
from judgejax.sources.source import Source
from judgejax.sources.tally import OnError, Tally, parsed_records

FILE = "hh-rlhf/harmless-base_test.jsonl.gz"
LAST = "\n\nAssistant:"
TURN = re.compile(r"\n\n(Human|Assistant):")
ROLES = {"Human": "user", "Assistant": "assistant"}


def split_transcript(text: str, ref: RowRef, field: str) -> tuple[str, str]:
    """(dialogue before the last assistant turn, that turn's text)."""
    cut = text.rfind(LAST)
    if cut < 0:
        raise DataError(ref, field, "no_assistant_turn", 'no "\\n\\nAssistant:" in the transcript')
    return text[:cut], text[cut + len(LAST):]


def dialogue_turns(prefix: str, ref: RowRef, field: str) -> list[tuple[str, str]]:
    """(role, text) turns of a transcript prefix that starts with "\\n\\nHuman:"."""
    parts = TURN.split(prefix)
    if parts[0] != "" or len(parts) < 3:
        raise DataError(ref, field, "not_a_transcript", 'the transcript does not start with "\\n\\nHuman:"')
    return [(ROLES[name], text) for name, text in zip(parts[1::2], parts[2::2])]


def _parse(record: object, ref: RowRef) -> Pair | None:
    chosen_text = string_field(record, "chosen", ref)
    rejected_text = string_field(record, "rejected", ref)
    prefix, chosen = split_transcript(chosen_text, ref, "chosen")
    other, rejected = split_transcript(rejected_text, ref, "rejected")
    if prefix != other:
        return None
    index = row_index(ref)
    return Pair(
        id=f"hh-rlhf/{index}",
        source="hh-rlhf",
        source_row=f"{FILE} row {index}",
        domain="safety",
        prompt_messages=prompt_messages(dialogue_turns(prefix, ref, "chosen"), ref, "chosen"),
        chosen=chosen.strip(),
        rejected=rejected.strip(),
        exclusion_keys=frozenset({row_key(FILE, ref)}),
    )


def pairs(source_dir: Path, on_error: OnError, tally: Tally) -> Iterator[Pair]:
    return parsed_records(source_dir / FILE, _parse, on_error, tally, no_result="transcripts_diverge")


SOURCE = Source("hh-rlhf", "safety", (FILE,), pairs)

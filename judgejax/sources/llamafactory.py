"""LLaMA-Factory DPO demo conversations, English and Chinese (hiyouga/LLaMA-Factory, Apache-2.0).

ShareGPT rows {conversations: [{from, value}], chosen: {from: "gpt", value}, rejected: {from: "gpt", value}}.
The prompt is `conversations` as chat messages (system -> system, human -> user, gpt -> assistant; texts stripped,
an empty system turn dropped); chosen and rejected are the `value`s of `chosen` and `rejected`, stripped.
"""
from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

from judgejax.data.errors import DataError, RowRef
from judgejax.sources.pair import Pair, mapping, prompt_messages, row_index, row_key, string_field
from judgejax.sources.source import Source
from judgejax.sources.tally import OnError, Tally, parsed_records

ROLES = {"system": "system", "human": "user", "gpt": "assistant"}
FILES = {"llamafactory-en": "llamafactory/dpo_en_demo.json", "llamafactory-zh": "llamafactory/dpo_zh_demo.json"}


def _turns(record: dict, ref: RowRef) -> list[tuple[str, str]]:
    conversations = record.get("conversations")
    if conversations is None:
        raise DataError(ref, "conversations", "missing_field", "field is missing or null")
    if not isinstance(conversations, list):
        raise DataError(ref, "conversations", "wrong_type", f"expected a list of turns, got {type(conversations).__name__}")
    turns = []
    for i, turn in enumerate(conversations):
        where = f"conversations[{i}]"
        speaker = _turn(turn, ref, where).get("from")
        if speaker not in ROLES:
            raise DataError(ref, f"{where}.from", "unknown_role", f"unknown speaker {speaker!r}, expected one of {sorted(ROLES)}")
        turns.append((ROLES[speaker], string_field(turn, "value", ref, parent=where)))
    return turns


def _turn(turn: object, ref: RowRef, where: str) -> dict:
    if turn is None:
        raise DataError(ref, where, "missing_field", "field is missing or null")
    if not isinstance(turn, dict):
        raise DataError(ref, where, "wrong_type", f"expected a turn object, got {type(turn).__name__}")
    return turn


def _answer(record: dict, name: str, ref: RowRef) -> str:
    turn = _turn(record.get(name), ref, name)
    if turn.get("from") != "gpt":
        raise DataError(ref, f"{name}.from", "misplaced_role", f"expected an answer from 'gpt', got {turn.get('from')!r}")
    return string_field(turn, "value", ref, parent=name).strip()


def _parse(record: object, ref: RowRef, source: str, file: str) -> Pair:
    record = mapping(record, ref)
    index = row_index(ref)
    return Pair(
        id=f"{source}/{index}",
        source=source,
        source_row=f"{file} row {index}",
        domain="general",
        prompt_messages=prompt_messages(_turns(record, ref), ref, "conversations"),
        chosen=_answer(record, "chosen", ref),
        rejected=_answer(record, "rejected", ref),
        exclusion_keys=frozenset({row_key(file, ref)}),
    )


def _pairs(source_dir: Path, on_error: OnError, tally: Tally, source: str) -> Iterator[Pair]:
    file = FILES[source]
    yield from parsed_records(source_dir / file, partial(_parse, source=source, file=file), on_error, tally)


SOURCES = tuple(Source(name, "general", (file,), partial(_pairs, source=name)) for name, file in FILES.items())

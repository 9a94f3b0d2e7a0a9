"""The output folder of a general-ability evaluation, shared by several models and judges:

    OUT/answers/{model}.jsonl             answers of each model under test (written first)
    OUT/judgments/{judge}/{model}.jsonl   one judge's judgments of one model's answers
    OUT/report/{judge}/{bench}.md|json|png  every model that judge graded, side by side
    OUT/commands.jsonl                    the command lines that wrote this folder

Every file is appended batch by batch; a rerun skips the items already present."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Hashable

from judgejax.data.hashing import seeded_int
from judgejax.data.jsonl import append_jsonl
from judgejax.general.judges import safe_name
from judgejax.general.records import read_objects


@dataclasses.dataclass(frozen=True)
class Layout:
    root: Path

    def answers(self, model: str) -> Path:
        return self.root / "answers" / f"{model}.jsonl"

    def judgments(self, judge: str, model: str) -> Path:
        return self.root / "judgments" / judge / f"{model}.jsonl"

    def graded_models(self, judge: str) -> list[str]:
        folder = self.root / "judgments" / judge
        return sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []

    def report(self, judge: str) -> Path:
        return self.root / "report" / judge

    @property
    def commands(self) -> Path:
        return self.root / "commands.jsonl"

    def record_command(self, command: str) -> None:
        append_jsonl(self.commands, [{"time": time.strftime("%Y-%m-%d %H:%M:%S"), "command": command}])

    def recorded_commands(self) -> list[str]:
        return [record["command"] for _, record in read_objects(self.commands)] if self.commands.is_file() else []


def named_path(spec: str) -> tuple[str, str]:
    """'NAME=PATH' -> (NAME, PATH); a bare PATH is named after its last component (a file's stem)."""
    name, sep, path = spec.partition("=")
    if not sep:
        path = spec
        trimmed = Path(spec.rstrip("/"))
        name = trimmed.stem if trimmed.suffix == ".jsonl" else trimmed.name
    return safe_name(name), path


def done_keys(path: Path, key: Callable[[dict[str, Any]], Hashable]) -> set:
    return {key(record) for _, record in read_objects(path)} if path.is_file() else set()


def batch_seed(seed: int, ids: list[Any]) -> int:
    """A sampling seed fixed by the run seed and the batch's items, so reruns reproduce a batch."""
    return seeded_int(seed, ids, sep=":")

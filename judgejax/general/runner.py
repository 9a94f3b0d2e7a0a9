"""What the MT-Bench and AlignBench runners share: answering in batches of one temperature,
copying answer files in, judging in chunks saved as they are made, and the pass over the models
and answer files of a run."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from tqdm import tqdm

from judgejax.data.jsonl import append_jsonl
from judgejax.general.judges import Judge
from judgejax.general.layout import Layout
from judgejax.sample.chat import Generation, LocalChat, Message

Item = TypeVar("Item")


def temperature_batches(questions: Sequence[Item], temperature: Callable[[Item], float],
                        length: Callable[[Item], int], batch_size: int) -> list[list[Item]]:
    """The questions sorted by (temperature, length), in batches of one temperature and at most
    `batch_size` questions."""
    batches: list[list[Item]] = []
    for q in sorted(questions, key=lambda q: (temperature(q), length(q))):
        if batches and len(batches[-1]) < batch_size and temperature(batches[-1][0]) == temperature(q):
            batches[-1].append(q)
        else:
            batches.append([q])
    return batches


def copy_answers(source: str | Path, target: Path) -> None:
    """Copy a (checked) answer file to `target`; a file already there must be the same."""
    if target.is_file():
        if target.read_bytes() != Path(source).read_bytes():
            raise FileExistsError(f"{target} exists and differs from {source}; name the model differently "
                                  "(--answers NAME=FILE) or remove the old file")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def judge_in_chunks(judge: Judge, items: Sequence[Item], messages: Callable[[Item], list[Message]],
                    record: Callable[[Item, Generation], dict[str, Any]], path: Path, desc: str) -> int:
    """Judge `items` a chunk at a time, appending each chunk's records to `path`; returns how many
    were judged."""
    with tqdm(total=len(items), desc=desc, unit="judgment") as progress:
        for start in range(0, len(items), judge.chunk_size):
            chunk = items[start:start + judge.chunk_size]
            replies = judge.complete([messages(item) for item in chunk])
            append_jsonl(path, [record(item, reply) for item, reply in zip(chunk, replies)])
            progress.update(len(chunk))
    return len(items)


@dataclasses.dataclass(frozen=True)
class Run:
    """What a benchmark runner (`run_mtbench`, `run_alignbench`) is asked to do: answer with each
    (name, model), import each (name, answer file), grade them with `judge` (None: answer only),
    over the first `limit` questions (all when None), sampling with `seed`; `command` is recorded."""

    models: Sequence[tuple[str, LocalChat]] = ()
    answer_files: Sequence[tuple[str, str]] = ()
    judge: Judge | None = None
    limit: int | None = None
    seed: int = 0
    command: str = ""


def run_models(out: str | Path, run: Run, *,
               import_answers: Callable[[str, str, Layout], None], answer: Callable[[LocalChat, str, Path], Any],
               grade: Callable[[Judge, str, Layout], Any],
               report: Callable[[Layout, str], dict[str, Path]]) -> dict[str, Path] | None:
    """Import each (name, answer file), answer with each (name, model) (releasing it after),
    grade all of them with the run's judge and write its report (over every model it graded in
    `out`). Returns the report's files, or None without a judge. Everything already done in `out`
    is skipped."""
    layout = Layout(Path(out))
    if run.command:
        layout.record_command(run.command)
    names = [name for name, _ in run.models] + [name for name, _ in run.answer_files]
    if len(set(names)) != len(names):
        raise ValueError(f"model names {names} repeat; name them with NAME=PATH")
    for name, source in run.answer_files:
        import_answers(source, name, layout)
    for name, chat in run.models:
        answer(chat, name, layout.answers(name))
        chat.release()
    if run.judge is None:
        return None
    for name in names:
        grade(run.judge, name, layout)
    return report(layout, run.judge.name)

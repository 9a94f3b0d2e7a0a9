"""The data of tools/bench_train.py: real preference pairs that fill the benchmark's sequence length,
and SFT rows made of them."""

from __future__ import annotations

import json
import pathlib
from functools import partial

import numpy as np

import bench_common as bc
from judgejax.data.columns import Columns
from judgejax.data.config import DataConfig
from judgejax.data.errors import RowRef
from judgejax.data.load import load_preference_examples
from judgejax.data.readers import read_rows
from judgejax.data.rows import PreferenceRow, parse_preference_row
from judgejax.data.stats import DataStats
from judgejax.data.tokenize import PreferenceExample

DEFAULT_DATA = "/work/shared/data/preferences/llamafactory/dpo_en_demo.json"  # LLaMA-Factory dpo_en_demo.json
SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}


def _log(message: str) -> None:
    bc.log("bench_train", message)



def _judgejax_rows_file(path: pathlib.Path, scratch: pathlib.Path) -> pathlib.Path:
    """A file judgejax's readers take: LLaMA-Factory ShareGPT json is rewritten as jsonl rows of
    prompt messages, chosen and rejected; any other file is used as it is."""
    if path.suffix != ".json":
        return path
    records = json.loads(path.read_text())
    if not (isinstance(records, list) and records and isinstance(records[0], dict) and "conversations" in records[0]):
        return path
    out = scratch / (path.stem + ".jsonl")
    with out.open("w") as f:
        for i, record in enumerate(records):
            try:
                prompt = [{"role": SHAREGPT_ROLES[t["from"]], "content": t["value"]} for t in record["conversations"]]
                row = {"prompt": prompt, "chosen": record["chosen"]["value"], "rejected": record["rejected"]["value"]}
            except (KeyError, TypeError) as e:
                raise SystemExit(f"{path} row {i}: not a ShareGPT preference record (missing {e})") from e
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out


def load_full_pairs(path: pathlib.Path, tokenizer, seq: int, needed: int, scratch: pathlib.Path):
    """The first `needed` preference pairs (rows and judgejax examples) whose prompt + longer
    completion fills `seq` tokens after judgejax's truncation."""
    source = _judgejax_rows_file(path, scratch)
    data = DataConfig(path=str(source), max_length=seq, overlong="truncate", bucket_lengths=(seq,))
    examples, stats = load_preference_examples(data, tokenizer)
    parse = partial(parse_preference_row, columns=Columns())
    rows: dict[RowRef, PreferenceRow] = {row.ref: row for row in read_rows(source, parse, "raise", DataStats())}
    full = [e for e in examples if len(e.prompt_ids) + max(len(e.chosen_ids), len(e.rejected_ids)) == seq]
    _log(f"{path}: {stats.summary()}; {len(full)} pairs fill {seq} tokens, {needed} used")
    if len(full) < needed:
        raise SystemExit(f"{path}: only {len(full)} pairs fill {seq} tokens, the run needs {needed}; "
                         "lower --steps, --batch or --seq")
    full = full[:needed]
    return [rows[e.ref] for e in full], full


def sft_batch_of(examples: list[PreferenceExample], batch: int, seq: int) -> dict[str, np.ndarray]:
    """`batch` rows of `seq` consecutive real tokens (the prompt + chosen and prompt + rejected
    conversations end to end, repeated if they are too few), every position a token to learn."""
    stream = np.concatenate([np.concatenate([e.prompt_ids, c]) for e in examples for c in (e.chosen_ids, e.rejected_ids)])
    ids = np.resize(stream, batch * (seq + 1)).reshape(batch, seq + 1).astype(np.int32)
    return {
        "tokens": ids[:, :-1],
        "targets": ids[:, 1:],
        "loss_mask": np.ones((batch, seq), np.float32),
        "positions": np.broadcast_to(np.arange(seq, dtype=np.int32), (batch, seq)).copy(),
        "segment_ids": np.ones((batch, seq), np.int32),
    }

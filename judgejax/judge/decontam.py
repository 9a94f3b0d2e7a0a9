"""Decontamination of training rows against evaluation prompts by normalised n-gram overlap."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from typing import Iterable

N = 13  # word n-gram length (the convention of GPT-3 / RewardBench-style overlap checks)
THRESHOLD = 0.5  # share of a row's n-grams found in one evaluation prompt that counts as overlap


def normalise(text: str) -> list[str]:
    """Lower-cased NFKC words without punctuation; CJK characters count as one word each."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"([\u3400-\u9fff])", r" \1 ", text)
    return re.findall(r"\w+", text)


def ngrams(words: list[str], n: int = N) -> set[tuple[str, ...]]:
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


@dataclasses.dataclass(frozen=True)
class Hit:
    reference: str  # the evaluation set's row key (e.g. "rewardbench:xstest-should-refuse:123")
    share: float  # share of the row's n-grams present in that reference


class Decontaminator:
    """Index evaluation prompts once; `check(text)` returns the best hit at or above the threshold."""

    def __init__(self, references: Iterable[tuple[str, str]], n: int = N, threshold: float = THRESHOLD):
        self.n, self.threshold = n, threshold
        self.index: dict[tuple[str, ...], list[str]] = {}
        for key, text in references:
            for gram in ngrams(normalise(text), n):
                self.index.setdefault(gram, []).append(key)

    def check(self, text: str) -> Hit | None:
        grams = ngrams(normalise(text), self.n)
        if not grams:
            return None
        counts: dict[str, int] = {}
        for gram in grams:
            for key in set(self.index.get(gram, ())):
                counts[key] = counts.get(key, 0) + 1
        if not counts:
            return None
        key, count = max(counts.items(), key=lambda kv: kv[1])
        share = count / len(grams)
        return Hit(key, share) if share >= self.threshold else None


def rewardbench_references(parquet_path: str) -> list[tuple[str, str]]:
    """(key, prompt) for every RewardBench row."""
    import pyarrow.parquet as pq

    table = pq.read_table(parquet_path, columns=["subset", "id", "question"]).to_pylist()
    return [(f"rewardbench:{r['subset']}:{r['id']}", r["question"]) for r in table]

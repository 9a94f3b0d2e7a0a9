"""Repeated-text loops in a judge's output: a small judge that has not learned to end its
judgement repeats a sentence ("Assistant A's answer is more accurate and detailed, while ...")
until `max_new_tokens` cuts it off. An output loops when one run of LOOP_WORDS words occurs at
least LOOP_REPEATS times in it (overlapping runs count: a word repeated over and over loops)."""

from __future__ import annotations

from collections import Counter

LOOP_WORDS = 8
LOOP_REPEATS = 3


def loops(text: str) -> bool:
    """Whether `text` repeats one run of LOOP_WORDS words at least LOOP_REPEATS times."""
    words = text.split()
    runs = Counter(tuple(words[i:i + LOOP_WORDS]) for i in range(len(words) - LOOP_WORDS + 1))
    return bool(runs) and max(runs.values()) >= LOOP_REPEATS

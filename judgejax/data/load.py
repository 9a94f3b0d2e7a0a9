"""Read, validate, tokenize and length-fit a data file, counting what happens to each row."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from judgejax.data.config import DataConfig
from judgejax.data.errors import DataError
from judgejax.data.readers import read_rows
from judgejax.data.rows import parse_preference_row, parse_sft_row
from judgejax.data.stats import DataStats
from judgejax.data.tokenize import (
    PreferenceExample,
    SFTExample,
    fit_preference,
    fit_sft,
    tokenize_preference_row,
    tokenize_sft_row,
)

Row = TypeVar("Row")
Example = TypeVar("Example")


def _examples(
    rows: list[Row],
    tokenize: Callable[[Row], Example],
    fit: Callable[[Example], tuple[Example | None, str]],
    config: DataConfig,
    stats: DataStats,
) -> list[Example]:
    examples = []
    for row in rows:
        try:
            example = tokenize(row)
        except DataError as e:
            if config.on_error == "raise":
                raise
            stats.skipped[e.reason] += 1
            continue
        fitted, event = fit(example)
        if fitted is None:
            stats.dropped[event] += 1
            continue
        stats.truncated += event == "truncated"
        examples.append(fitted)
    stats.kept = len(examples)
    return examples


def load_sft_examples(config: DataConfig, tokenizer: Any) -> tuple[list[SFTExample], DataStats]:
    """The SFT examples of `config.path`, and the counts of skipped, truncated and dropped rows."""
    stats = DataStats()
    columns = config.columns
    rows = read_rows(config.path, partial(parse_sft_row, columns=columns), config.on_error, stats)
    examples = _examples(
        rows,
        lambda row: tokenize_sft_row(row, tokenizer, columns),
        lambda example: fit_sft(example, config.max_length, config.overlong),
        config,
        stats,
    )
    return examples, stats


def load_preference_examples(config: DataConfig, tokenizer: Any) -> tuple[list[PreferenceExample], DataStats]:
    """The preference examples of `config.path`, and the counts of skipped, truncated and dropped rows."""
    stats = DataStats()
    columns = config.columns
    rows = read_rows(config.path, partial(parse_preference_row, columns=columns), config.on_error, stats)
    examples = _examples(
        rows,
        lambda row: tokenize_preference_row(row, tokenizer, columns),
        lambda example: fit_preference(example, config.max_length, config.overlong),
        config,
        stats,
    )
    return examples, stats

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


def _load(
    config: DataConfig,
    tokenizer: Any,
    parse: Callable[..., Row],
    tokenize: Callable[[Row, Any, Any], Example],
    fit: Callable[[Example, int, str], tuple[Example | None, str]],
) -> tuple[list[Example], DataStats]:
    """Rows of `config.path` read by `parse`, tokenized and fitted to `config.max_length`, with the
    counts of skipped, truncated and dropped rows."""
    stats = DataStats()
    rows = read_rows(config.path, partial(parse, columns=config.columns), config.on_error, stats)
    examples = []
    for row in rows:
        try:
            example = tokenize(row, tokenizer, config.columns)
        except DataError as e:
            if config.on_error == "raise":
                raise
            stats.skipped[e.reason] += 1
            continue
        fitted, event = fit(example, config.max_length, config.overlong)
        if fitted is None:
            stats.dropped[event] += 1
            continue
        stats.truncated += event == "truncated"
        examples.append(fitted)
    stats.kept = len(examples)
    return examples, stats


def load_sft_examples(config: DataConfig, tokenizer: Any) -> tuple[list[SFTExample], DataStats]:
    """The SFT examples of `config.path`, and the counts of skipped, truncated and dropped rows."""
    return _load(config, tokenizer, parse_sft_row, tokenize_sft_row, fit_sft)


def load_preference_examples(config: DataConfig, tokenizer: Any) -> tuple[list[PreferenceExample], DataStats]:
    """The preference examples of `config.path`, and the counts of skipped, truncated and dropped rows."""
    return _load(config, tokenizer, parse_preference_row, tokenize_preference_row, fit_preference)

"""Verdict formats of pairwise judges: how a judgement states its verdict and how it is parsed.

Every parser returns "A", "B" or "error". When a judgement states a verdict more than once (an
analysis that quotes the format, or changes its mind), the LAST verdict counts; text with no
verdict, or with a malformed one, is "error".
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal, Protocol

Verdict = Literal["A", "B", "error"]
LETTERS: tuple[str, str] = ("A", "B")


def check_letter(letter: str) -> None:
    """Raise ValueError unless `letter` is "A" or "B"."""
    if letter not in LETTERS:
        raise ValueError(f"verdict letter must be 'A' or 'B', got {letter!r}")


class VerdictFormat(Protocol):
    """How a judgement in one output format ends and how its verdict is read back."""

    def verdict_text(self, letter: str) -> str:
        """The canonical verdict string for `letter` ("A" or "B")."""
        ...

    def judgement(self, analysis: str, letter: str) -> str:
        """A complete judgement: `analysis` followed by the verdict for `letter`."""
        ...

    def parse(self, output: str) -> Verdict:
        """The verdict stated last in `output`, or "error"."""
        ...


def _marker_pattern(marker: str) -> str:
    """Regex for a literal marker that tolerates any whitespace between its words and either an
    ASCII or a full-width colon wherever the marker has a colon."""
    pieces = []
    for word in marker.split():
        escaped = [r"[:：]" if ch in ":：" else re.escape(ch) for ch in word]
        pieces.append("".join(escaped))
    return r"\s*".join(pieces)


@dataclass(frozen=True)
class MarkerVerdict:
    """A verdict stated as a fixed marker string per answer, e.g. "[[A]]" / "[[B]]" or
    "Verdict: Output (a)" / "Verdict: Output (b)". The last marker in the output wins."""

    marker_a: str
    marker_b: str
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.marker_a.strip() or not self.marker_b.strip() or self.marker_a == self.marker_b:
            raise ValueError(f"markers must be two different non-empty strings, got "
                             f"{self.marker_a!r} and {self.marker_b!r}")
        pattern = f"(?P<A>{_marker_pattern(self.marker_a)})|(?P<B>{_marker_pattern(self.marker_b)})"
        object.__setattr__(self, "_regex", re.compile(pattern))

    def verdict_text(self, letter: str) -> str:
        check_letter(letter)
        return self.marker_a if letter == "A" else self.marker_b

    def judgement(self, analysis: str, letter: str) -> str:
        verdict = self.verdict_text(letter)
        return f"{analysis.rstrip()}\n\n{verdict}" if analysis.strip() else verdict

    def parse(self, output: str) -> Verdict:
        last: Verdict = "error"
        for match in self._regex.finditer(output):
            last = "A" if match.group("A") is not None else "B"
        return last


@dataclass(frozen=True)
class JsonVerdict:
    """A verdict stated as a JSON object {"analysis": "...", "winner": "A"}. The last JSON object
    in the output that has the winner key decides; a winner other than "A"/"B" is an error."""

    key: str = "winner"

    def verdict_text(self, letter: str) -> str:
        check_letter(letter)
        return json.dumps({self.key: letter})

    def judgement(self, analysis: str, letter: str) -> str:
        check_letter(letter)
        return json.dumps({"analysis": analysis, self.key: letter}, ensure_ascii=False)

    def parse(self, output: str) -> Verdict:
        decoder = json.JSONDecoder()
        last: object = None
        found = False
        start = output.find("{")
        while start != -1:
            try:
                value, end = decoder.raw_decode(output, start)
            except json.JSONDecodeError:
                start = output.find("{", start + 1)
                continue
            if isinstance(value, dict) and self.key in value:
                last, found = value[self.key], True
            start = output.find("{", end)
        if not found or not isinstance(last, str) or last.strip() not in LETTERS:
            return "error"
        return last.strip()  # type: ignore[return-value]


TAG = MarkerVerdict("[[A]]", "[[B]]")


def official_tag_verdict(output: str) -> Verdict:
    """RewardBench's official rule for the pair-v2 prompt: "A" if the output contains "[[A]]"
    anywhere, else "B" if it contains "[[B]]", else "error" (it ignores which comes last)."""
    if "[[A]]" in output:
        return "A"
    if "[[B]]" in output:
        return "B"
    return "error"

"""tools/compare_evals.py: two evaluation folders' scores and the paired differences, by hand."""

from __future__ import annotations

import json
import pathlib
import sys

import pytest

from test_bootstrap import records

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
import compare_evals  # noqa: E402


def folder(path: pathlib.Path, rows: list[dict]) -> pathlib.Path:
    path.mkdir()
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_scores_and_paired_differences_by_hand(tmp_path, capsys):
    # first: right in both orders on all four; second: always "A" (right, then wrong) on two of them.
    first = folder(tmp_path / "first", records([("A", "B")] * 4))
    second = folder(tmp_path / "second", records([("A", "B"), ("A", "B"), ("A", "A"), ("A", "A")]))
    compare_evals.main([str(first), str(second)])
    out = capsys.readouterr().out
    assert "4 examples judged by both (4 resampled units)" in out
    assert "| both-order accuracy | 100.0 [100.0, 100.0] | 75.0 [" in out and "| -25.0 [" in out
    assert "| consistency | 100.0 [100.0, 100.0] | 50.0 [" in out
    assert "| P(verdict=A) | 0.50 [0.50, 0.50] | 0.75 [" in out


def test_judges_of_different_examples_or_an_unfinished_run_are_errors(tmp_path):
    first = folder(tmp_path / "first", records([("A", "B")], subset="x"))
    second = folder(tmp_path / "second", records([("A", "B")], subset="y"))
    with pytest.raises(SystemExit, match="share no example"):
        compare_evals.main([str(first), str(second)])
    with pytest.raises(SystemExit, match="no results.jsonl"):
        compare_evals.main([str(first), str(tmp_path)])

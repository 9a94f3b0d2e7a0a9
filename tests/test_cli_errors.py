"""Expected failures through the CLI: one line `judgejax: error: ...` on stderr, exit 1, no
traceback; --debug and JUDGEJAX_DEBUG=1 show the traceback."""
from __future__ import annotations

import json
import pathlib

import pytest

from judgejax.cli import main


def failure(capsys, argv: list[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("judgejax: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def rows_file(path: pathlib.Path, broken: bool) -> pathlib.Path:
    row = {"id": "r1", "source": "s", "source_row": "x row 0", "domain": "general", "question": "Q?",
           "chosen": "yes", "rejected": "no"}
    rows = [row, {**row, "id": "r2", "question": ""} if broken else {**row, "id": "r2"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_unknown_config_key(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("model: {path: m}\ndata: {path: d}\ntrain: {output_dir: o}\nbogus: 1\n")
    line = failure(capsys, ["sft", "--config", str(config)])
    assert "unknown key bogus" in line and str(config) in line


def test_missing_file(tmp_path, capsys):
    line = failure(capsys, ["synth", "--input", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o"),
                            "--model", "labels"])
    assert "nope.jsonl" in line


def test_bad_data_row_names_file_line_and_field(tmp_path, capsys):
    rows = rows_file(tmp_path / "rows.jsonl", broken=True)
    line = failure(capsys, ["synth", "--input", str(rows), "--out", str(tmp_path / "o"), "--model", "labels"])
    assert "rows.jsonl line 2, field 'question'" in line


def test_bad_label(tmp_path, capsys):
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"q": "Q?", "a": "x", "b": "y", "win": "first"}) + "\n")
    line = failure(capsys, ["eval", "pairwise", "--data", str(data), "--columns", "prompt=q,a=a,b=b,label=win",
                            "--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "o")])
    assert "pairs.jsonl line 1, field 'win'" in line and "'first'" in line


def test_unsupported_architecture(tmp_path, capsys):
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    line = failure(capsys, ["import", str(folder), str(tmp_path / "ckpt")])
    assert "bert" in line.lower()


def test_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    argv = ["synth", "--input", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o"), "--model", "labels"]
    with pytest.raises(FileNotFoundError):
        main(["--debug", *argv])
    monkeypatch.setenv("JUDGEJAX_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        main(argv)


def test_a_good_run_still_exits_0(tmp_path, capsys):
    rows = rows_file(tmp_path / "rows.jsonl", broken=False)
    assert main(["synth", "--input", str(rows), "--out", str(tmp_path / "o"), "--model", "labels"]) == 0
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["rows"] == 2

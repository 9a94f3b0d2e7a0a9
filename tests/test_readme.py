"""The README's command table lists exactly the CLI's subcommands, and each one's --help runs."""

from __future__ import annotations

import pathlib
import re

import pytest

from judgejax.cli import build_parser

README = (pathlib.Path(__file__).parent.parent / "README.md").read_text()


def subcommands() -> set[str]:
    parser = build_parser()
    return set(parser._subparsers._group_actions[0].choices)  # argparse keeps them nowhere public


def test_command_table_lists_every_subcommand():
    table = README[README.index("## Commands"):README.index("## Training configs")]
    rows = [line for line in table.splitlines() if line.startswith("| `judgejax ")]
    listed = {name for row in rows for name in re.findall(r"`judgejax (\w+)", row.split(" | ")[0])}
    assert listed == subcommands()


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_help_explains_each_subcommand(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: judgejax {name}") and len(out) > 200

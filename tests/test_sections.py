"""Options made from a config section: one flag per field with the field's default and help, values
parsed and checked by the section, bad values named."""

from __future__ import annotations

import argparse

import pytest
from pydantic import Field

from judgejax.commands.sections import add_section_options, section_from_args
from judgejax.config import ConfigFileError, section
from judgejax.judge.label import LabelConfig
from judgejax.judge.synth import SynthConfig


@section
class Example:
    names: tuple[str, ...] = Field(("a", "b"), description="names to use")
    rate: float = Field(0.5, description="a rate")
    count: int = Field(3, description="how many")

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"count={self.count} must be >= 0")


def parse(cls, argv, skip=()):
    p = argparse.ArgumentParser()
    add_section_options(p, cls, skip)
    return section_from_args(cls, p.parse_args(argv)), p.format_help()


def test_defaults_values_and_help():
    config, text = parse(Example, [])
    assert config == Example()
    assert "names to use (default a,b)" in text and "a rate (default 0.5)" in text and "how many (default 3)" in text
    assert parse(Example, ["--names", "x, y", "--count", "7"])[0] == Example(names=("x", "y"), rate=0.5, count=7)


def test_bad_values_are_named():
    with pytest.raises(ConfigFileError, match=r"command line: count='many': Input should be a valid integer"):
        parse(Example, ["--count", "many"])
    with pytest.raises(ConfigFileError, match=r"command line: count=-1 must be >= 0"):
        parse(Example, ["--count", "-1"])


@pytest.mark.parametrize("cls", [SynthConfig, LabelConfig])
def test_every_field_of_the_commands_sections_has_help(cls):
    _, text = parse(cls, [])
    for name, info in cls.__pydantic_fields__.items():
        assert info.description and f"--{name.replace('_', '-')}" in text, name

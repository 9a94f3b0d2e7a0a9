"""Command-line options made from a config section: one `--name` for each field, with the field's
default and help (pydantic `Field(default, description=...)`), so a command never restates them."""

from __future__ import annotations

import argparse
import typing
from typing import Any, Collection

from judgejax.config import build


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is tuple


def add_section_options(p: argparse.ArgumentParser, cls: type, skip: Collection[str] = ()) -> None:
    """`--field-name` for every field of config class `cls` but `skip`; a tuple field takes
    comma-separated values."""
    for name, info in cls.__pydantic_fields__.items():
        if name in skip:
            continue
        default = info.get_default(call_default_factory=True)
        shown = ",".join(map(str, default)) if _is_list(info.annotation) else default
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="A,B,..." if _is_list(info.annotation) else None,
                       help=f"{info.description} (default {shown})")


def section_from_args(cls: type, args: argparse.Namespace) -> Any:
    """The config of `cls` from the options `add_section_options` made (defaults where not given);
    a bad value is an error naming its option."""
    raw = {}
    for name, info in cls.__pydantic_fields__.items():
        value = getattr(args, name, None)
        if value is not None:
            raw[name] = [v.strip() for v in value.split(",")] if _is_list(info.annotation) else value
    return build(cls, raw, "", "command line")

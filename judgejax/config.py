"""Configs: frozen pydantic dataclasses (`section`) read from YAML, with dotted `key=value`
overrides. Pydantic checks every value against its field's type (lax mode: YAML's `2e-5`, read as
a string, is a float); unknown keys and bad values are errors that name the key and the file."""

from __future__ import annotations

import dataclasses
import pathlib
import typing
from typing import Any

import pydantic
import pydantic.dataclasses
import yaml


class ConfigFileError(ValueError):
    pass


def section(cls):
    """A config class: a frozen dataclass whose values pydantic checks and whose unknown keys are
    errors (also when built in code)."""
    return pydantic.dataclasses.dataclass(frozen=True, config=pydantic.ConfigDict(extra="forbid"))(cls)


def build(cls, raw: Any, where: str, source: str):
    """Instantiate config class `cls` from `raw` (a YAML mapping found at key `where` of `source`)."""
    if not isinstance(raw, dict):
        raise ConfigFileError(f"{source}: {where or 'top level'} must be a mapping, got {raw!r}")
    try:
        return pydantic.TypeAdapter(cls).validate_python(raw)
    except pydantic.ValidationError as e:
        raise ConfigFileError(f"{source}: {_message(e.errors()[0], cls, where)}") from e


def _message(error: dict, cls, where: str) -> str:
    loc = [str(part) for part in error["loc"]]
    key = ".".join([where] * bool(where) + loc)
    kind = error["type"]
    if kind == "value_error":  # raised by a section's own check, which names its key
        return str(error["ctx"]["error"])
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        return f"unknown key {key} (known: {', '.join(_fields_at(cls, loc[:-1]))})"
    if kind == "missing" or kind == "missing_argument":
        return f"missing key {key}"
    return f"{key}={error['input']!r}: {error['msg']}"


def _fields_at(cls, path: list[str]) -> list[str]:
    """The field names of the config class found by following `path` from `cls`."""
    for name in path:
        hint = typing.get_type_hints(cls).get(name)
        hint = next((h for h in typing.get_args(hint) if dataclasses.is_dataclass(h)), hint)  # X | None
        if not dataclasses.is_dataclass(hint):
            return []
        cls = hint
    return [f.name for f in dataclasses.fields(cls)]


def apply_override(raw: dict, override: str) -> None:
    """`a.b.c=value` (value parsed as YAML) into the nested dict."""
    if "=" not in override:
        raise ConfigFileError(f"override {override!r}: expected key=value, e.g. optim.learning_rate=1e-5")
    key, text = override.split("=", 1)
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigFileError(f"override {override!r}: {part} is not a section")
    node[parts[-1]] = yaml.safe_load(text)


def read_yaml(path: str | pathlib.Path | None, overrides: typing.Sequence[str] = (),
              name: str = "config") -> tuple[dict, str]:
    """The YAML mapping with overrides applied (path None: only the overrides), and a description
    of where it came from (`name` where there is no file)."""
    raw: dict = {}
    if path is not None:
        try:
            raw = yaml.safe_load(pathlib.Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigFileError(f"{path}: cannot read config ({e})") from e
    for override in overrides:
        apply_override(raw, override)
    return raw, f"{path or name}" + (f" (with overrides {' '.join(overrides)})" if overrides else "")

"""Configs as nested frozen dataclasses read from YAML, with dotted `key=value` overrides.
Unknown keys and wrong types are errors that name the key and the file."""

from __future__ import annotations

import dataclasses
import pathlib
import types
import typing
from typing import Any, Literal

import yaml



class ConfigFileError(ValueError):
    pass


def build(cls, raw: Any, where: str, source: str):
    """Instantiate dataclass `cls` from `raw`, checking keys and value types."""
    if not isinstance(raw, dict):
        raise ConfigFileError(f"{source}: {where or 'top level'} must be a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigFileError(f"{source}: unknown key {where + '.' if where else ''}{unknown[0]} (known: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in raw.items():
        key = f"{where}.{name}" if where else name
        kwargs[name] = _coerce(hints[name], value, key, source)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigFileError(f"{source}: {where or 'config'}: {e}") from e
    except ValueError as e:
        raise ConfigFileError(f"{source}: {e}") from e


def _coerce(hint, value, key: str, source: str):
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key, source)
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ConfigFileError(f"{source}: {key}={value!r}; choose one of {list(typing.get_args(hint))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigFileError(f"{source}: {key} must be a list, got {value!r}")
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is float and not isinstance(value, bool):
        if isinstance(value, int):
            return float(value)
        if isinstance(value, str):  # YAML reads 2e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ConfigFileError(f"{source}: {key} must be {hint.__name__}, got {value!r}")
    return value


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


def read_yaml(path: str | pathlib.Path, overrides: typing.Sequence[str] = ()) -> tuple[dict, str]:
    """The YAML mapping with overrides applied, and a description of where it came from."""
    path = pathlib.Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigFileError(f"{path}: cannot read config ({e})") from e
    for override in overrides:
        apply_override(raw, override)
    return raw, f"{path}" + (f" (with overrides {' '.join(overrides)})" if overrides else "")

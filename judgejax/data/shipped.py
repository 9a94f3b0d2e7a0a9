"""Data shipped inside the judgejax package (its package data in pyproject.toml), found through
importlib.resources: an installed judgejax reads its own copy wherever it is installed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped(*parts: str) -> Path:
    """The file or folder `parts` inside the judgejax package (installed as files, never zipped)."""
    return Path(str(resources.files("judgejax").joinpath(*parts)))

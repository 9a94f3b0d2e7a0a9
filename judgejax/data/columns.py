"""Which source columns hold our fields."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Columns:
    """Source column names for our fields.

    SFT rows use `messages`; preference rows use `prompt`, `chosen` and `rejected`.
    """

    messages: str = "messages"
    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"

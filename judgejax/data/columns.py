"""Which source columns hold our fields."""
from __future__ import annotations


from judgejax.config import section


@section
class Columns:
    """Source column names for our fields.

    SFT rows use `messages`; preference rows use `prompt`, `chosen` and `rejected`.
    """

    messages: str = "messages"
    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"

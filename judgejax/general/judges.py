"""A judge: any chat backend (a local model, or an OpenAI-compatible endpoint) answering judge
prompts greedily, one reply each, under a name that labels its folders."""

from __future__ import annotations

from typing import Sequence

from judgejax.sample.chat import ChatBackend, Generation, Message


def safe_name(name: str) -> str:
    """A model or judge name usable as one path component."""
    cleaned = name.strip().replace("/", "_").replace("\\", "_")
    if not cleaned or cleaned in (".", ".."):
        raise ValueError(f"name {name!r} cannot name a file")
    return cleaned


class Judge:
    """`chunk_size` is how many conversations the caller hands over between saves: what the
    backend works on at once."""

    def __init__(self, chat: ChatBackend, name: str) -> None:
        self.chat = chat
        self.name = safe_name(name)
        self.chunk_size = chat.batch_size

    def complete(self, conversations: Sequence[list[Message]]) -> list[Generation]:
        return [reply for [reply] in self.chat.complete(conversations, temperature=0.0)]

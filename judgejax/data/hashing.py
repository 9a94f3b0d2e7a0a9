"""SHA-256 where judgejax needs it: seeded draws (the same in every process and on every machine,
with no random state) and file digests."""

from __future__ import annotations

import hashlib
from pathlib import Path


def seeded_digest(seed: int, *keys: object, sep: str = "\x1f") -> bytes:
    """SHA-256 of the seed and the keys, written as text joined by `sep`."""
    return hashlib.sha256(sep.join(str(part) for part in (seed, *keys)).encode()).digest()


def seeded_int(seed: int, *keys: object, sep: str = "\x1f") -> int:
    """A 32-bit integer drawn by the seed and the keys (the digest's first four bytes)."""
    return int.from_bytes(seeded_digest(seed, *keys, sep=sep)[:4], "big")


def seeded_share(seed: int, *keys: object) -> float:
    """A number in [0, 1) drawn by the seed and the keys: below p with probability p."""
    return seeded_int(seed, *keys) / 2**32


def file_sha256(path: str | Path) -> str:
    """The hex SHA-256 of a file's bytes, read in blocks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()

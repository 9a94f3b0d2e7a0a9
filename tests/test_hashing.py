"""The SHA-256 helpers against hashlib written out: the seeded draws every caller used to spell
out for itself, and file digests."""

from __future__ import annotations

import hashlib

from judgejax.data.hashing import file_sha256, seeded_digest, seeded_int, seeded_share


def test_seeded_draws_are_sha256_of_the_joined_keys():
    digest = hashlib.sha256("7\x1fdpo\x1frow-1".encode()).digest()
    assert seeded_digest(7, "dpo", "row-1") == digest
    assert seeded_int(7, "dpo", "row-1") == int.from_bytes(digest[:4], "big")
    assert seeded_share(7, "dpo", "row-1") == int.from_bytes(digest[:4], "big") / 2**32
    assert seeded_int(3, [1, 2], sep=":") == int(hashlib.sha256(b"3:[1, 2]").hexdigest()[:8], 16)
    assert seeded_digest(0, "p", sep="\0").hex() == hashlib.sha256(b"0\0p").hexdigest()


def test_draws_spread_over_zero_to_one():
    shares = [seeded_share(0, "k", i) for i in range(2000)]
    assert 0 <= min(shares) and max(shares) < 1 and abs(sum(s < 0.3 for s in shares) / 2000 - 0.3) < 0.04


def test_file_sha256_is_the_digest_of_the_bytes(tmp_path):
    data = bytes(range(256)) * 5000
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()

"""tools/sft_data_ablation.py's shares of the SFT pairs: nested (each share inside the larger ones),
both orders of a pair together, the share's size in pairs, seeded; fraction 0 is no data."""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))

from sft_data_ablation import nested_shares  # noqa: E402


def sft_rows(pairs: int) -> list[dict]:
    """Both orders of each pair, as synth writes them (one row per order, sharing the pair's id)."""
    return [{"id": f"pair-{i}", "order": order} for i in range(pairs) for order in ("drawn", "flipped")]


def test_shares_are_nested_whole_pairs_of_the_asked_size():
    rows = sft_rows(40)
    shares = nested_shares(rows, [0, 0.125, 0.25, 0.5, 1], seed=0)
    assert shares[0] == []
    sizes = {f: len({r["id"] for r in share}) for f, share in shares.items()}
    assert sizes == {0: 0, 0.125: 5, 0.25: 10, 0.5: 20, 1: 40}
    for share in shares.values():
        orders = {}
        for r in share:
            orders.setdefault(r["id"], []).append(r["order"])
        assert all(o == ["drawn", "flipped"] for o in orders.values())  # both orders, in file order
    ids = [{r["id"] for r in shares[f]} for f in (0.125, 0.25, 0.5, 1)]
    assert all(small < large for small, large in zip(ids, ids[1:]))
    assert shares[1] == rows


def test_shares_are_seeded_and_not_the_file_order():
    rows = sft_rows(40)
    first = nested_shares(rows, [0.25], seed=0)[0.25]
    assert first == nested_shares(rows, [0.25], seed=0)[0.25]
    assert first != nested_shares(rows, [0.25], seed=1)[0.25]
    assert first != rows[:20]  # a random draw of pairs, not the first prompts of the file


def test_a_small_share_keeps_one_pair():
    shares = nested_shares(sft_rows(3), [0.01], seed=0)
    assert len({r["id"] for r in shares[0.01]}) == 1

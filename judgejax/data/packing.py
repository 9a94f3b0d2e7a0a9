"""Greedy first-fit packing of sequences into rows of a fixed length."""
from __future__ import annotations

from collections.abc import Sequence


def first_fit(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Puts each item, in order, into the first row (in order of opening) that still has room for it.

    Returns the rows as lists of item indices. A max-tree over the rows' free room finds that row in
    O(log n), so packing n items costs O(n log n).
    """
    n = len(lengths)
    size = 1
    while size < max(n, 1):
        size *= 2
    room = [capacity] * (2 * size)  # leaves size.. hold each row's free room (unopened rows: all of it)
    rows: list[list[int]] = []
    for item, length in enumerate(lengths):
        if not 0 < length <= capacity:
            raise ValueError(f"item {item} has length {length}, outside 1..{capacity}")
        node = 1
        while node < size:
            node = 2 * node if room[2 * node] >= length else 2 * node + 1
        row = node - size
        if row == len(rows):
            rows.append([])
        rows[row].append(item)
        room[node] -= length
        node //= 2
        while node:
            room[node] = max(room[2 * node], room[2 * node + 1])
            node //= 2
    return rows

"""A sorted collection of unique keys, kept sorted as keys come and go (`SortedKeys`).

A list of sorted blocks of at most ``2 × LOAD`` keys and the first key of each block: adding or
removing a key is a bisection over the blocks and an insertion into (or deletion from) one
block, so it costs O(log n + LOAD) however many keys there are, and walking the keys in order
costs O(1) per key. Deterministic: the order is the keys' own.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from typing import Any

LOAD = 512  # keys per block after a split (a block splits when it reaches twice as many)


class SortedKeys:
    """Unique, mutually comparable keys in ascending order."""

    def __init__(self) -> None:
        self._blocks: list[list[Any]] = []
        self._firsts: list[Any] = []
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[Any]:
        for block in self._blocks:
            yield from block

    def add(self, key: Any) -> None:
        """Add ``key`` (not already present)."""
        blocks, firsts = self._blocks, self._firsts
        self._n += 1
        if not blocks:
            blocks.append([key])
            firsts.append(key)
            return
        i = max(bisect_right(firsts, key) - 1, 0)
        block = blocks[i]
        insort(block, key)
        firsts[i] = block[0]
        if len(block) >= 2 * LOAD:
            blocks[i : i + 1] = [block[:LOAD], block[LOAD:]]
            firsts[i : i + 1] = [block[0], block[LOAD]]

    def remove(self, key: Any) -> None:
        """Remove ``key``; a key not present is a programming error (KeyError)."""
        blocks, firsts = self._blocks, self._firsts
        i = bisect_right(firsts, key) - 1
        block = blocks[i] if i >= 0 else []
        j = bisect_left(block, key)
        if j == len(block) or block[j] != key:
            raise KeyError(key)
        del block[j]
        self._n -= 1
        if not block:
            del blocks[i]
            del firsts[i]
        else:
            firsts[i] = block[0]

"""What a search has queried, by canonical hash: the state the de-duplicating algorithms share.

Everything here is built by ``tell`` (O(1) per record) except ``pending``: the candidates proposed
and not told yet, so that a driver asking for several candidates at once gets different ones (and a
cache of neighbourhoods, which changes nothing but speed).

Cells are told apart by canonical hash, or by ``key(g)`` when given: with several objectives two cells
of one computed function can differ in a cheap objective (NAS-Bench-201 builds an edge that never
reaches the output, so its op still adds parameters), and then they are different candidates.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from nasengine.algorithms.base import Record
from nasengine.core.genotype import Genotype
from nasengine.spaces.cell import CellSpace


class Memory:
    def __init__(self, space: CellSpace, key: Callable[[Genotype], str] | None = None) -> None:
        self.space = space
        self.key = key or space.hash
        self._by_hash = key is None  # a told record's hash is then its key
        self.values: dict[str, float | None] = {}  # hash -> the first value told (None: failed)
        self.records: list[Record] = []  # the distinct successful records, in the order told
        self.hashes: list[str] = []  # their hashes
        self.pending: set[str] = set()
        self._neighbours: dict[str, list[tuple[str, Genotype]]] = {}  # hash -> its distinct 1-edits

    def add(self, record: Record, h: str | None = None) -> int | None:
        """Remember a told record; its position in ``records`` if it is a new successful cell."""
        h = h or (record.hash if self._by_hash else None) or self.key(record.genotype)
        self.pending.discard(h)
        if h in self.values and (self.values[h] is not None or record.value is None):
            return None  # a repeat (the driver answers a duplicate with the stored value)
        self.values[h] = record.value
        if record.value is None:
            return None
        self.records.append(record)
        self.hashes.append(h)
        return len(self.records) - 1

    def known(self, h: str) -> bool:
        return h in self.values or h in self.pending

    def propose(self, g: Genotype, h: str | None = None) -> Genotype:
        self.pending.add(h or self.key(g))
        return g

    def random_unseen(self, rng: random.Random, tries: int = 1000) -> Genotype:
        """A random cell not queried yet (a known one after ``tries`` draws: the space is used up)."""
        for _ in range(tries):
            g = self.space.sample(rng)
            h = self.key(g)
            if not self.known(h):
                return self.propose(g, h)
        return g

    def neighbours(self, g: Genotype, h: str | None = None) -> list[tuple[str, Genotype]]:
        """The 1-edit neighbours of ``g`` that compute another function, one per canonical form, in the
        space's order (cached: a parent's neighbourhood is hashed once)."""
        h = h or self.key(g)
        out = self._neighbours.get(h)
        if out is None:
            out, seen = [], {h}
            for n in self.space.neighbours(g):
                hn = self.key(n)
                if hn not in seen:
                    seen.add(hn)
                    out.append((hn, n))
            self._neighbours[h] = out
        return out

    def unseen_neighbours(self, g: Genotype, h: str | None = None, edits: int = 1) -> list[tuple[str, Genotype]]:
        """The cells 1 (or up to ``edits`` = 2) edits from ``g`` not queried (nor proposed) yet, one per
        canonical form, the 1-edits first."""
        near = self.neighbours(g, h)
        out = {hn: n for hn, n in near if not self.known(hn)}
        if edits > 1:
            for hn, n in near:
                out.update((h2, n2) for h2, n2 in self.neighbours(n, hn) if h2 not in out and not self.known(h2))
        return list(out.items())

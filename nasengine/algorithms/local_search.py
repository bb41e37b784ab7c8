"""Local search, first improvement (White et al. 2021, "Local search is state of the art for NAS").

From a random cell, query its 1-edit neighbours in random order and move to the first that improves
on it; when every neighbour is known and none is better, the cell is a local optimum: restart from a
new random cell. Neighbours are told apart by canonical form, so a cell already queried (here or
anywhere in the search) is never asked again.

The state is rebuilt from told records alone: a record becomes the current cell when there is none,
when it improves on the current cell and is one of its neighbours, or when it is a fresh start
(no parent) after the current cell turned out to be a local optimum.
"""

from __future__ import annotations

from nasengine.algorithms.base import Algorithm, Proposal, Record
from nasengine.algorithms.memory import Memory
from nasengine.spaces.cell import CellSpace


class LocalSearch(Algorithm):
    name = "local"

    def __init__(self, space: CellSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.memory = Memory(space)
        self.current: Record | None = None
        self._neighbours: set[str] = set()  # the current cell's neighbours (hashes)
        self._around: set[str] = set()  # those not told yet

    def _move(self, record: Record) -> None:
        self.current = record
        here = self.space.hash(record.genotype)
        self._neighbours = set(map(self.space.hash, self.space.neighbours(record.genotype))) - {here}
        self._around = {h for h in self._neighbours if h not in self.memory.values}

    def tell(self, record: Record) -> None:
        super().tell(record)
        h = self.space.hash(record.genotype)
        self.memory.add(record, h)
        self._around.discard(h)
        if record.value is None:
            return
        value = self.memory.values[h]  # a repeat counts with the value first told
        if (self.current is None or (record.parent is None and not self._around)
                or (value > self.current.value and h in self._neighbours)):
            self._move(Record(record.number, record.genotype, value, record.parent))

    def ask(self) -> Proposal:
        rng = self.rng()
        if self.current is not None:
            children = self.memory.unseen_neighbours(self.current.genotype)
            if children:
                h, child = rng.choice(children)
                return Proposal(self.memory.propose(child, h), self.current.number, "neighbour")
        return Proposal(self.memory.random_unseen(rng), None, "random")

"""Pareto local search (``--algo local`` with several objectives): a random member of the queried
front, then a random unqueried 1-edit neighbour of it (Paquete et al. 2004, in its plainest form; the
issue's "plain Pareto local search" baseline). When no front member has an untried neighbour, any
queried cell's; when none has, a random unqueried cell.

Candidates are told apart as in the Pareto evolution (computed function and costs) and come from
every param choice, the zero op included (``choices.py``). State is built by ``tell`` alone (plus
the proposals not told yet).
"""

from __future__ import annotations

from collections.abc import Sequence

from nasengine.algorithms.base import Algorithm, Costs, Proposal, Record
from nasengine.algorithms.choices import Choices
from nasengine.algorithms.memory import Memory
from nasengine.core.pareto import pareto_front
from nasengine.spaces.cell import CellSpace


class ParetoLocalSearch(Algorithm):
    name = "local"
    multi_objective = True

    def __init__(self, space: CellSpace, seed: int = 0, objectives: Sequence[str] = ("accuracy", "params"),
                 directions: Sequence[str] = ("maximize", "minimize"), costs: Costs | None = None) -> None:
        super().__init__(space, seed, objectives, directions, costs)
        self.memory = Memory(Choices(space), key=self.key if costs is not None else None)

    def tell(self, record: Record) -> None:
        super().tell(record)
        self.memory.add(record)

    def ask(self) -> Proposal:
        rng = self.rng()
        records = self.memory.records
        front = [records[i] for i in pareto_front([r.values for r in records], self.maximize)]
        for group in (front, records):
            group = list(group)
            rng.shuffle(group)
            for member in group:
                children = self.memory.unseen_neighbours(member.genotype)
                if children:
                    h, child = rng.choice(children)
                    return Proposal(self.memory.propose(child, h), member.number, "neighbour")
        return Proposal(self.memory.random_unseen(rng), None, "random")

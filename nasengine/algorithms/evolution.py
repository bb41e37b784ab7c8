"""Regularized evolution (Real et al. 2019, AmoebaNet): tournament selection with aging.

Both variants run the paper's loop: sample ``sample`` members of the population, the best of them is
the parent, its child joins the population and the oldest member dies.

- ``variant="textbook"``: the paper's algorithm. Population 20, sample 5, an initial population of
  ``population`` random cells, the child is ``space.mutate`` of the parent (uniform over the AmoebaNet
  mutations), no de-duplication: every told record joins the population.
- ``variant="guided"`` (the default): the same loop made sample-efficient, with nothing that knows
  the space or the task beyond the ``CellSpace`` API and the values told:

  * de-duplication: the population holds distinct computed functions (canonical hashes), and a child
    is never a cell already queried (or proposed) nor a mutation that leaves the function unchanged;
    a parent's 1-edit neighbours are tried once each, so its mutations never repeat;
  * a small initial population (``initial``, 5 random cells) so selection starts early, and a larger
    aging population (``population`` 50, ``sample`` 10) so it stays diverse;
  * elitism: the ``elite`` (10) best cells queried so far take part in every tournament even after
    they aged out of the population. Without it a good cell whose untried neighbours include the
    optimum can die of age with them untried, and the search wanders for a hundred queries (measured:
    1-2 seeds in 150 missed a table's optimum within 200 queries; none with it);
  * the mutation is chosen, not drawn: the tournament winner's untried 1-edit neighbours are ranked
    by an upper confidence bound (mean + ``kappa`` x std) of a Bayesian ridge model of the queried
    cells' path features (``surrogate.py``), refitted after every told record, and the best-ranked
    one is proposed. The uncertainty term makes the search try edits the queried cells say nothing
    about, instead of never changing an op the first cells happened to share. The model sees only
    the ranks of the values told, so it is the same on any monotone transform of the table.

  When the winner has no untried neighbour, the next tournament member is the parent, then the rest
  of the population by value; when the whole population's neighbourhoods are used up, a random
  unqueried cell.

State is built by ``tell`` alone (plus the proposals not told yet), so a fresh algorithm told the same
history proposes the same cells.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from nasengine.algorithms.base import Algorithm, Proposal, Record
from nasengine.algorithms.memory import Memory
from nasengine.algorithms.surrogate import Ranker, RankModel
from nasengine.core.genotype import Genotype
from nasengine.errors import NasError
from nasengine.spaces.cell import CellSpace

VARIANTS: dict[str, dict[str, Any]] = {
    "textbook": {"population": 20, "sample": 5, "initial": None, "elite": 0},  # initial None: the population size
    "guided": {"population": 50, "sample": 10, "initial": 5, "elite": 10},
}


class RegularizedEvolution(Algorithm):
    name = "evolution"

    def __init__(self, space: CellSpace, seed: int = 0, variant: str = "guided", population: int | None = None,
                 sample: int | None = None, initial: int | None = None, init: list[Any] | None = None,
                 kappa: float = 1.5, alpha: float = 10.0, window: int = 1000, elite: int | None = None) -> None:
        super().__init__(space, seed)
        if variant not in VARIANTS:
            raise NasError(f"unknown evolution variant {variant!r} (known: {', '.join(VARIANTS)})")
        defaults = VARIANTS[variant]
        self.variant = variant
        self.population_size = int(population if population is not None else defaults["population"])
        self.sample_size = int(sample if sample is not None else defaults["sample"])
        if initial is None:
            initial = defaults["initial"] or self.population_size
        self.initial = int(initial)
        self.elite = int(elite if elite is not None else defaults["elite"])
        for key, value in (("population", self.population_size), ("sample", self.sample_size),
                           ("initial", self.initial), ("window", window)):
            if value < 1:
                raise NasError(f"evolution: {key} must be at least 1, got {value}")
        if kappa < 0 or alpha <= 0 or self.elite < 0:
            raise NasError(f"evolution: kappa and elite must be >= 0 and alpha > 0, got kappa={kappa}, "
                           f"elite={self.elite}, alpha={alpha}")
        self.sample_size = min(self.sample_size, self.population_size)
        self.init = [g if isinstance(g, Genotype) else space.parse(str(g)) for g in (init or [])]
        self.kappa, self.alpha, self.window = float(kappa), float(alpha), int(window)
        self.memory = Memory(space)
        self.population: deque[Record] = deque(maxlen=self.population_size)
        self.ranker = Ranker(space, self.alpha, self.kappa)
        self._model: tuple[int, RankModel | None] = (-1, None)

    # ---- tell ------------------------------------------------------------------------------
    def tell(self, record: Record) -> None:
        super().tell(record)
        if self.variant == "textbook":
            if record.value is not None:
                self.population.append(record)
            return
        if self.memory.add(record) is not None:  # a new cell that did not fail
            self.population.append(record)

    # ---- ask -------------------------------------------------------------------------------
    def ask(self) -> Proposal:
        rng = self.rng()
        asked = self.told + self._asks - 1  # proposals made before this one
        if asked < len(self.init):
            g = self.init[asked]
            if self.variant != "textbook":
                self.memory.propose(g)
            return Proposal(g, None, "init")
        if self.variant == "textbook":
            if asked < self.initial or not self.population:
                return Proposal(self.space.sample(rng), None, "random")
            parent = max(rng.sample(list(self.population), min(self.sample_size, len(self.population))),
                         key=lambda r: r.value)
            child, kind = self.space.mutate(parent.genotype, rng)
            return Proposal(child, parent.number, f"mutation:{kind}")

        if len(self.memory.records) + len(self.memory.pending) < self.initial or not self.population:
            return Proposal(self.memory.random_unseen(rng), None, "random")
        members = list(self.population)
        if self.elite:  # the best cells so far, even those that aged out
            here = {id(r) for r in members}
            members += [r for r in sorted(self.memory.records, key=lambda r: r.value, reverse=True)[:self.elite]
                        if id(r) not in here]
        tournament = sorted(rng.sample(members, min(self.sample_size, len(members))),
                            key=lambda r: r.value, reverse=True)
        chosen = {id(r) for r in tournament}
        rest = sorted((r for r in members if id(r) not in chosen), key=lambda r: r.value, reverse=True)
        for parent in tournament + rest:
            children = self.memory.unseen_neighbours(parent.genotype)
            if children:
                h, child = self.ranker.pick(self.model(), children, rng)
                return Proposal(self.memory.propose(child, h), parent.number, "mutation:ranked")
        return Proposal(self.memory.random_unseen(rng), None, "random")

    # ---- the surrogate -----------------------------------------------------------------------
    def model(self) -> RankModel | None:
        """The ranking model of the last ``window`` distinct cells told (None until two values differ)."""
        if self._model[0] != self.told:
            records, hashes = self.memory.records[-self.window:], self.memory.hashes[-self.window:]
            self._model = (self.told, self.ranker.fit(hashes, [r.genotype for r in records],
                                                      [r.value for r in records]))
        return self._model[1]

"""Regularized evolution (Real et al. 2019, AmoebaNet): tournament selection with aging.

Two variants share the loop "sample S members of the population, mutate the best, the oldest dies":

- ``variant="textbook"``: the paper's algorithm. Population 20, sample 5, the child is
  ``space.mutate`` of the parent (uniform over the AmoebaNet mutations), no de-duplication: every told
  record joins the population.
- ``variant="guided"`` (the default): the same loop made sample-efficient. The population holds
  distinct computed functions (canonical hashes); a child is never a cell already queried, nor a
  mutation that leaves the computed function unchanged; and instead of one random mutation, the
  parent's unqueried 1-edit neighbours are ranked by a ridge model of the queried cells' path
  features (``surrogate.py``, refitted after every told record) and the best-ranked is proposed.
  It learns only from the values of the cells it has queried.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from nasengine.algorithms.base import Algorithm, Proposal, Record
from nasengine.algorithms.memory import Memory
from nasengine.algorithms.surrogate import RidgeRanker, path_features
from nasengine.errors import NasError
from nasengine.genotype import Genotype
from nasengine.spaces import CellSpace

VARIANTS = {
    "textbook": {"population": 20, "sample": 5, "initial": None},
    "guided": {"population": 20, "sample": 5, "initial": None},
}


class RegularizedEvolution(Algorithm):
    name = "evolution"

    def __init__(self, space: CellSpace, seed: int = 0, variant: str = "guided", population: int | None = None,
                 sample: int | None = None, initial: int | None = None, init: list[Any] | None = None,
                 alpha: float = 10.0, window: int = 1000) -> None:
        super().__init__(space, seed)
        if variant not in VARIANTS:
            raise NasError(f"unknown evolution variant {variant!r} (known: {', '.join(VARIANTS)})")
        defaults = VARIANTS[variant]
        self.variant = variant
        self.population_size = int(population or defaults["population"])
        self.sample_size = int(sample or defaults["sample"])
        self.initial = int(initial or defaults["initial"] or self.population_size)
        for key, value in (("population", self.population_size), ("sample", self.sample_size),
                           ("initial", self.initial)):
            if value < 1:
                raise NasError(f"evolution: {key} must be at least 1, got {value}")
        self.sample_size = min(self.sample_size, self.population_size)
        self.init = [g if isinstance(g, Genotype) else space.parse(str(g)) for g in (init or [])]
        self.alpha = alpha
        self.window = window
        self.memory = Memory(space)
        self.population: deque[Record] = deque(maxlen=self.population_size)
        self._features: dict[str, dict[str, int]] = {}
        self._model: tuple[int, RidgeRanker | None] = (-1, None)

    # ---- tell ------------------------------------------------------------------------------
    def tell(self, record: Record) -> None:
        super().tell(record)
        if self.variant == "textbook":
            if record.value is not None:
                self.population.append(record)
            return
        if self.memory.add(record) is not None:
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
        tournament = sorted(rng.sample(members, self.sample_size), key=lambda r: r.value, reverse=True)
        rest = sorted((r for r in members if r not in tournament), key=lambda r: r.value, reverse=True)
        for parent in tournament + rest:
            children = self.memory.unseen_neighbours(parent.genotype)
            if children:
                h, child = self._best(children, rng)
                return Proposal(self.memory.propose(child, h), parent.number, "mutation:ranked")
        return Proposal(self.memory.random_unseen(rng), None, "random")

    # ---- the surrogate -----------------------------------------------------------------------
    def _feature(self, h: str, g: Genotype) -> dict[str, int]:
        f = self._features.get(h)
        if f is None:
            f = self._features[h] = path_features(g, self.space.zero_op, self.space.identity_op)
        return f

    def _ranker(self) -> RidgeRanker | None:
        if self._model[0] != self.told:
            records, hashes = self.memory.records[-self.window:], self.memory.hashes[-self.window:]
            model = None
            if len(records) >= 2 and len({r.value for r in records}) > 1:
                feats = [self._feature(h, r.genotype) for h, r in zip(hashes, records)]
                model = RidgeRanker(self.alpha).fit(feats, [r.value for r in records])
            self._model = (self.told, model)
        return self._model[1]

    def _best(self, children: list[tuple[str, Genotype]], rng) -> tuple[str, Genotype]:
        model = self._ranker()
        if model is None:
            return rng.choice(children)
        scores = model.predict([self._feature(h, g) for h, g in children])
        top = max(scores)
        return rng.choice([c for c, s in zip(children, scores) if s >= top - 1e-12])

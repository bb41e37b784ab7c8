"""The interface every search algorithm implements. Algorithms never import Ray or Optuna.

An algorithm proposes genotypes with ``ask`` and learns from finished trials with ``tell``; all its
state is what ``tell`` built, so resuming a search is a fresh algorithm told the study's finished
trials in order. ``ask`` draws from a generator seeded by (seed, trials told, asks since), so the
same history always gives the same proposals, however the search was interrupted.

Several objectives (``make_algorithm(name, space, seed, objectives=..., directions=..., costs=...,
**settings)``):

- ``objectives: tuple[str, ...]``: the study's objectives in order, e.g. ``("accuracy", "params")``
  (2 or 3 names, distinct);
- ``directions: tuple[str, ...]``: ``"maximize"`` or ``"minimize"`` per objective (Optuna's words);
- ``costs: Callable[[Genotype], dict[str, float]] | None``: the cheap objectives of any candidate,
  known without training it (``{"params": 1.2e6, "flops": 3.4e8, "latency": 5.1}``). An objective is
  *cheap* when its name is a key of ``costs(g)`` (the same keys for every genotype); the others
  (accuracy) cost a query. An algorithm may call ``costs`` on as many candidates as it likes.
  None: every objective costs a query.

Each told ``Record`` then carries ``values``: the objectives in that order (None when the trial
failed), e.g. ``Record(number, g, value=acc, values=(acc, params))``; ``value`` stays the first
objective's value. With one objective ``values`` is ``(value,)``, filled in when not given, and
``make_algorithm`` builds the single-objective algorithm exactly as without these arguments.
Algorithms that take several objectives set ``multi_objective = True``; ``make_algorithm`` gives the
others a NasError when asked for more than one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from nasengine.core.genotype import Genotype
from nasengine.errors import NasError
from nasengine.spaces.cell import CellSpace

Costs = Callable[[Genotype], dict[str, float]]
DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class Proposal:
    genotype: Genotype
    parent: int | None = None  # the trial number this candidate was derived from
    note: str = ""  # how it was made: "random", "mutation:op", ...


@dataclass(frozen=True)
class Record:
    """A finished trial as an algorithm sees it; ``value`` None means it failed.

    ``values``: every objective in the study's order (``(value,)`` for one objective, filled in)."""

    number: int
    genotype: Genotype
    value: float | None
    parent: int | None = None
    hash: str | None = None  # the genotype's canonical hash when the teller knows it (a resume reads it)
    values: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.values is None and self.value is not None:
            object.__setattr__(self, "values", (self.value,))
        elif self.values is not None:
            object.__setattr__(self, "values", tuple(float(v) for v in self.values))


def check_objectives(objectives: Sequence[str], directions: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The objectives and directions as tuples; NasError for a mismatch, a repeat or an unknown direction."""
    objectives, directions = tuple(objectives), tuple(directions)
    if len(objectives) != len(directions):
        raise NasError(f"{len(objectives)} objectives but {len(directions)} directions")
    if len(set(objectives)) != len(objectives):
        raise NasError(f"objectives repeat: {', '.join(objectives)}")
    bad = [d for d in directions if d not in DIRECTIONS]
    if bad:
        raise NasError(f"unknown direction {bad[0]!r} (known: {', '.join(DIRECTIONS)})")
    return objectives, directions


class Algorithm:
    name: ClassVar[str] = ""
    multi_objective: ClassVar[bool] = False  # takes several objectives (``objectives``, ``directions``, ``costs``)

    def __init__(self, space: CellSpace, seed: int = 0, objectives: Sequence[str] = ("value",),
                 directions: Sequence[str] = ("maximize",), costs: Costs | None = None) -> None:
        self.space = space
        self.seed = seed
        self.objectives, self.directions = check_objectives(objectives, directions)
        self.maximize = tuple(d == "maximize" for d in self.directions)
        self.costs = costs
        self._costs: dict[Genotype, dict[str, float]] = {}
        self.told = 0
        self._asks = 0

    def cost(self, g: Genotype) -> dict[str, float]:
        """The cheap objectives of ``g`` among this search's objectives (cached; empty without ``costs``)."""
        c = self._costs.get(g)
        if c is None:
            c = self._costs[g] = {k: float(v) for k, v in (self.costs(g) if self.costs else {}).items()
                                  if k in self.objectives}
        return c

    def key(self, g: Genotype) -> str:
        """A candidate's identity with several objectives: its computed function and its costs (two cells
        of one function can differ in cost: NAS-Bench-201 builds an edge that never reaches the output)."""
        return self.space.hash(g) + "".join(f":{v!r}" for _, v in sorted(self.cost(g).items()))

    def rng(self) -> random.Random:
        """A generator for one ask, determined by the seed and the history so far."""
        self._asks += 1
        return random.Random(f"{self.seed}:{self.told}:{self._asks}")

    def ask(self) -> Proposal:
        raise NotImplementedError

    def tell(self, record: Record) -> None:
        self.told += 1
        self._asks = 0

"""Search algorithms by name: ``make_algorithm("evolution", space, seed, population=20)``."""

from __future__ import annotations

from typing import Any

from nasengine.algorithms.base import Algorithm, Proposal, Record
from nasengine.algorithms.evolution import RegularizedEvolution
from nasengine.algorithms.local_search import LocalSearch
from nasengine.algorithms.random_search import RandomSearch
from nasengine.algorithms.reinforce import Reinforce
from nasengine.errors import NasError
from nasengine.spaces.cell import CellSpace

ALGORITHMS: dict[str, type[Algorithm]] = {cls.name: cls for cls in (RandomSearch, RegularizedEvolution, LocalSearch,
                                                                  Reinforce)}


def make_algorithm(name: str, space: CellSpace, seed: int = 0, **settings: Any) -> Algorithm:
    if name not in ALGORITHMS:
        raise NasError(f"unknown algorithm {name!r} (known: {', '.join(sorted(ALGORITHMS))})")
    try:
        return ALGORITHMS[name](space, seed, **settings)
    except TypeError as e:
        raise NasError(f"algorithm {name}: {e}") from None


__all__ = ["ALGORITHMS", "Algorithm", "Proposal", "Record", "make_algorithm"]

"""Search algorithms by name: ``make_algorithm("evolution", space, seed, population=20)``; several
objectives: ``make_algorithm("evolution", space, seed, objectives=("accuracy", "params"),
directions=("maximize", "minimize"), costs=costs)`` (see ``base.py``)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from nasengine.algorithms.base import Algorithm, Costs, Proposal, Record, check_objectives
from nasengine.algorithms.evolution import RegularizedEvolution
from nasengine.algorithms.local_search import LocalSearch
from nasengine.algorithms.pareto_evolution import ParetoEvolution
from nasengine.algorithms.pareto_local import ParetoLocalSearch
from nasengine.algorithms.random_search import RandomSearch
from nasengine.algorithms.reinforce import Reinforce
from nasengine.errors import NasError, check_keys, did_you_mean, first_line
from nasengine.spaces.cell import CellSpace

ALGORITHMS: dict[str, type[Algorithm]] = {cls.name: cls for cls in (RandomSearch, RegularizedEvolution, LocalSearch,
                                                                  Reinforce)}
# the algorithm a name stands for when there are several objectives
MULTI_OBJECTIVE: dict[str, type[Algorithm]] = {cls.name: cls for cls in (RandomSearch, ParetoEvolution,
                                                                       ParetoLocalSearch)}


def make_algorithm(name: str, space: CellSpace, seed: int = 0, objectives: Sequence[str] | None = None,
                   directions: Sequence[str] | None = None, costs: Costs | None = None,
                   **settings: Any) -> Algorithm:
    """The algorithm ``name`` with its settings. With one objective (or none given: the value,
    maximised) the single-objective class, unchanged; with several, its Pareto form."""
    if name not in ALGORITHMS:
        raise NasError(f"unknown algorithm {name!r}{did_you_mean(name, ALGORITHMS)} "
                       f"(known: {', '.join(sorted(ALGORITHMS))})")
    objectives = tuple(objectives or ("value",))
    objectives, directions = check_objectives(objectives, tuple(directions or ("maximize",) * len(objectives)))
    cls = MULTI_OBJECTIVE.get(name, ALGORITHMS[name]) if len(objectives) > 1 else ALGORITHMS[name]
    given = ("space", "seed", "objectives", "directions", "costs")
    own = [k for k in inspect.signature(cls).parameters if k not in given]
    check_keys(settings, own, "setting", f"algorithm {name}")  # the valid keys, not Python's "unexpected keyword"
    try:
        if len(objectives) == 1:
            if directions != ("maximize",):
                raise NasError(f"a single objective is maximised; {objectives[0]} is to {directions[0]}")
            return ALGORITHMS[name](space, seed, **settings)
        if not 2 <= len(objectives) <= 3:
            raise NasError(f"2 or 3 objectives, got {len(objectives)}: {', '.join(objectives)}")
        if name not in MULTI_OBJECTIVE:
            raise NasError(f"algorithm {name} takes one objective (several: {', '.join(sorted(MULTI_OBJECTIVE))})")
        return MULTI_OBJECTIVE[name](space, seed, objectives=objectives, directions=directions, costs=costs,
                                     **settings)
    except (TypeError, ValueError) as e:  # a setting's value of the wrong kind, e.g. population=abc
        raise NasError(f"algorithm {name}: {first_line(e)}") from None


__all__ = ["ALGORITHMS", "MULTI_OBJECTIVE", "Algorithm", "Costs", "Proposal", "Record", "make_algorithm"]

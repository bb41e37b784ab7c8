"""Random search: every candidate sampled uniformly from the space (with several objectives, from
every param choice, the zero op included: ``choices.py``)."""

from __future__ import annotations

from collections.abc import Sequence

from nasengine.algorithms.base import Algorithm, Costs, Proposal
from nasengine.algorithms.choices import Choices
from nasengine.spaces.cell import CellSpace


class RandomSearch(Algorithm):
    name = "random"
    multi_objective = True

    def __init__(self, space: CellSpace, seed: int = 0, objectives: Sequence[str] = ("value",),
                 directions: Sequence[str] = ("maximize",), costs: Costs | None = None) -> None:
        super().__init__(space, seed, objectives, directions, costs)
        self.sampler = space if len(self.objectives) == 1 else Choices(space)

    def ask(self) -> Proposal:
        return Proposal(self.sampler.sample(self.rng()), None, "random")

"""A cell space with every choice open, the zero op included: the candidates of a search with several
objectives.

``CellSpace.sample`` and ``neighbours`` never use the zero op (``none``): with accuracy alone an edge
that computes nothing never helps. With a cost objective it does, since it makes a cheaper network:
on NAS-Bench-201, 9 of the 17 cells on CIFAR-10's true (accuracy, params) front have a ``none`` edge,
and the best front of the cells without one has 97.8% of the true front's hypervolume (97.6% on
CIFAR-100, 98.7% on ImageNet16-120; reference point at the median accuracy and the largest count).
So the Pareto algorithms sample and edit through the space's params (``param_choices``,
``to_params``, ``from_params``), where every op is a choice; a choice the space refuses is skipped.
"""

from __future__ import annotations

import random

from nasengine.core.genotype import Genotype
from nasengine.errors import NasError
from nasengine.spaces.cell import CellSpace


class Choices:
    """``sample``, ``neighbours`` and ``hash`` of ``space`` over all its param choices (``Memory`` takes it)."""

    def __init__(self, space: CellSpace) -> None:
        self.space = space
        self.choices = space.param_choices()
        self.hash = space.hash
        self._keys = list(space.to_params(space.sample(random.Random(0))))  # the params every genotype has

    def sample(self, rng: random.Random, tries: int = 100) -> Genotype:
        """Each param of a sampled genotype drawn uniformly from its choices (the zero op included)."""
        for _ in range(tries):
            params = {key: rng.choice(self.choices[key]) for key in self._keys}
            try:
                return self.space.from_params(params)
            except NasError:
                continue
        return self.space.sample(rng)

    def neighbours(self, g: Genotype) -> list[Genotype]:
        """Every genotype one param choice away, in the params' order."""
        params = self.space.to_params(g)
        out = []
        for key, current in params.items():
            for choice in self.choices[key]:
                if choice != current:
                    try:
                        out.append(self.space.from_params({**params, key: choice}))
                    except NasError:
                        pass
        return out

"""Random search: every candidate sampled uniformly from the space."""

from __future__ import annotations

from nasengine.algorithms.base import Algorithm, Proposal


class RandomSearch(Algorithm):
    name = "random"

    def ask(self) -> Proposal:
        return Proposal(self.space.sample(self.rng()), None, "random")

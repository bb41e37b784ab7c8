"""The interface every search algorithm implements. Algorithms never import Ray or Optuna.

An algorithm proposes genotypes with ``ask`` and learns from finished trials with ``tell``; all its
state is what ``tell`` built, so resuming a search is a fresh algorithm told the study's finished
trials in order. ``ask`` draws from a generator seeded by (seed, trials told, asks since), so the
same history always gives the same proposals, however the search was interrupted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from nasengine.core.genotype import Genotype
from nasengine.spaces.cell import CellSpace


@dataclass(frozen=True)
class Proposal:
    genotype: Genotype
    parent: int | None = None  # the trial number this candidate was derived from
    note: str = ""  # how it was made: "random", "mutation:op", ...


@dataclass(frozen=True)
class Record:
    """A finished trial as an algorithm sees it; ``value`` None means it failed."""

    number: int
    genotype: Genotype
    value: float | None
    parent: int | None = None
    hash: str | None = None  # the genotype's canonical hash when the teller knows it (a resume reads it)


class Algorithm:
    name: ClassVar[str] = ""

    def __init__(self, space: CellSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.told = 0
        self._asks = 0

    def rng(self) -> random.Random:
        """A generator for one ask, determined by the seed and the history so far."""
        self._asks += 1
        return random.Random(f"{self.seed}:{self.told}:{self._asks}")

    def ask(self) -> Proposal:
        raise NotImplementedError

    def tell(self, record: Record) -> None:
        self.told += 1
        self._asks = 0

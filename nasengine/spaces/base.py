"""What every search space offers: the interface algorithms, the search driver, the trial writer and the
resolver rely on. ``CellSpace`` (``kind == "cell"``) and ``BlockSpace`` (``kind == "blocks"``) implement it."""

from __future__ import annotations

import random
from typing import Any, Protocol

from nasengine.core.blocks import Blocks
from nasengine.core.genotype import Genotype

AnyGenotype = Genotype | Blocks
"""A genotype of either kind (parameters are typed ``Any``: each space takes its own kind)."""


class Space(Protocol):
    name: str
    kind: str  # "cell" or "blocks"
    description: str
    network: dict[str, Any]  # the YAML's network: block (skeleton and the search-time network settings)

    def validate(self, g: Any) -> AnyGenotype: ...  # g itself, or NasError when it breaks the space's rules
    def parse(self, text: str) -> AnyGenotype: ...
    def format(self, g: Any) -> str: ...
    def canonical(self, g: Any) -> str: ...  # equal for genotypes that build the same network
    def hash(self, g: Any) -> str: ...
    def sample(self, rng: random.Random) -> AnyGenotype: ...
    def mutate(self, g: Any, rng: random.Random) -> tuple[AnyGenotype, str]: ...  # (child != g, kind of edit)
    def neighbours(self, g: Any) -> list[AnyGenotype]: ...  # every 1-edit, in a fixed order
    def param_choices(self) -> dict[str, list]: ...
    def to_params(self, g: Any) -> dict[str, Any]: ...
    def from_params(self, params: dict[str, Any]) -> AnyGenotype: ...

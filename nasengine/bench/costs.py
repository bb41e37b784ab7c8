"""The cheap objectives of a NAS-Bench-201 cell without building its network: parameters as nasengine
counts them for NAS-Bench-201's CIFAR network (``network_settings(space, "nb201")``: C=16, N=5, 10
classes; ``models.count_params`` of ``build_network``).

The count is additive over the cell's edges: each of the 15 cells builds every edge's op (an edge that
never reaches the output is built too), so a network's parameters are those of the all-``none``
network plus, per edge, what its op adds there (measured on NAS-Bench-201: 28,000 for
``nor_conv_1x1``, 243,040 for ``nor_conv_3x3``, 0 for the parameter-free ops, at every position;
base 73,306). The contributions are counted once per space by building 1 + edges x ops networks, and
``tests/test_pareto_bench.py`` checks the sum against a direct count on random cells.
"""

from __future__ import annotations

from functools import cache

from nasengine.core.genotype import Genotype
from nasengine.errors import NasError
from nasengine.spaces.cell import CellSpace, load_space

COST_OBJECTIVES = ("params",)


def count_cell_params(space: CellSpace, g: Genotype) -> int:
    """The direct count: build the nb201 network of ``g`` and count its parameters (slow)."""
    from nasengine.models.flops import count_params
    from nasengine.models.network import build_network
    from nasengine.zoo.presets import network_settings

    return count_params(build_network(g.to_data(), **network_settings(space, "nb201")))


@cache
def _contributions(space_name: str) -> tuple[int, dict[tuple[str, str], int]]:
    space = load_space(space_name)
    if space.network.get("skeleton") != "nb201":
        raise NasError(f"params as an objective needs a NAS-Bench-201 space; {space.name} builds "
                       f"{space.network.get('skeleton')} networks")
    choices = {k: v for k, v in space.param_choices().items() if not k.endswith("/concat")}
    empty = {key: space.zero_op for key in choices}
    base = count_cell_params(space, space.from_params(empty))
    added = {(key, op): count_cell_params(space, space.from_params({**empty, key: op})) - base
             for key in choices for op in choices[key] if op != space.zero_op}
    added.update({(key, space.zero_op): 0 for key in choices})
    return base, added


class CellCosts:
    """``costs(g) -> {"params": n}``: the ``costs`` callable the algorithms take (``algorithms/base.py``)."""

    def __init__(self, space: CellSpace) -> None:
        self.space = space
        self.base, self.added = _contributions(space.name)

    def params(self, g: Genotype) -> int:
        return self.base + sum(self.added[key, op] for key, op in self.space.to_params(g).items())

    def __call__(self, g: Genotype) -> dict[str, float]:
        return {"params": float(self.params(g))}

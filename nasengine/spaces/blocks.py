"""Block spaces: MnasNet's factorized hierarchical search space (Tan et al. 2019, sec. 4.1).

A backbone fixes the number of blocks and each block's filters, layers and stride; a genotype picks, for
every block independently, the layer op, kernel, squeeze-and-excitation ratio and skip op, and the block's
filters as a multiplier of the backbone's and its layer count as a delta to the backbone's. Genotypes hold
the absolute filters, layers and stride (``core.blocks``), so a genotype means the same outside its space.

Params (Optuna's categorical choices) are per block, numbered from 1 as in the paper's figure 4:
``block3/op``, ``block3/kernel``, ``block3/se``, ``block3/skip`` (``none`` or ``identity``),
``block3/filters`` (the multiplier) and ``block3/layers`` (the delta). A multiplier or delta is offered
only where it gives a block size no earlier one in the list gives (at least one filter and one layer),
so every genotype has exactly one params form.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from nasengine.core.blocks import Block, Blocks, canonical_blocks, skip_matters
from nasengine.core.canonical import hash_text
from nasengine.errors import NasError, check_keys

SKIPS = ("none", "identity")  # the skip op's names, as MnasNet's paper gives them
CHOICES = ("op", "kernel", "se", "skip", "filters", "layers")  # a block's choices, in params order

_KEYS = {"name", "description", "kind", "backbone", "ops", "kernels", "se", "skip", "filters", "layers", "network"}


@dataclass(frozen=True)
class BlockSpace:
    name: str
    backbone: tuple[Block, ...]  # only filters, layers and stride are used
    ops: tuple[str, ...]
    kernels: tuple[int, ...]
    se: tuple[float, ...]
    skip: tuple[str, ...]  # among SKIPS
    filters: tuple[float, ...]  # multipliers of the backbone's filters
    layers: tuple[int, ...]  # deltas to the backbone's layers
    description: str = ""
    network: dict[str, Any] = field(default_factory=dict)
    kind: ClassVar[str] = "blocks"

    # ---- structure ---------------------------------------------------------------------------
    @cached_property
    def sizes(self) -> tuple[tuple[dict[float, int], dict[int, int]], ...]:
        """Per block: {multiplier: filters} and {delta: layers}, the choices that give distinct sizes."""
        out = []
        for b in self.backbone:
            filters: dict[float, int] = {}
            for m in self.filters:
                c = int(b.filters * m + 0.5)
                if c >= 1 and c not in filters.values():
                    filters[m] = c
            layers = {d: b.layers + d for d in self.layers if b.layers + d >= 1}
            out.append((filters, layers))
        return tuple(out)

    def values(self, i: int, choice: str) -> list:
        """The param values block ``i`` (0-based) may take for ``choice`` (one of CHOICES)."""
        filters, layers = self.sizes[i]
        return {"op": list(self.ops), "kernel": list(self.kernels), "se": list(self.se), "skip": list(self.skip),
                "filters": list(filters), "layers": list(layers)}[choice]

    def _block(self, i: int, picks: dict[str, Any]) -> Block:
        filters, layers = self.sizes[i]
        return Block(picks["op"], picks["kernel"], filters[picks["filters"]], layers[picks["layers"]],
                     self.backbone[i].stride, picks["se"], picks["skip"] == "identity")

    def _picks(self, i: int, b: Block) -> dict[str, Any]:
        """Block ``i``'s params values; NasError naming the first field outside the space."""
        filters, layers = self.sizes[i]
        where = f"block {i + 1} ({b})"
        if b.stride != self.backbone[i].stride:
            raise NasError(f"{where}: stride {b.stride}, space {self.name} has {self.backbone[i].stride}")
        picks: dict[str, Any] = {"op": b.op, "kernel": b.kernel, "se": b.se, "skip": SKIPS[b.skip]}
        for key, value, by in (("filters", b.filters, filters), ("layers", b.layers, layers)):
            found = [k for k, v in by.items() if v == value]
            if not found:
                raise NasError(f"{where}: {value} {key}; space {self.name} allows {', '.join(map(str, by.values()))}")
            picks[key] = found[0]
        for key in ("op", "kernel", "se", "skip"):
            if picks[key] not in self.values(i, key):
                raise NasError(f"{where}: {key} {picks[key]} is not among space {self.name}'s "
                               f"({', '.join(map(str, self.values(i, key)))})")
        return picks

    def validate(self, g: Blocks) -> Blocks:
        if not isinstance(g, Blocks):
            raise NasError(f"space {self.name} is a block space; the genotype is a cell genotype")
        if len(g.blocks) != len(self.backbone):
            raise NasError(f"space {self.name} has {len(self.backbone)} blocks; the genotype has {len(g.blocks)}")
        for i, b in enumerate(g.blocks):
            self._picks(i, b)
        return g

    # ---- text --------------------------------------------------------------------------------
    def parse(self, text: str) -> Blocks:
        return self.validate(Blocks.parse(text))

    def format(self, g: Blocks) -> str:
        return str(g)

    # ---- identity ----------------------------------------------------------------------------
    def canonical(self, g: Blocks) -> str:
        return str(canonical_blocks(g))

    def hash(self, g: Blocks) -> str:
        return hash_text(self.canonical(g))

    # ---- sampling and mutation -----------------------------------------------------------------
    def sample(self, rng: random.Random) -> Blocks:
        return Blocks(tuple(self._block(i, {c: rng.choice(self.values(i, c)) for c in CHOICES})
                            for i in range(len(self.backbone))))

    def _edits(self, g: Blocks) -> list[tuple[int, str, Blocks]]:
        """Every 1-edit that changes the network: (block index, choice, child), in a fixed order.

        A skip edit is left out where skip cannot matter (``core.blocks.skip_matters``)."""
        edits = []
        for i, b in enumerate(g.blocks):
            picks = self._picks(i, b)
            for c in CHOICES:
                if c == "skip" and not skip_matters(b):
                    continue
                for value in self.values(i, c):
                    if value != picks[c]:
                        child = self._block(i, {**picks, c: value})
                        edits.append((i, c, Blocks(g.blocks[:i] + (child,) + g.blocks[i + 1:])))
        return edits

    def neighbours(self, g: Blocks) -> list[Blocks]:
        """All genotypes one choice of one block away, in a fixed order."""
        return [child for _, _, child in self._edits(g)]

    def mutate(self, g: Blocks, rng: random.Random) -> tuple[Blocks, str]:
        """MnasNet's space, AmoebaNet's mutation: pick a block, then one of its choices, then a new value,
        each uniformly. Returns the child (always a different network) and the choice changed."""
        edits = self._edits(g)
        i = rng.choice(sorted({e[0] for e in edits}))
        choice = rng.choice([c for c in CHOICES if any(e[0] == i and e[1] == c for e in edits)])
        return rng.choice([e[2] for e in edits if e[0] == i and e[1] == choice]), choice

    # ---- params ------------------------------------------------------------------------------
    def param_choices(self) -> dict[str, list]:
        return {f"block{i + 1}/{c}": self.values(i, c) for i in range(len(self.backbone)) for c in CHOICES}

    def to_params(self, g: Blocks) -> dict[str, Any]:
        self.validate(g)
        return {f"block{i + 1}/{c}": v for i, b in enumerate(g.blocks) for c, v in self._picks(i, b).items()}

    def from_params(self, params: dict[str, Any]) -> Blocks:
        blocks = []
        for i in range(len(self.backbone)):
            picks = {}
            for c in CHOICES:
                key = f"block{i + 1}/{c}"
                if key not in params:
                    raise NasError(f"param {key!r} is missing for space {self.name}")
                found = [v for v in self.values(i, c) if v == params[key]]
                if not found:
                    raise NasError(f"param {key!r} = {params[key]!r} is not among space {self.name}'s "
                                   f"({', '.join(map(str, self.values(i, c)))})")
                picks[c] = found[0]
            blocks.append(self._block(i, picks))
        return self.validate(Blocks(tuple(blocks)))


def _number_list(spec: dict, key: str, kind: type, source: str, low: float, high: float | None = None) -> tuple:
    values = spec.get(key)
    ok = isinstance(values, list) and values and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and (kind is float or isinstance(v, int))
        and low <= v and (high is None or v <= high) for v in values)
    if not ok or len(set(values)) != len(values):
        span = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise NasError(f"{source}: {key!r} must be a non-empty list of distinct {kind.__name__}s {span}, "
                       f"got {values!r}")
    return tuple(kind(v) for v in values)


def block_space_from_dict(spec: dict, source: str = "space") -> BlockSpace:
    """A ``kind: blocks`` space from its YAML mapping (``spaces.cell.space_from_dict`` dispatches here)."""
    check_keys(spec, _KEYS, "key", f"{source} (a block space)")
    for key in ("name", "backbone", "ops"):
        if key not in spec:
            raise NasError(f"{source}: missing key {key!r}")
    backbone = spec["backbone"]
    if not isinstance(backbone, list) or not backbone or not all(isinstance(b, str) for b in backbone):
        raise NasError(f"{source}: 'backbone' must be a non-empty list of block texts, e.g. 'mbconv6 k3 c24 n2 s2'")
    try:
        blocks = tuple(Block.parse(b) for b in backbone)
    except NasError as e:
        raise NasError(f"{source}: backbone: {e}") from None
    ops = spec["ops"]
    if not isinstance(ops, list) or not ops or not all(isinstance(o, str) for o in ops) or len(set(ops)) != len(ops):
        raise NasError(f"{source}: 'ops' must be a non-empty list of distinct op names")
    for op in ops:
        try:
            Block(op, 3, 1, 1, 1)
        except NasError as e:
            raise NasError(f"{source}: ops: {e}") from None
    kernels = _number_list(spec, "kernels", int, source, 1) if "kernels" in spec else (3,)
    try:
        for k in kernels:
            Block("conv", k, 1, 1, 1)
    except NasError as e:
        raise NasError(f"{source}: kernels: {e}") from None
    se = _number_list(spec, "se", float, source, 0, 1) if "se" in spec else (0.0,)
    skip = spec.get("skip", ["identity"])
    if not isinstance(skip, list) or not skip or not set(skip) <= set(SKIPS) or len(set(skip)) != len(skip):
        raise NasError(f"{source}: 'skip' must be a non-empty list of distinct skip ops among {', '.join(SKIPS)}, "
                       f"got {skip!r}")
    filters = _number_list(spec, "filters", float, source, 0) if "filters" in spec else (1.0,)
    layers = _number_list(spec, "layers", int, source, -1_000_000) if "layers" in spec else (0,)
    space = BlockSpace(name=str(spec["name"]), backbone=blocks, ops=tuple(ops), kernels=kernels, se=se,
                       skip=tuple(skip), filters=filters, layers=layers,
                       description=str(spec.get("description", "")).strip(), network=dict(spec.get("network") or {}))
    for i, (by_m, by_d) in enumerate(space.sizes):
        if not by_m or not by_d:
            what = "filter multiplier gives" if not by_m else "layer delta gives"
            raise NasError(f"{source}: for backbone block {i + 1} no {what} a positive size")
    return space

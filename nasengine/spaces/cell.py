"""Search spaces: what can be built, declared in ``search_spaces/*.yaml`` and loaded by name or path.

A ``CellSpace`` owns everything structural about its genotypes: sampling, the AmoebaNet mutations,
1-edit neighbourhoods, validation, canonical hashing and the mapping to Optuna-style params. The one
loader (``load_space``) is here too; a YAML with ``kind: blocks`` gives a ``spaces.blocks.BlockSpace``.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import yaml

from nasengine.core.canonical import canonical, hash_text
from nasengine.core.genotype import Cell, Edge, Genotype
from nasengine.errors import NasError, check_keys, did_you_mean, first_line
from nasengine.resources import resource_dir
from nasengine.spaces.blocks import BlockSpace, block_space_from_dict

SPACES_DIR = resource_dir("search_spaces")

_KEYS = {"name", "description", "kind", "cells", "inputs", "nodes", "edges_per_node", "distinct_inputs",
         "ops", "zero_op", "identity_op", "concat", "notation", "network"}


@dataclass(frozen=True)
class CellSpace:
    name: str
    ops: tuple[str, ...]
    cells: tuple[str, ...] = ("normal", "reduce")
    inputs: int = 2
    nodes: int = 5
    edges_per_node: int | None = 2  # None: one edge from every earlier state (NAS-Bench-201)
    distinct_inputs: bool = False  # DARTS: a node's two edges read different states
    zero_op: str | None = None  # never sampled: the supernet's "none"; drops out of the canonical form
    identity_op: str | None = None  # declared only where it is the identity everywhere in the cell
    concat: str = "unused"  # or "nodes": every node's state (DARTS)
    notation: str = "default"  # or "nasbench201"
    description: str = ""
    network: dict[str, Any] = field(default_factory=dict)
    kind: ClassVar[str] = "cell"

    # ---- structure -------------------------------------------------------------------------
    @cached_property
    def sample_ops(self) -> tuple[str, ...]:
        return tuple(op for op in self.ops if op != self.zero_op)

    def sources(self, k: int) -> list[int]:
        """States that node ``k`` (0-based) may read."""
        return list(range(self.inputs + k))

    def default_concat(self) -> tuple[int, ...] | None:
        return tuple(range(self.inputs, self.inputs + self.nodes)) if self.concat == "nodes" else None

    def validate(self, g: Genotype) -> Genotype:
        if not isinstance(g, Genotype):
            raise NasError(f"space {self.name} is a cell space; the genotype is a block genotype")
        if g.names != self.cells:
            raise NasError(f"space {self.name} has cells {', '.join(self.cells)}; "
                           f"the genotype has {', '.join(g.names)}")
        for name, cell in g.cells:
            if cell.n_inputs != self.inputs or len(cell.nodes) != self.nodes:
                raise NasError(f"{name} cell: space {self.name} has {self.inputs} inputs and {self.nodes} nodes, "
                               f"the genotype {cell.n_inputs} and {len(cell.nodes)}")
            for k, node in enumerate(cell.nodes):
                state = self.inputs + k
                want = self.edges_per_node or len(self.sources(k))
                if len(node) != want:
                    raise NasError(f"{name} cell, node {state}: {len(node)} edges, space {self.name} wants {want}")
                for j, e in enumerate(node):
                    if e.op not in self.ops:
                        raise NasError(f"{name} cell, node {state}: unknown op {e.op!r} for space {self.name}"
                                       f"{did_you_mean(e.op, self.ops)} (ops: {', '.join(self.ops)})")
                    if self.edges_per_node is None and e.src != j:
                        raise NasError(f"{name} cell, node {state}: edge {j} must read state {j}, not {e.src}")
                if self.distinct_inputs and len({e.src for e in node}) < len(node):
                    raise NasError(f"{name} cell, node {state}: space {self.name} wants distinct inputs")
        return g

    # ---- text ------------------------------------------------------------------------------
    def parse(self, text: str) -> Genotype:
        text = text.strip()
        if self.notation == "nasbench201" and text.startswith("|"):
            return self.validate(parse_nasbench201(text))
        return self.validate(Genotype.parse(text))

    def format(self, g: Genotype) -> str:
        return format_nasbench201(g) if self.notation == "nasbench201" else str(g)

    # ---- identity --------------------------------------------------------------------------
    def canonical(self, g: Genotype) -> str:
        return canonical(g, self.zero_op, self.identity_op)

    def hash(self, g: Genotype) -> str:
        return hash_text(self.canonical(g))

    # ---- sampling and mutation ---------------------------------------------------------------
    def sample(self, rng: random.Random) -> Genotype:
        return Genotype(tuple((name, self._sample_cell(rng)) for name in self.cells))

    def _sample_cell(self, rng: random.Random) -> Cell:
        nodes = []
        for k in range(self.nodes):
            if self.edges_per_node is None:
                srcs = self.sources(k)
            elif self.distinct_inputs:
                srcs = sorted(rng.sample(self.sources(k), self.edges_per_node))
            else:
                srcs = [rng.choice(self.sources(k)) for _ in range(self.edges_per_node)]
            nodes.append(tuple(Edge(s, rng.choice(self.sample_ops)) for s in srcs))
        return Cell(tuple(nodes), self.inputs, self.default_concat())

    def _edits(self, g: Genotype) -> list[tuple[str, str, int, int, Edge]]:
        """Every 1-edit: (kind, cell, node index, edge index, new edge)."""
        edits = []
        for name, cell in g.cells:
            for k, node in enumerate(cell.nodes):
                for j, e in enumerate(node):
                    edits += [("op", name, k, j, Edge(e.src, op)) for op in self.sample_ops if op != e.op]
                    if self.edges_per_node is None:
                        continue
                    taken = {o.src for i, o in enumerate(node) if i != j} if self.distinct_inputs else set()
                    edits += [("hidden_state", name, k, j, Edge(s, e.op))
                              for s in self.sources(k) if s != e.src and s not in taken]
        return edits

    @staticmethod
    def _apply(g: Genotype, name: str, k: int, j: int, edge: Edge) -> Genotype:
        cells = []
        for n, cell in g.cells:
            if n == name:
                node = cell.nodes[k][:j] + (edge,) + cell.nodes[k][j + 1:]
                cell = Cell(cell.nodes[:k] + (node,) + cell.nodes[k + 1:], cell.n_inputs, cell.concat)
            cells.append((n, cell))
        return Genotype(tuple(cells))

    def neighbours(self, g: Genotype) -> list[Genotype]:
        """All genotypes one edit away (one op or one input changed), in a fixed order."""
        return [self._apply(g, name, k, j, e) for _, name, k, j, e in self._edits(g)]

    def mutate(self, g: Genotype, rng: random.Random) -> tuple[Genotype, str]:
        """AmoebaNet's mutation: pick a cell, then a hidden-state or an op mutation of one edge.

        Returns the child (always different from ``g``) and the kind of mutation made.
        """
        edits = self._edits(g)
        by_kind: dict[tuple[str, str], list] = {}
        for edit in edits:
            by_kind.setdefault((edit[1], edit[0]), []).append(edit)
        name = rng.choice([n for n in self.cells if any(c == n for c, _ in by_kind)])
        kinds = sorted(kind for c, kind in by_kind if c == name)
        kind = rng.choice(kinds)
        # uniform over the node and edge first, then over the replacement, as in the paper
        slots = sorted({(k, j) for _, _, k, j, _ in by_kind[(name, kind)]})
        k, j = rng.choice(slots)
        _, _, _, _, edge = rng.choice([e for e in by_kind[(name, kind)] if e[2] == k and e[3] == j])
        return self._apply(g, name, k, j, edge), kind

    # ---- params ------------------------------------------------------------------------------
    def param_choices(self) -> dict[str, list]:
        """Param name -> choices, for every param a genotype of this space can have."""
        choices: dict[str, list] = {}
        for name in self.cells:
            for k in range(self.nodes):
                state = self.inputs + k
                n_edges = self.edges_per_node or len(self.sources(k))
                for j in range(n_edges):
                    if self.edges_per_node is not None:
                        choices[f"{name}/node{state}/in{j}"] = self.sources(k)
                    choices[f"{name}/node{state}/op{j}"] = list(self.ops)
            n_states = self.inputs + self.nodes
            choices[f"{name}/concat"] = [",".join(map(str, c)) for r in range(1, n_states + 1)
                                         for c in itertools.combinations(range(n_states), r)]
        return choices

    def to_params(self, g: Genotype) -> dict[str, int | str]:
        """The genotype as a flat dict of categorical choices (its Optuna params).

        A cell's concat appears only where it differs from the space's rule (published cells).
        """
        params: dict[str, int | str] = {}
        for name, cell in g.cells:
            for k, node in enumerate(cell.nodes):
                state = cell.n_inputs + k
                for j, e in enumerate(node):
                    if self.edges_per_node is not None:
                        params[f"{name}/node{state}/in{j}"] = e.src
                    params[f"{name}/node{state}/op{j}"] = e.op
            if cell.concat != self.default_concat():
                if list(cell.concat) != sorted(cell.concat):
                    raise NasError(f"{name} cell: concat {list(cell.concat)} is not in ascending order; "
                                   "it has no params form")
                params[f"{name}/concat"] = ",".join(map(str, cell.concat))
        return params

    def from_params(self, params: dict[str, Any]) -> Genotype:
        def get(key: str) -> Any:
            if key not in params:
                raise NasError(f"param {key!r} is missing for space {self.name}")
            return params[key]

        cells = []
        for name in self.cells:
            nodes = []
            for k in range(self.nodes):
                state = self.inputs + k
                n_edges = self.edges_per_node or len(self.sources(k))
                edges = []
                for j in range(n_edges):
                    src = int(get(f"{name}/node{state}/in{j}")) if self.edges_per_node is not None else j
                    edges.append(Edge(src, str(get(f"{name}/node{state}/op{j}"))))
                nodes.append(tuple(edges))
            concat_text = params.get(f"{name}/concat")
            concat = tuple(int(s) for s in concat_text.split(",")) if concat_text else self.default_concat()
            cells.append((name, Cell(tuple(nodes), self.inputs, concat)))
        return self.validate(Genotype(tuple(cells)))


# ---- NAS-Bench-201 notation ------------------------------------------------------------------
def parse_nasbench201(text: str) -> Genotype:
    """``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: node j sums one edge from every earlier state."""
    nodes = []
    for node_text in text.strip().split("+"):
        parts = [p for p in node_text.strip().split("|") if p]
        if not parts:
            raise NasError(f"cannot read NAS-Bench-201 node {node_text!r}")
        edges = []
        for j, part in enumerate(parts):
            op, sep, src = part.rpartition("~")
            if not sep or not src.isdigit():
                raise NasError(f"cannot read NAS-Bench-201 edge {part!r}: expected op~state")
            if int(src) != j:
                raise NasError(f"NAS-Bench-201 edge {part!r} is out of order: expected source {j}")
            edges.append(Edge(int(src), op))
        nodes.append(tuple(edges))
    return Genotype((("normal", Cell(tuple(nodes), n_inputs=1)),))


def format_nasbench201(g: Genotype) -> str:
    return "+".join("|" + "|".join(str(e) for e in node) + "|" for node in g.normal.nodes)


# ---- loading -----------------------------------------------------------------------------------
def space_names() -> list[str]:
    return sorted({p.stem for p in SPACES_DIR.glob("*.yaml")})


def load_space(name_or_path: str) -> CellSpace | BlockSpace:
    """A space by name (``search_spaces/NAME.yaml``) or by the path of a YAML file."""
    path = Path(name_or_path)
    if not (name_or_path.endswith((".yaml", ".yml")) or path.is_file()):
        path = SPACES_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise NasError(f"unknown search space {name_or_path!r}{did_you_mean(name_or_path, space_names())} "
                           f"(known: {', '.join(space_names())})")
    if not path.is_file():
        raise NasError(f"search space file {str(path)!r} does not exist")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise NasError(f"{path}: not valid YAML ({first_line(e)})") from None
    return space_from_dict(spec, source=str(path))


def space_from_dict(spec: Any, source: str = "space") -> CellSpace | BlockSpace:
    """The space a YAML mapping declares: its ``kind`` (``cell``, the default, or ``blocks``) picks the class."""
    if not isinstance(spec, dict):
        raise NasError(f"{source}: a search space file must be a mapping of keys")
    kind = spec.get("kind", "cell")
    if kind == "blocks":
        return block_space_from_dict(spec, source)
    if kind != "cell":
        raise NasError(f"{source}: unknown kind {kind!r} (known: cell, blocks)")
    check_keys(spec, _KEYS, "key", source)
    for key in ("name", "ops"):
        if key not in spec:
            raise NasError(f"{source}: missing key {key!r}")
    ops = spec["ops"]
    if not isinstance(ops, list) or not ops or not all(isinstance(o, str) for o in ops):
        raise NasError(f"{source}: 'ops' must be a non-empty list of op names")
    edges = spec.get("edges_per_node", 2)
    if edges == "all":
        edges = None
    elif not isinstance(edges, int) or edges < 1:
        raise NasError(f"{source}: 'edges_per_node' must be a positive integer or 'all', got {edges!r}")
    for key in ("inputs", "nodes"):
        if not isinstance(spec.get(key, 1), int) or spec.get(key, 1) < 1:
            raise NasError(f"{source}: {key!r} must be a positive integer, got {spec[key]!r}")
    if spec.get("concat", "unused") not in ("unused", "nodes"):
        raise NasError(f"{source}: 'concat' must be 'unused' or 'nodes', got {spec['concat']!r}")
    if spec.get("notation", "default") not in ("default", "nasbench201"):
        raise NasError(f"{source}: 'notation' must be 'default' or 'nasbench201', got {spec['notation']!r}")
    for key in ("zero_op", "identity_op"):
        if spec.get(key) is not None and spec[key] not in ops:
            raise NasError(f"{source}: {key} {spec[key]!r} is not among the ops")
    cells = spec.get("cells", ["normal", "reduce"])
    if cells not in (["normal"], ["normal", "reduce"]):
        raise NasError(f"{source}: 'cells' must be [normal] or [normal, reduce], got {cells!r}")
    space = CellSpace(
        name=str(spec["name"]), ops=tuple(ops), cells=tuple(cells), inputs=spec.get("inputs", 2),
        nodes=spec.get("nodes", 5), edges_per_node=edges, distinct_inputs=bool(spec.get("distinct_inputs", False)),
        zero_op=spec.get("zero_op"), identity_op=spec.get("identity_op"), concat=spec.get("concat", "unused"),
        notation=spec.get("notation", "default"), description=str(spec.get("description", "")).strip(),
        network=dict(spec.get("network") or {}),
    )
    if space.distinct_inputs and edges is not None and edges > space.inputs:
        raise NasError(f"{source}: distinct_inputs needs at least {edges} inputs")
    return space

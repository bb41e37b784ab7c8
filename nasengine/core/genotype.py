"""The genotype: the one value every part of nasengine passes around.

A genotype is a set of named cells. A cell is a small DAG: its first ``n_inputs`` states are the
cell's inputs (with two inputs, state 0 is h_{i-2}, the previous-previous cell's output, and state 1
is h_{i-1}, the previous cell's output: the DARTS convention), then each node adds one state, the
sum of its edges, each edge an op applied to an earlier state. The cell's output concatenates the
states in ``concat``, or, when ``concat`` is None, every state that no node consumes (NASNet).

The text form reads like the cell, node by node::

    normal: sep_conv_3x3~1 + identity~0 | avg_pool_3x3~0 + identity~1 > 0,2,3 ; reduce: ...

where ``op~k`` is an edge from state k, ``|`` separates nodes, ``> a,b`` gives an explicit concat,
and ``normal(inputs=1):`` marks a cell with other than two inputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import networkx as nx

from nasengine.errors import NasError

_OP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CELL_HEAD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(\s*inputs\s*=\s*(\d+)\s*\))?\s*:(.*)$", re.S)


@dataclass(frozen=True)
class Edge:
    """An op applied to an earlier state of the cell."""

    src: int
    op: str

    def __str__(self) -> str:
        return f"{self.op}~{self.src}"


Node = tuple[Edge, ...]


@dataclass(frozen=True)
class Cell:
    """A cell DAG; see the module docstring for the state numbering."""

    nodes: tuple[Node, ...]
    n_inputs: int = 2
    concat: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(tuple(node) for node in self.nodes))
        if self.concat is not None:
            object.__setattr__(self, "concat", tuple(self.concat))
        if self.n_inputs < 1:
            raise NasError(f"a cell needs at least one input, got n_inputs={self.n_inputs}")
        if not self.nodes:
            raise NasError("a cell needs at least one node")
        for k, node in enumerate(self.nodes):
            state = self.n_inputs + k
            if not node:
                raise NasError(f"node {state} has no edges")
            for edge in node:
                if not isinstance(edge.src, int) or isinstance(edge.src, bool) or edge.src < 0:
                    raise NasError(f"node {state}: input index {edge.src!r} is not a state number")
                if edge.src >= state:
                    what = "itself (a cycle)" if edge.src == state else f"state {edge.src}, computed after it (a cycle)"
                    if edge.src >= self.n_states:
                        what = f"state {edge.src}, out of range (the cell has states 0..{self.n_states - 1})"
                    raise NasError(f"node {state} takes input from {what}")
                if not isinstance(edge.op, str) or not _OP_NAME.match(edge.op):
                    raise NasError(f"node {state}: {edge.op!r} is not an op name")
        if self.concat is not None:
            if not self.concat:
                raise NasError("an explicit concat needs at least one state")
            for s in self.concat:
                if not isinstance(s, int) or not 0 <= s < self.n_states:
                    raise NasError(f"concat state {s!r} is out of range (the cell has states 0..{self.n_states - 1})")
            if len(set(self.concat)) != len(self.concat):
                raise NasError(f"concat {list(self.concat)} repeats a state")

    @property
    def n_states(self) -> int:
        return self.n_inputs + len(self.nodes)

    def consumed(self) -> set[int]:
        return {edge.src for node in self.nodes for edge in node}

    def output_states(self) -> tuple[int, ...]:
        """The states concatenated as the cell's output."""
        if self.concat is not None:
            return self.concat
        used = self.consumed()
        return tuple(s for s in range(self.n_inputs, self.n_states) if s not in used)

    def __str__(self) -> str:
        text = " | ".join(" + ".join(str(e) for e in node) for node in self.nodes)
        if self.concat is not None:
            text += " > " + ",".join(str(s) for s in self.concat)
        return text

    @classmethod
    def parse(cls, text: str, n_inputs: int = 2) -> Cell:
        body, _, concat_text = text.partition(">")
        nodes = []
        for node_text in body.split("|"):
            edges = []
            for edge_text in node_text.split("+"):
                op, sep, src = edge_text.strip().rpartition("~")
                if not sep or not op or not src.strip().isdigit():
                    raise NasError(f"cannot read edge {edge_text.strip()!r}: expected op~state, e.g. sep_conv_3x3~1")
                edges.append(Edge(int(src), op.strip()))
            nodes.append(tuple(edges))
        concat = None
        if concat_text.strip():
            try:
                concat = tuple(int(s) for s in concat_text.split(","))
            except ValueError:
                raise NasError(f"cannot read concat {concat_text.strip()!r}: "
                               "expected state numbers, e.g. > 0,2,3") from None
        return cls(tuple(nodes), n_inputs, concat)

    def to_data(self) -> dict[str, Any]:
        return {
            "n_inputs": self.n_inputs,
            "nodes": [[[e.src, e.op] for e in node] for node in self.nodes],
            "concat": list(self.output_states()),
        }


@dataclass(frozen=True)
class Genotype:
    """Named cells: ``normal`` and optionally ``reduce`` (absent: the normal cell, strided, reduces)."""

    cells: tuple[tuple[str, Cell], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "cells", tuple((str(n), c) for n, c in self.cells))
        names = [name for name, _ in self.cells]
        if not names:
            raise NasError("a genotype needs at least one cell")
        if len(set(names)) != len(names):
            raise NasError(f"cell names repeat: {names}")

    @classmethod
    def of(cls, **cells: Cell) -> Genotype:
        return cls(tuple(cells.items()))

    def cell(self, name: str) -> Cell:
        for n, c in self.cells:
            if n == name:
                return c
        raise NasError(f"the genotype has no {name!r} cell (it has {', '.join(self.names)})")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.cells)

    @property
    def normal(self) -> Cell:
        return self.cell("normal")

    @property
    def reduce(self) -> Cell | None:
        return dict(self.cells).get("reduce")

    def ops(self) -> set[str]:
        return {e.op for _, c in self.cells for node in c.nodes for e in node}

    def __str__(self) -> str:
        parts = []
        for name, cell in self.cells:
            head = name if cell.n_inputs == 2 else f"{name}(inputs={cell.n_inputs})"
            parts.append(f"{head}: {cell}")
        return " ; ".join(parts)

    @classmethod
    def parse(cls, text: str) -> Genotype:
        if not isinstance(text, str) or not text.strip():
            raise NasError("empty genotype text")
        cells = []
        for part in text.split(";"):
            m = _CELL_HEAD.match(part)
            if not m:
                raise NasError(f"cannot read cell {part.strip()[:60]!r}: expected 'name: op~k + op~k | ...'")
            name, n_inputs, body = m.group(1), int(m.group(2) or 2), m.group(3)
            cells.append((name, Cell.parse(body, n_inputs)))
        return cls(tuple(cells))

    def to_data(self) -> dict[str, dict[str, Any]]:
        """Plain lists and ints: what networks and exported files consume."""
        return {name: cell.to_data() for name, cell in self.cells}

    def graph(self) -> nx.MultiDiGraph:
        """A DAG view: nodes ``(cell, state)`` and ``(cell, "out")``, one edge per op (``op`` attribute).

        A MultiDiGraph (a DiGraph subclass) because a node may apply two ops to the same state.
        """
        g = nx.MultiDiGraph()
        for name, cell in self.cells:
            for s in range(cell.n_states):
                kind = "input" if s < cell.n_inputs else "node"
                g.add_node((name, s), cell=name, state=s, kind=kind)
            g.add_node((name, "out"), cell=name, state="out", kind="output")
            for k, node in enumerate(cell.nodes):
                for e in node:
                    g.add_edge((name, e.src), (name, cell.n_inputs + k), op=e.op)
            for s in cell.output_states():
                g.add_edge((name, s), (name, "out"), op="concat")
        return g

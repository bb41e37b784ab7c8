"""The DARTS supernet of a cell space: every edge a mixed op over the space's ops, the architecture
weights (alphas) one row per edge, and the genotype derived from them.

Two cell kinds, chosen by the space's number of cell inputs:

- two inputs (``darts``): quark0/darts ``model_search.Network``. Stem 3x3 conv to ``3C`` + BN; ``layers``
  cells, reduction cells at ``layers // 3`` and ``2 * layers // 3`` (C doubles); each cell
  preprocesses h_{i-2} (FactorizedReduce after a reduction, else ReLU-1x1 conv-BN) and h_{i-1}
  (ReLU-1x1 conv-BN), every node reads every earlier state through a mixed op (edges into node k
  from states 0..k+1: 14 edges for 4 nodes), the output concatenates the nodes; global average
  pool, linear. Batch norms inside cells are non-affine, and every pooling op is followed by a
  non-affine batch norm, as in quark0/darts. The stem is the ``darts`` skeleton's CIFAR stem
  (``nasengine.models.network.DARTSNetwork``), which also serves 8x8 digits (8 -> 4 -> 2 at the
  reductions).
- one input (``nasbench201``): NAS-Bench-201's ``TinyNetworkDarts`` (Dong & Yang 2020): stem 3x3 conv to
  C + BN, three stages of N cells (C, 2C, 4C) joined by ResNet basic blocks, BN, ReLU, global average
  pool, linear; the cell has one mixed op from every earlier state to every node (6 edges for 3
  nodes) and outputs its last node; no batch norm after pooling (NAS-Bench-201's ``POOLING``).
  ``layers`` counts cells and the two blocks: N = (layers - 2) / 3.

Alphas start at ``1e-3 * N(0, 1)`` (quark0/darts). ``forward`` computes the mixed ops edge by edge
(``fused=False``) or grouped by the state they read (``fused=True``, the default; see
:mod:`nasengine.oneshot.mixed_ops`): the same maths on the same parameters.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nasengine.core.genotype import Cell, Edge, Genotype
from nasengine.errors import NasError
from nasengine.models.network import ResNetBasicBlock
from nasengine.models.ops import FactorizedReduce, ReLUConvBN
from nasengine.oneshot.mixed_ops import MixedEdges, stacked

__all__ = ["Supernet", "SearchCell", "derive", "edge_sources"]


def edge_sources(n_inputs: int, n_nodes: int) -> list[tuple[int, int]]:
    """``(node index, source state)`` of every edge of a mixed-op cell, in the alphas' row order:
    node by node, each reading every earlier state (``nasengine.viz.plots.darts_edge_names``)."""
    return [(k, s) for k in range(n_nodes) for s in range(n_inputs + k)]


class SearchCell(nn.Module):
    """A cell whose every node reads every earlier state through a mixed op (see the module docstring).

    ``C_prev_prev`` is None for one-input cells. States are processed in order; the mixed ops reading a
    state run together (one :class:`MixedEdges` per state) as soon as it is computed.
    """

    def __init__(self, ops: tuple[str, ...], n_inputs: int, n_nodes: int, C_prev_prev: int | None, C_prev: int,
                 C: int, reduction: bool = False, reduction_prev: bool = False):
        super().__init__()
        self.n_inputs, self.n_nodes, self.reduction = n_inputs, n_nodes, reduction
        if n_inputs == 2:
            self.preprocess0 = (FactorizedReduce(C_prev_prev, C, affine=False) if reduction_prev
                                else ReLUConvBN(C_prev_prev, C, 1, affine=False))
            self.preprocess1 = ReLUConvBN(C_prev, C, 1, affine=False)
            C_in = C
        elif n_inputs == 1:
            if reduction:
                raise NasError("one-input supernet cells do not reduce (ResNet blocks do)")
            C_in = C_prev
        else:
            raise NasError(f"supernet cells take one or two inputs, not {n_inputs}")
        edges = edge_sources(n_inputs, n_nodes)
        self.groups = nn.ModuleList()
        self._targets: list[list[int]] = []
        for s in range(n_inputs + n_nodes - 1):
            rows = [i for i, (_, src) in enumerate(edges) if src == s]
            self._targets.append([edges[i][0] for i in rows])
            stride = 2 if reduction and s < n_inputs else 1
            group = MixedEdges(ops, len(rows), C_in if s < n_inputs else C, C, stride, pool_bn=n_inputs == 2)
            group.register_buffer("rows", torch.tensor(rows), persistent=False)  # its rows of the alphas
            self.groups.append(group)
        self.out_channels = C * n_nodes if n_inputs == 2 else C

    def forward(self, s0: torch.Tensor | None, s1: torch.Tensor, weights: torch.Tensor, fused: bool = True):
        if self.n_inputs == 1:
            states = [s1]
        elif fused:
            states = [stacked([self.preprocess0], s0)[:, 0], stacked([self.preprocess1], s1)[:, 0]]
        else:
            states = [self.preprocess0(s0), self.preprocess1(s1)]
        pending: list[list[torch.Tensor]] = [[] for _ in range(self.n_nodes)]
        for s, group in enumerate(self.groups):
            if s >= self.n_inputs:
                states.append(sum(pending[s - self.n_inputs]))
            w = weights.index_select(0, group.rows)
            if fused:
                outs = group.fused(states[s], w).unbind(1)
            else:
                outs = group.plain(states[s], w)
            for k, y in zip(self._targets[s], outs):
                pending[k].append(y)
        states.append(sum(pending[-1]))
        if self.n_inputs == 1:
            return states[-1]
        return torch.cat(states[self.n_inputs:], dim=1)


def check_space(space) -> None:
    """NasError when no DARTS supernet can be made over ``space`` (checked before a search starts, too)."""
    if space.edges_per_node is not None and space.zero_op is None:
        raise NasError(f"space {space.name}: a DARTS supernet needs a zero op ('none') in the space")


class Supernet(nn.Module):
    """The supernet of a cell space (``nasengine.spaces.cell.CellSpace``) for images of
    ``in_channels`` x ``image_size`` x ``image_size`` (see the module docstring)."""

    def __init__(self, space, num_classes: int = 10, in_channels: int = 3, C: int = 16, layers: int = 8,
                 stem_multiplier: int = 3):
        super().__init__()
        check_space(space)
        self.space_name, self.ops, self.cell_names = space.name, tuple(space.ops), tuple(space.cells)
        self.n_inputs, self.n_nodes = space.inputs, space.nodes
        n_edges = len(edge_sources(space.inputs, space.nodes))
        self.alphas = nn.ParameterDict({name: nn.Parameter(1e-3 * torch.randn(n_edges, len(self.ops)))
                                        for name in self.cell_names})
        self.cells = nn.ModuleList()
        if space.inputs == 2:
            C_cur = stem_multiplier * C
            self.stem = nn.Sequential(nn.Conv2d(in_channels, C_cur, 3, 1, 1, bias=False), nn.BatchNorm2d(C_cur))
            C_pp, C_p, C_cur = C_cur, C_cur, C
            reduction_prev = False
            for i in range(layers):
                reduction = i in (layers // 3, 2 * layers // 3)
                if reduction:
                    C_cur *= 2
                cell = SearchCell(self.ops, 2, space.nodes, C_pp, C_p, C_cur, reduction, reduction_prev)
                self.cells.append(cell)
                reduction_prev = reduction
                C_pp, C_p = C_p, cell.out_channels
            self.lastact = nn.Identity()
        else:
            if layers < 5 or (layers - 2) % 3:
                raise NasError(f"the {space.name} supernet has 3N cells and 2 ResNet blocks: layers must be "
                               f"5, 8, 11..., got {layers}")
            N = (layers - 2) // 3
            self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, 1, 1, bias=False), nn.BatchNorm2d(C))
            C_p = C
            for stage in range(3):
                if stage:
                    block = ResNetBasicBlock(C_p, C * 2 ** stage, 2)
                    self.cells.append(block)
                    C_p = block.out_channels
                for _ in range(N):
                    cell = SearchCell(self.ops, 1, space.nodes, None, C_p, C * 2 ** stage)
                    self.cells.append(cell)
                    C_p = cell.out_channels
            self.lastact = nn.Sequential(nn.BatchNorm2d(C_p), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(C_p, num_classes)
        self.fused = True

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas.values())

    def weights(self) -> list[nn.Parameter]:
        """Every parameter but the alphas."""
        alphas = {id(a) for a in self.alphas.values()}
        return [p for p in self.parameters() if id(p) not in alphas]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = {name: F.softmax(a, dim=-1) for name, a in self.alphas.items()}
        normal = w["normal"]
        reduce = w.get("reduce", normal)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            if isinstance(cell, SearchCell):
                if cell.n_inputs == 2:
                    s0, s1 = s1, cell(s0, s1, reduce if cell.reduction else normal, self.fused)
                else:
                    s1 = cell(None, s1, normal, self.fused)
            else:
                s1 = cell(s1)
        return self.classifier(self.lastact(s1).mean((2, 3)))

    def softmax_alphas(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {name: F.softmax(a.detach().float(), dim=-1).cpu() for name, a in self.alphas.items()}

    def genotype(self, space) -> Genotype:
        return derive(space, self.softmax_alphas())


def derive(space, weights: dict[str, torch.Tensor]) -> Genotype:
    """The discrete genotype of softmax alphas ``weights`` (cell name -> edges x ops).

    Spaces with ``edges_per_node`` k (DARTS): each node keeps the k incoming edges whose strongest
    op other than the zero op is strongest, with that op (quark0/darts ``genotype()``; ties go to the
    earlier edge and op). Spaces with an edge from every state (NAS-Bench-201): each edge its
    strongest op, the zero op included.
    """
    zero = space.ops.index(space.zero_op) if space.zero_op in space.ops else None
    edges = edge_sources(space.inputs, space.nodes)
    cells = []
    for name in space.cells:
        W = torch.as_tensor(weights[name], dtype=torch.float64)
        if W.shape != (len(edges), len(space.ops)):
            raise NasError(f"{name} alphas have shape {tuple(W.shape)}; the {space.name} supernet has "
                           f"{len(edges)} edges x {len(space.ops)} ops")
        nodes = []
        for k in range(space.nodes):
            rows = [i for i, (node, _) in enumerate(edges) if node == k]
            if space.edges_per_node is None:
                nodes.append(tuple(Edge(edges[i][1], space.ops[int(torch.argmax(W[i]))]) for i in rows))
                continue
            scored = []
            for i in rows:
                w = W[i].clone()
                if zero is not None:
                    w[zero] = -1.0
                best = int(torch.argmax(w))
                scored.append((-float(w[best]), edges[i][1], space.ops[best]))
            chosen = sorted(scored)[:space.edges_per_node]
            nodes.append(tuple(Edge(src, op) for _, src, op in sorted(chosen, key=lambda t: t[1])))
        cells.append((name, Cell(tuple(nodes), space.inputs, space.default_concat())))
    return space.validate(Genotype(tuple(cells)))

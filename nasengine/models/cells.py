"""Cells built from plain cell data: ``{"n_inputs": 2, "nodes": [[[src, op], ...], ...], "concat": [...]}``.

Imports only torch, the standard library and ``nasengine.models.ops`` (``nasengine.export`` copies this file
verbatim into standalone model files, dropping the nasengine import).

States are numbered as in ``nasengine.core.genotype``: 0 = h_{i-2}, 1 = h_{i-1} (one-input cells: 0 = the
input), then one state per node; a node is the sum of its edges.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from nasengine.models.ops import OPS, ConvBN, FactorizedReduce, ReLUConvBN, drop_path, drops_path

__all__ = ["Cell", "NB201Cell", "check_cell_data"]


def check_cell_data(cell: Any, n_inputs: tuple[int, ...] = (1, 2)) -> tuple[int, list, list]:
    """``(n_inputs, nodes, concat)`` of plain cell data; ValueError if it cannot be built."""
    try:
        n_in, nodes, concat = int(cell["n_inputs"]), cell["nodes"], list(cell["concat"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("cell data needs 'n_inputs', 'nodes' and 'concat' (Cell.to_data())") from None
    if n_in not in n_inputs:
        raise ValueError(f"cells with {n_in} inputs are not supported here (supported: {n_inputs})")
    if not nodes:
        raise ValueError("a cell needs at least one node")
    for k, node in enumerate(nodes):
        if not node:
            raise ValueError(f"node {n_in + k} has no edges")
        for src, op in node:
            if not 0 <= int(src) < n_in + k:
                raise ValueError(f"node {n_in + k} reads state {src}, which is not computed before it")
            if op not in OPS:
                raise ValueError(f"unknown op {op!r} (known: {', '.join(sorted(OPS))})")
    if not concat or any(not 0 <= int(s) < n_in + len(nodes) for s in concat):
        raise ValueError(f"concat {concat} is empty or out of range")
    return n_in, [[(int(src), str(op)) for src, op in node] for node in nodes], [int(s) for s in concat]


class _Edges(nn.Module):
    """The nodes of a cell: edges in order, with precomputed plans so forward is one flat loop."""

    def _compile(self, nodes, C_states: list[int], C: int, stride_of) -> None:
        self.ops = nn.ModuleList()
        plan = []
        for node in nodes:
            for j, (src, op_name) in enumerate(node):
                op = OPS[op_name](C_states[src], C, stride_of(src))
                self.ops.append(op)
                plan.append((src, drops_path(op_name, op), j == len(node) - 1))
            C_states.append(C)
        self._plan = tuple(plan)

    def _run(self, states: list, drop_prob: float) -> list:
        drop = drop_prob > 0.0 and self.training
        acc = None
        for op, (src, droppable, last) in zip(self.ops, self._plan):
            h = op(states[src])
            if drop and droppable:
                h = drop_path(h, drop_prob)
            acc = h if acc is None else acc + h
            if last:
                states.append(acc)
                acc = None
        return states


class Cell(_Edges):
    """A NASNet / DARTS style cell reading h_{i-2} and h_{i-1} (or only h_{i-1} for one-input cells).

    Inputs are brought to ``C`` channels first. h_{i-1}: ReLU, 1x1 conv, BN. h_{i-2}, with
    ``preprocess="always"`` (DARTS): FactorizedReduce when ``reduction_prev`` else ReLU, 1x1 conv, BN.
    With ``preprocess="as_needed"`` (TF-slim ``_reduce_prev_layer``): used raw when ``C_prev_prev`` is
    None (the first cell: h_{i-2} is then h_{i-1} itself, unprocessed, with ``C_prev`` channels), ReLU +
    factorized reduction when ``reduction_prev`` (its size is twice h_{i-1}'s), ReLU, 1x1 conv, BN when
    only its channels differ from ``C``, else as is.

    In a reduction cell the ops reading an input state have stride 2. The output concatenates the
    ``concat`` states; an input state there is first brought to the nodes' shape as slim's
    ``_combine_unused_states`` does: factorized reduction (no ReLU) in a reduction cell, 1x1 conv + BN
    when only its channels differ. Output channels: ``C * len(concat)`` (``out_channels``).
    Drop path (training only) applies to every edge but identities and zeros (``ops.drops_path``).
    """

    def __init__(self, cell: dict, C_prev_prev: int | None, C_prev: int, C: int, reduction: bool = False,
                 reduction_prev: bool = False, preprocess: str = "always"):
        super().__init__()
        n_in, nodes, concat = check_cell_data(cell)
        if preprocess not in ("always", "as_needed"):
            raise ValueError(f"preprocess must be 'always' or 'as_needed', got {preprocess!r}")
        self.n_inputs, self.reduction, self.concat = n_in, bool(reduction), tuple(concat)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1)
        C_states = [C]
        if n_in == 2:
            if preprocess == "always":
                if C_prev_prev is None:
                    raise ValueError("preprocess='always' needs C_prev_prev")
                self.preprocess0 = FactorizedReduce(C_prev_prev, C) if reduction_prev else ReLUConvBN(C_prev_prev, C, 1)
                C0 = C
            elif C_prev_prev is None:
                self.preprocess0, C0 = nn.Identity(), C_prev
            elif reduction_prev:
                self.preprocess0, C0 = FactorizedReduce(C_prev_prev, C, relu=True), C
            elif C_prev_prev != C:
                self.preprocess0, C0 = ReLUConvBN(C_prev_prev, C, 1), C
            else:
                self.preprocess0, C0 = nn.Identity(), C
            C_states = [C0, C]
        self._compile(nodes, C_states, C, lambda src: 2 if reduction and src < n_in else 1)
        self.combine = nn.ModuleList()
        for s in concat:
            if s < n_in and reduction:
                self.combine.append(FactorizedReduce(C_states[s], C, relu=False))
            elif C_states[s] != C:
                self.combine.append(ConvBN(C_states[s], C))
            else:
                self.combine.append(nn.Identity())
        self.out_channels = C * len(concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        if self.n_inputs == 2:
            states = [self.preprocess0(s0), self.preprocess1(s1)]
        else:
            states = [self.preprocess1(s1)]
        states = self._run(states, drop_prob)
        return torch.cat([f(states[s]) for s, f in zip(self.concat, self.combine)], dim=1)


class NB201Cell(_Edges):
    """The NAS-Bench-201 cell (``InferCell``): one input, no preprocessing; edges reading the input map
    ``C_in`` -> ``C_out`` (with ``stride``), the others ``C_out`` -> ``C_out``; the output is the
    concat state (NAS-Bench-201: the last node)."""

    def __init__(self, cell: dict, C_in: int, C_out: int, stride: int = 1):
        super().__init__()
        _, nodes, concat = check_cell_data(cell, n_inputs=(1,))
        if stride != 1 and 0 in concat:
            raise ValueError("a strided NAS-Bench-201 cell cannot concatenate its input")
        self.concat = tuple(concat)
        C_states = [C_in]
        self._compile(nodes, C_states, C_out, lambda src: stride if src == 0 else 1)
        self.out_channels = sum(C_states[s] for s in concat)

    def forward(self, x: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = self._run([x], drop_prob)
        if len(self.concat) == 1:
            return states[self.concat[0]]
        return torch.cat([states[s] for s in self.concat], dim=1)

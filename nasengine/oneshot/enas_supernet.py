"""ENAS's weight-sharing network: one module per (cell, node, input state, op) of a two-input cell space,
run along the path of the genotype given to ``forward`` only (Pham et al. 2018, section 2.4).

The macro network is the one the derived genotype is trained in, the ``darts`` skeleton
(``nasengine.models.network.DARTSNetwork``): a 3x3 stem to ``3C``, ``layers`` cells with reductions at
``layers//3`` and ``2*layers//3`` (C doubles), each cell reading the two previous outputs through a
ReLU-1x1 conv-BN (a factorized reduction after a reduction cell), global average pooling, a linear
classifier. A cell's output concatenates its ``concat`` states, so its width depends on the genotype;
the layers that read it (the next cells' preprocessing, the classifier) hold one weight slice per
state of the cell and use the slices of the states concatenated, as ENAS's ``final_conv`` gathers
its weight rows by the indices of the unused states. A 1x1 conv over a concatenation is the sum of
the slices' convs, so each sampled path computes exactly the discrete network of its genotype.

Batch norms use the batch's statistics in training and evaluation alike (no running averages): the
statistics of one path are not those of another.

One addition: the classifier reads the pooled features batch-normalised (no affine, batch statistics).
The darts skeleton feeds the last cell's concatenation to its linear classifier as it is, and with
shared weights that breaks: a cell whose nodes sum chains of identities and poolings outputs values
several times larger than one of convolutions (measured on digits: up to 32 against 6), the shared
classifier grows to fit one and blows up on the other (loss 20 at step 25 of 10 alternating
genotypes; random children did no better than chance after 4 epochs). Per channel the normalisation
is an affine map the discrete network's linear classifier can express, so each path is still the
discrete network of its genotype up to its classifier's weights (``features`` is that network's last
cell output exactly). With it, random children reach 43% mean validation accuracy after 10 epochs
of digits instead of 33% (3 layers, batch 32, lr 0.05).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nasengine.core.genotype import Cell, Genotype
from nasengine.models.ops import OPS, FactorizedReduce

# a cell's output as the next layers see it: its states and the states it concatenates
Output = tuple[list[torch.Tensor], tuple[int, ...]]


def _gathered(weight: torch.Tensor, concat: tuple[int, ...]) -> torch.Tensor:
    """(states, C_out, C_in) -> the (C_out, len(concat) * C_in, 1, 1) kernel of the concatenation."""
    w = weight[list(concat)]
    return w.permute(1, 0, 2).reshape(w.shape[1], -1, 1, 1)


class GatheredPreprocess(nn.Module):
    """ReLU, 1x1 conv (or, ``reduce``, a factorized reduction: two stride-2 1x1 convs, the second on
    the input shifted by one pixel), BN, over the concatenation of a cell's chosen states."""

    def __init__(self, n_states: int, C_in: int, C_out: int, reduce: bool = False):
        super().__init__()
        self.reduce = reduce
        widths = (C_out // 2, C_out - C_out // 2) if reduce else (C_out,)
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(n_states, w, C_in)) for w in widths)
        for w in self.weights:
            nn.init.kaiming_normal_(w.view(n_states * w.shape[1], C_in, 1, 1), mode="fan_out")
        self.bn = nn.BatchNorm2d(C_out, track_running_stats=False)

    def forward(self, out: Output) -> torch.Tensor:
        states, concat = out
        x = F.relu(torch.cat([states[s] for s in concat], dim=1))
        if not self.reduce:
            return self.bn(F.conv2d(x, _gathered(self.weights[0], concat)))
        shifted = x[:, :, 1:, 1:]
        if x.shape[2] % 2 or x.shape[3] % 2:
            shifted = F.pad(shifted, (0, 1, 0, 1))
        y = torch.cat([F.conv2d(x, _gathered(self.weights[0], concat), stride=2),
                       F.conv2d(shifted, _gathered(self.weights[1], concat), stride=2)], dim=1)
        return self.bn(y)


class SharedCell(nn.Module):
    """Every op on every edge a node may have: ``edges[k][src][op]`` (ops in ``ops`` order)."""

    def __init__(self, ops: tuple[str, ...], nodes: int, prev_prev: tuple[int, int], prev: tuple[int, int],
                 C: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.op_index = {op: i for i, op in enumerate(ops)}
        self.reduction = reduction
        self.preprocess0 = GatheredPreprocess(*prev_prev, C, reduce=reduction_prev)
        self.preprocess1 = GatheredPreprocess(*prev, C)
        self.edges = nn.ModuleList(
            nn.ModuleList(nn.ModuleList(OPS[op](C, C, 2 if reduction and src < 2 else 1) for op in ops)
                          for src in range(2 + k))
            for k in range(nodes))
        # an input state in a reduction cell's output is first halved, as the darts skeleton does
        self.combine = nn.ModuleList(FactorizedReduce(C, C, relu=False) for _ in range(2)) if reduction else None
        self.n_states = 2 + nodes

    def forward(self, prev_prev: Output, prev: Output, cell: Cell) -> Output:
        states = [self.preprocess0(prev_prev), self.preprocess1(prev)]
        for k, node in enumerate(cell.nodes):
            total = None
            for e in node:
                h = self.edges[k][e.src][self.op_index[e.op]](states[e.src])
                total = h if total is None else total + h
            states.append(total)
        concat = cell.output_states()
        if self.combine is not None:
            for s in concat:
                if s < 2:
                    states[s] = self.combine[s](states[s])
        return states, concat


class EnasSupernet(nn.Module):
    """The shared weights of every child of a two-input cell space in the darts skeleton."""

    def __init__(self, ops: tuple[str, ...], nodes: int, num_classes: int, in_channels: int, C: int = 16,
                 layers: int = 6, stem_multiplier: int = 3):
        super().__init__()
        C_stem = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C_stem, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(C_stem, track_running_stats=False))
        self.cells = nn.ModuleList()
        reductions = (layers // 3, 2 * layers // 3)
        prev_prev = prev = (1, C_stem)  # (states, channels per state) of the outputs read
        C_curr, reduction_prev = C, False
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                C_curr *= 2
            cell = SharedCell(ops, nodes, prev_prev, prev, C_curr, reduction, reduction_prev)
            self.cells.append(cell)
            prev_prev, prev = prev, (cell.n_states, C_curr)
            reduction_prev = reduction
        self.classifier = nn.Parameter(torch.empty(prev[0], num_classes, prev[1]))
        nn.init.normal_(self.classifier, std=0.01)
        self.bias = nn.Parameter(torch.zeros(num_classes))
        for m in self.modules():  # the ops' batch norms too
            if isinstance(m, nn.BatchNorm2d):
                m.track_running_stats = False
                m.running_mean = m.running_var = m.num_batches_tracked = None

    def features(self, x: torch.Tensor, genotype: Genotype) -> Output:
        """The last cell's states and concat: the discrete network's last cell output, concatenated."""
        stem: Output = ([self.stem(x)], (0,))
        s0 = s1 = stem
        reduce = genotype.reduce or genotype.normal  # a one-cell space reduces with its normal cell
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, reduce if cell.reduction else genotype.normal)
        return s1

    def forward(self, x: torch.Tensor, genotype: Genotype) -> torch.Tensor:
        states, concat = self.features(x, genotype)
        pooled = torch.cat([states[s].mean((2, 3)) for s in concat], dim=1)
        pooled = F.batch_norm(pooled, None, None, training=True)
        w = self.classifier[list(concat)].permute(1, 0, 2).reshape(self.classifier.shape[1], -1)
        return F.linear(pooled, w, self.bias)

"""Macro networks around cells, and the registry of every skeleton: ``build_network(genotype_data,
skeleton, num_classes, in_channels, image_size, **macro)``.

Imports only torch, the standard library and ``nasengine.models.ops`` / ``cells`` / ``blocks``
(``nasengine.export`` copies this file verbatim into standalone model files). For the cell skeletons
``genotype_data`` is ``Genotype.to_data()``: ``{"normal": cell_data, "reduce": cell_data}`` (``reduce``
optional); for ``mobile``, ``Blocks.to_data()``.

Skeletons (``SKELETONS``):

- ``nasnet`` (:class:`NASNetNetwork`): TF-slim ``_build_nasnet_base`` / ``_build_pnasnet_base`` and the
  AmoebaNet TPU ``_build_network_base``. Three stacks of ``N`` normal cells; with a reduce cell, a
  reduction cell sits before the first cell of stacks 2 and 3 (3N + 2 cells); without one (PNASNet)
  that first cell itself has stride 2 (3N cells). A stack's cells have ``F * 2**stack`` filters (slim's
  filter scaling). Every cell reads the two previous outputs with slim's as-needed preprocessing.
  ``stem="cifar"``: 3x3 conv to ``stem_multiplier * F`` (default 3F) + BN, no downsampling (also fits
  8x8 digits). ``stem="imagenet"``: 3x3 stride-2 VALID conv to ``32 * stem_multiplier`` (default 32)
  + BN, then two stride-2 stem cells (the reduce cell, else the normal cell) with F/4 and F/2 filters.
  Head: ReLU, global average pool, dropout, linear. Aux head after the last cell before the second
  reduction, on ReLU of its output: 5x5 avg pool stride 3, 1x1 conv to 128, BN, ReLU, conv over the
  remaining map to 768, BN, ReLU, linear (widths times ``aux_scaling``; AmoebaNet uses 0.4).
- ``darts`` (:class:`DARTSNetwork`): quark0/darts ``NetworkCIFAR`` / ``NetworkImageNet``. ``layers`` cells,
  reduction cells at ``layers//3`` and ``2*layers//3`` (C doubles), DARTS preprocessing (always a 1x1
  conv, FactorizedReduce after a reduction). ``stem="cifar"``: 3x3 conv to ``stem_multiplier*C`` + BN.
  ``stem="imagenet"``: stem0 = two stride-2 3x3 convs (C/2, C), stem1 = ReLU, stride-2 3x3 conv.
  Head: global average pool, dropout (default 0), linear. Aux head after cell ``2*layers//3``
  (``AuxiliaryHeadCIFAR``; ImageNet: pool stride 2, no BN after the 768 conv).
- ``mobile`` (:class:`nasengine.models.blocks.MobileNetwork`): MnasNet / MobileNetV2 / EfficientNet
  networks of blocks for a block genotype (``Blocks.to_data()``); see ``models/blocks.py``.
- ``nb201`` (:class:`NB201Network`): NAS-Bench-201 ``TinyNetwork``: 3x3 conv to C + BN, three stacks of
  N cells with C, 2C, 4C channels joined by ResNet basic blocks (stride 2), BN, ReLU, global average
  pool, linear.

Every cell network has a ``drop_path_prob`` attribute (the trainer sets it; a mobile network has its
fixed ``drop_connect`` setting instead). In training mode with ``aux``,
``forward`` returns ``(logits, aux_logits)``; otherwise the logits. The aux head is the ``aux_head``
submodule (papers count parameters without it).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn as nn

from nasengine.models.blocks import MobileNetwork
from nasengine.models.cells import Cell, NB201Cell
from nasengine.models.ops import ReLUConvBN

__all__ = ["build_network", "SKELETONS", "NASNetNetwork", "DARTSNetwork", "NB201Network", "AuxHead",
           "ResNetBasicBlock", "skeleton_settings"]


def _half(size: int) -> int:
    """Spatial size after a stride-2 op with 'same' padding."""
    return (size + 1) // 2


def _genotype_cells(genotype: Any) -> tuple[dict, dict | None]:
    if hasattr(genotype, "to_data"):  # a nasengine Genotype
        genotype = genotype.to_data()
    if not isinstance(genotype, dict) or "normal" not in genotype:
        raise ValueError("genotype data needs a 'normal' cell (Genotype.to_data())")
    unknown = set(genotype) - {"normal", "reduce"}
    if unknown:
        raise ValueError(f"unknown cell name(s) {sorted(unknown)}: networks use 'normal' and 'reduce'")
    return genotype["normal"], genotype.get("reduce")


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


class AuxHead(nn.Module):
    """Auxiliary classifier: ReLU, 5x5 average pool (``pool_stride``), 1x1 conv, BN, ReLU, conv over the
    whole remaining map, [BN,] ReLU, linear. Maps smaller than 5x5 are pooled whole."""

    def __init__(self, C_in: int, size: int, num_classes: int, pool_stride: int = 3, width: int = 128,
                 hidden: int = 768, bn_hidden: bool = True):
        super().__init__()
        pool = min(5, size)
        out = (size - pool) // pool_stride + 1
        layers = [nn.ReLU(inplace=False), nn.AvgPool2d(pool, pool_stride, 0, count_include_pad=False),
                  nn.Conv2d(C_in, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                  nn.Conv2d(width, hidden, out, bias=False)]
        if bn_hidden:
            layers.append(nn.BatchNorm2d(hidden))
        layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class NASNetNetwork(nn.Module):
    """NASNet / AmoebaNet / PNASNet stacking (see the module docstring)."""

    def __init__(self, genotype: dict, num_classes: int = 10, in_channels: int = 3, image_size: int = 32,
                 N: int = 6, F: int = 32, stem: str = "cifar", stem_multiplier: float | None = None,
                 aux: bool = False, aux_scaling: float = 1.0, dropout: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        normal, reduce = _genotype_cells(genotype)
        _check_positive(num_classes=num_classes, in_channels=in_channels, image_size=image_size, N=N, F=F)
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
        self.drop_path_prob = float(drop_path)
        self.cells = nn.ModuleList()
        size = image_size
        if stem == "cifar":
            C_stem = int(F * (3.0 if stem_multiplier is None else stem_multiplier))
            self.stem = nn.Sequential(nn.Conv2d(in_channels, C_stem, 3, 1, 1, bias=False), nn.BatchNorm2d(C_stem))
        else:
            C_stem = int(32 * (1.0 if stem_multiplier is None else stem_multiplier))
            self.stem = nn.Sequential(nn.Conv2d(in_channels, C_stem, 3, 2, 0, bias=False), nn.BatchNorm2d(C_stem))
            if image_size < 3:
                raise ValueError(f"the imagenet stem needs images of at least 3x3, got {image_size}")
            size = (image_size - 3) // 2 + 1
        # (channels, size) of every output so far; None: no h_{i-2} yet (slim's prev_layer=None)
        outputs: list[tuple[int, int] | None] = [None, (C_stem, size)]

        def add(cell: dict, filters: int, reduction: bool) -> None:
            (C_prev, size_prev), before = outputs[-1], outputs[-2]
            C_prev_prev, reduction_prev = (None, False) if before is None else (before[0], before[1] != size_prev)
            module = Cell(cell, C_prev_prev, C_prev, filters, reduction, reduction_prev, preprocess="as_needed")
            self.cells.append(module)
            outputs.append((module.out_channels, _half(size_prev) if reduction else size_prev))

        if stem == "imagenet":
            for scaling in (0.25, 0.5):
                add(reduce if reduce is not None else normal, int(F * scaling), True)
        self._aux_index = -1
        aux_at = None
        scaling = 1
        for i in range(3 * N):
            strided = i in (N, 2 * N)
            if strided:
                scaling *= 2
                if reduce is not None:
                    add(reduce, F * scaling, True)
            add(normal, F * scaling, strided and reduce is None)
            if i == 2 * N - 1:
                self._aux_index, aux_at = len(self.cells) - 1, outputs[-1]
        self.aux_head = None
        if aux:
            self.aux_head = AuxHead(aux_at[0], aux_at[1], num_classes, 3, int(128 * aux_scaling),
                                    int(768 * aux_scaling))
        else:
            self._aux_index = -1
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(outputs[-1][0], num_classes)

    def forward(self, x: torch.Tensor):
        drop_prob = self.drop_path_prob if self.training else 0.0
        s0 = s1 = self.stem(x)
        aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, drop_prob)
            if i == self._aux_index and self.training:
                aux_logits = self.aux_head(torch.relu(s1))
        logits = self.classifier(self.dropout(torch.relu(s1).mean((2, 3))))
        return logits if aux_logits is None else (logits, aux_logits)


class DARTSNetwork(nn.Module):
    """DARTS NetworkCIFAR / NetworkImageNet (see the module docstring)."""

    def __init__(self, genotype: dict, num_classes: int = 10, in_channels: int = 3, image_size: int = 32,
                 layers: int = 8, C: int = 16, stem: str = "cifar", stem_multiplier: int = 3, aux: bool = False,
                 dropout: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        normal, reduce = _genotype_cells(genotype)
        _check_positive(num_classes=num_classes, in_channels=in_channels, image_size=image_size, layers=layers,
                        C=C, stem_multiplier=stem_multiplier)
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
        self.drop_path_prob = float(drop_path)
        if stem == "cifar":
            C_stem = stem_multiplier * C
            self.stem = nn.Sequential(nn.Conv2d(in_channels, C_stem, 3, 1, 1, bias=False), nn.BatchNorm2d(C_stem))
            self.stem1 = None
            C_prev_prev = C_prev = C_stem
            reduction_prev, size = False, image_size
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, C // 2, 3, 2, 1, bias=False), nn.BatchNorm2d(C // 2), nn.ReLU(inplace=True),
                nn.Conv2d(C // 2, C, 3, 2, 1, bias=False), nn.BatchNorm2d(C))
            self.stem1 = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(C, C, 3, 2, 1, bias=False), nn.BatchNorm2d(C))
            C_prev_prev = C_prev = C
            reduction_prev, size = True, _half(_half(_half(image_size)))
        self.cells = nn.ModuleList()
        C_curr = C
        reductions = (layers // 3, 2 * layers // 3)
        aux_at = None
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                C_curr *= 2
                size = _half(size)
            cell = reduce if reduction and reduce is not None else normal
            module = Cell(cell, C_prev_prev, C_prev, C_curr, reduction, reduction_prev, preprocess="always")
            self.cells.append(module)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, module.out_channels
            if i == reductions[1]:
                aux_at = (C_prev, size)
        self._aux_index = reductions[1] if aux else -1
        self.aux_head = None
        if aux:
            imagenet = stem == "imagenet"
            self.aux_head = AuxHead(aux_at[0], aux_at[1], num_classes, 2 if imagenet else 3, bn_hidden=not imagenet)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward(self, x: torch.Tensor):
        drop_prob = self.drop_path_prob if self.training else 0.0
        s0 = self.stem(x)
        s1 = s0 if self.stem1 is None else self.stem1(s0)
        aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, drop_prob)
            if i == self._aux_index and self.training:
                aux_logits = self.aux_head(s1)
        logits = self.classifier(self.dropout(s1.mean((2, 3))))
        return logits if aux_logits is None else (logits, aux_logits)


class ResNetBasicBlock(nn.Module):
    """NAS-Bench-201's reduction block: ReLUConvBN 3x3 (stride), ReLUConvBN 3x3, plus a shortcut
    (2x2 average pool + 1x1 conv when strided, ReLUConvBN 1x1 when only the channels differ)."""

    def __init__(self, C_in: int, C_out: int, stride: int = 2):
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1)
        if stride == 2:
            self.downsample = nn.Sequential(nn.AvgPool2d(2, 2, 0), nn.Conv2d(C_in, C_out, 1, bias=False))
        elif C_in != C_out:
            self.downsample = ReLUConvBN(C_in, C_out, 1)
        else:
            self.downsample = nn.Identity()
        self.out_channels = C_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """NAS-Bench-201 TinyNetwork (see the module docstring)."""

    def __init__(self, genotype: dict, num_classes: int = 10, in_channels: int = 3, image_size: int = 32,
                 N: int = 5, C: int = 16, drop_path: float = 0.0):
        super().__init__()
        normal, reduce = _genotype_cells(genotype)
        if reduce is not None:
            raise ValueError("the nb201 skeleton takes a genotype with one (normal) cell")
        _check_positive(num_classes=num_classes, in_channels=in_channels, image_size=image_size, N=N, C=C)
        self.drop_path_prob = float(drop_path)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, 1, 1, bias=False), nn.BatchNorm2d(C))
        self.cells = nn.ModuleList()
        self._is_cell = []
        C_prev = C
        for stage in range(3):
            if stage:
                block = ResNetBasicBlock(C_prev, C * 2 ** stage, 2)
                self.cells.append(block)
                self._is_cell.append(False)
                C_prev = block.out_channels
            for _ in range(N):
                cell = NB201Cell(normal, C_prev, C * 2 ** stage, 1)
                self.cells.append(cell)
                self._is_cell.append(True)
                C_prev = cell.out_channels
        self._is_cell = tuple(self._is_cell)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        drop_prob = self.drop_path_prob if self.training else 0.0
        x = self.stem(x)
        for is_cell, cell in zip(self._is_cell, self.cells):
            x = cell(x, drop_prob) if is_cell else cell(x)
        return self.classifier(self.lastact(x).mean((2, 3)))


SKELETONS: dict[str, type[nn.Module]] = {
    "nasnet": NASNetNetwork,
    "darts": DARTSNetwork,
    "nb201": NB201Network,
    "mobile": MobileNetwork,
}


def skeleton_settings(skeleton: str) -> dict[str, Any]:
    """The macro settings a skeleton takes (name -> default), beyond genotype and dataset shape."""
    if skeleton not in SKELETONS:
        raise ValueError(f"unknown skeleton {skeleton!r} (known: {', '.join(SKELETONS)})")
    params = inspect.signature(SKELETONS[skeleton].__init__).parameters
    return {name: p.default for name, p in params.items()
            if name not in ("self", "genotype", "num_classes", "in_channels", "image_size")}


def build_network(genotype_data: dict, skeleton: str = "nasnet", num_classes: int = 10, in_channels: int = 3,
                  image_size: int = 32, **macro: Any) -> nn.Module:
    """The network of ``skeleton`` for plain genotype data; ValueError for settings it does not take."""
    allowed = skeleton_settings(skeleton)
    unknown = sorted(set(macro) - set(allowed))
    if unknown:
        raise ValueError(f"the {skeleton} skeleton does not take {', '.join(unknown)} "
                         f"(it takes {', '.join(allowed)})")
    return SKELETONS[skeleton](genotype_data, num_classes=num_classes, in_channels=in_channels,
                               image_size=image_size, **macro)

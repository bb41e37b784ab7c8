"""Cell operations: ``OPS[name](C_in, C_out, stride, affine=True) -> nn.Module``, with their authors' semantics.

Imports only torch and the standard library: ``nasengine.export`` copies this file verbatim into
standalone model files. Sources (read, not copied): TF-slim ``nets/nasnet/nasnet_utils.py``
(NASNet-A, PNASNet-5), tensorflow/tpu ``amoeba_net/network_utils.py`` (AmoebaNet-A), quark0/darts
``cnn/operations.py`` (DARTS), NAS-Bench-201 ``cell_operations.py``, melodyguan/enas ``micro_child.py``.

``C_in`` is the channel count of the state an op reads, ``C_out`` the cell's width; they differ only
where a cell reads a raw input (TF-slim's first cell after the stem). ``stride`` is 2 on edges
reading a cell input in a reduction cell, else 1. Every strided op maps H x W to ceil(H/2) x ceil(W/2)
(TF's 'SAME'; PyTorch pads symmetrically where TF pads bottom/right: same shapes and parameters).

=========================  =========================================================================
op                         module
=========================  =========================================================================
none                       zeros of the output shape (the supernet's zero op)
identity                   TF-slim 'none': x; ReLU, 1x1 conv [stride], BN when strided or C_in != C_out
skip_connect               DARTS / NAS-Bench-201: x; FactorizedReduce when strided; 1x1 conv-BN when
                           only the channels differ (NAS-Bench-201)
enas_identity              ENAS: x; factorized reduction without the leading ReLU when strided;
                           ReLU, 1x1 conv, BN when only the channels differ
sep_conv_3x3/5x5/7x7       (ReLU, depthwise kxk [stride on the first], pointwise 1x1, BN) x 2; the first
                           pointwise maps C_in -> C_out (slim; DARTS's C_in -> C_in is the same when equal)
avg_pool_3x3               3x3 average pool, 'same' padding not counted; then 1x1 conv, BN (no ReLU:
                           slim's order) only when C_in != C_out
max_pool_3x3/5x5/7x7       kxk max pool, 'same' padding; the same channel rule
dil_conv_3x3/5x5           DARTS DilConv: ReLU, depthwise kxk dilation 2, pointwise 1x1, BN
conv_1x7_7x1, conv_1x3_3x1 DARTS conv_7x1_1x7 shape: ReLU, 1xk conv [stride (1, s)], kx1 conv
                           [stride (s, 1)], BN
conv_1x7_7x1_bottleneck    AmoebaNet (tpu BaseCell '1x7_7x1'): ReLU, 1x1 to C/4, BN, ReLU, 1x7, BN,
                           ReLU, 7x1, BN, ReLU, 1x1 to C, BN (no bottleneck when C/4 < 1)
conv_1x1, conv_3x3         ReLU, conv [stride], BN
nor_conv_1x1/3x3           NAS-Bench-201 ReLUConvBN (the same modules)
=========================  =========================================================================

Convolutions have no bias (BN follows); batch norms are affine unless ``affine=False`` (the DARTS
supernet's non-affine batch norms: quark0/darts ``model_search.py`` builds its mixed ops so).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["OPS", "NO_DROP_PATH", "drops_path", "drop_path", "ReLUConvBN", "ConvBN", "SepConv", "DilConv",
           "FactorizedReduce", "Zero", "Pool", "FactorizedConv", "BottleneckFactorizedConv"]


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole examples with probability ``drop_prob``, scaling the kept ones by 1/keep."""
    keep = 1.0 - drop_prob
    mask = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask.div_(keep)


class ReLUConvBN(nn.Sequential):
    """ReLU, conv (no bias), BN."""

    def __init__(self, C_in: int, C_out: int, kernel_size, stride=1, padding=0, dilation=1, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride, padding, dilation, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class ConvBN(nn.Sequential):
    """1x1 conv (no bias), BN: slim's ``factorized_reduction`` with stride 1, NAS-Bench-201's
    stride-1 FactorizedReduce."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True):
        super().__init__(nn.Conv2d(C_in, C_out, 1, bias=False), nn.BatchNorm2d(C_out, affine=affine))


class SepConv(nn.Sequential):
    """(ReLU, depthwise kxk, pointwise 1x1, BN) twice; the stride is on the first depthwise conv."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, affine: bool = True):
        pad = kernel_size // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride, pad, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
            nn.ReLU(inplace=True),
            nn.Conv2d(C_out, C_out, kernel_size, 1, pad, groups=C_out, bias=False),
            nn.Conv2d(C_out, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise kxk conv with dilation, pointwise 1x1, BN (DARTS)."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, dilation: int = 2,
                 affine: bool = True):
        pad = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride, pad, dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class FactorizedConv(nn.Sequential):
    """ReLU, 1xk conv [stride (1, s)], kx1 conv [stride (s, 1)], BN (DARTS ``conv_7x1_1x7``)."""

    def __init__(self, C_in: int, C_out: int, k: int, stride: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, (1, k), (1, stride), (0, k // 2), bias=False),
            nn.Conv2d(C_out, C_out, (k, 1), (stride, 1), (k // 2, 0), bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class BottleneckFactorizedConv(nn.Sequential):
    """AmoebaNet's '1x7_7x1' (tensorflow/tpu ``BaseCell._apply_operation``): a 1x7 then 7x1 conv inside
    a 1x1 bottleneck to int(C_out / 4) channels, every conv followed by BN, ReLU before every conv."""

    def __init__(self, C_in: int, C_out: int, k: int, stride: int, affine: bool = True):
        mid = C_out // 4

        def bn(C: int) -> nn.BatchNorm2d:
            return nn.BatchNorm2d(C, affine=affine)

        if mid < 1:  # too narrow for a bottleneck: the bare pair
            layers = [nn.ReLU(inplace=False),
                      nn.Conv2d(C_in, C_out, (1, k), (1, stride), (0, k // 2), bias=False), bn(C_out),
                      nn.ReLU(inplace=True),
                      nn.Conv2d(C_out, C_out, (k, 1), (stride, 1), (k // 2, 0), bias=False), bn(C_out)]
        else:
            layers = [nn.ReLU(inplace=False), nn.Conv2d(C_in, mid, 1, bias=False), bn(mid),
                      nn.ReLU(inplace=True),
                      nn.Conv2d(mid, mid, (1, k), (1, stride), (0, k // 2), bias=False), bn(mid),
                      nn.ReLU(inplace=True),
                      nn.Conv2d(mid, mid, (k, 1), (stride, 1), (k // 2, 0), bias=False), bn(mid),
                      nn.ReLU(inplace=True), nn.Conv2d(mid, C_out, 1, bias=False), bn(C_out)]
        super().__init__(*layers)


class FactorizedReduce(nn.Module):
    """Halve H and W without dropping pixels: [ReLU,] two stride-2 1x1 convs, one on x and one on x
    shifted by one pixel, concatenated, BN. The shifted path is zero-padded at the bottom/right for odd
    sizes (slim ``factorized_reduction``; for even sizes identical to DARTS's FactorizedReduce)."""

    def __init__(self, C_in: int, C_out: int, relu: bool = True, affine: bool = True):
        super().__init__()
        self.relu = relu
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out - C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.relu:
            x = F.relu(x)
        shifted = x[:, :, 1:, 1:]
        if x.shape[2] % 2 or x.shape[3] % 2:
            shifted = F.pad(shifted, (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class Zero(nn.Module):
    """Zeros of the op's output shape (C_out channels, strided size)."""

    def __init__(self, C_in: int, C_out: int, stride: int):
        super().__init__()
        self.C_in, self.C_out, self.stride = C_in, C_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        if self.C_in == self.C_out:
            return torch.zeros_like(x)
        return x.new_zeros((x.shape[0], self.C_out, x.shape[2], x.shape[3]))

    def extra_repr(self) -> str:
        return f"C_in={self.C_in}, C_out={self.C_out}, stride={self.stride}"


class Pool(nn.Sequential):
    """A pool with 'same' padding, then 1x1 conv + BN to C_out (slim: no ReLU)."""

    def __init__(self, kind: str, kernel_size: int, C_in: int, C_out: int, stride: int, affine: bool = True):
        if kind == "avg":
            pool = nn.AvgPool2d(kernel_size, stride, kernel_size // 2, count_include_pad=False)
        else:
            pool = nn.MaxPool2d(kernel_size, stride, kernel_size // 2)
        super().__init__(pool, nn.Conv2d(C_in, C_out, 1, bias=False), nn.BatchNorm2d(C_out, affine=affine))


def _pool(kind: str, k: int) -> Callable[..., nn.Module]:
    def build(C_in: int, C_out: int, stride: int, affine: bool = True) -> nn.Module:
        if C_in != C_out:
            return Pool(kind, k, C_in, C_out, stride, affine)
        if kind == "avg":
            return nn.AvgPool2d(k, stride, k // 2, count_include_pad=False)
        return nn.MaxPool2d(k, stride, k // 2)
    return build


def _identity(C_in: int, C_out: int, stride: int, affine: bool = True) -> nn.Module:
    if stride == 1 and C_in == C_out:
        return nn.Identity()
    return ReLUConvBN(C_in, C_out, 1, stride, affine=affine)


def _skip_connect(C_in: int, C_out: int, stride: int, affine: bool = True) -> nn.Module:
    if stride > 1:
        return FactorizedReduce(C_in, C_out, relu=True, affine=affine)
    return nn.Identity() if C_in == C_out else ConvBN(C_in, C_out, affine)


def _enas_identity(C_in: int, C_out: int, stride: int, affine: bool = True) -> nn.Module:
    if stride > 1:
        return FactorizedReduce(C_in, C_out, relu=False, affine=affine)
    return nn.Identity() if C_in == C_out else ReLUConvBN(C_in, C_out, 1, affine=affine)


OPS: dict[str, Callable[..., nn.Module]] = {
    "none": lambda C_in, C_out, stride, affine=True: Zero(C_in, C_out, stride),
    "identity": _identity,
    "skip_connect": _skip_connect,
    "enas_identity": _enas_identity,
    "sep_conv_3x3": lambda C_in, C_out, stride, affine=True: SepConv(C_in, C_out, 3, stride, affine),
    "sep_conv_5x5": lambda C_in, C_out, stride, affine=True: SepConv(C_in, C_out, 5, stride, affine),
    "sep_conv_7x7": lambda C_in, C_out, stride, affine=True: SepConv(C_in, C_out, 7, stride, affine),
    "avg_pool_3x3": _pool("avg", 3),
    "max_pool_3x3": _pool("max", 3),
    "max_pool_5x5": _pool("max", 5),
    "max_pool_7x7": _pool("max", 7),
    "dil_conv_3x3": lambda C_in, C_out, stride, affine=True: DilConv(C_in, C_out, 3, stride, 2, affine),
    "dil_conv_5x5": lambda C_in, C_out, stride, affine=True: DilConv(C_in, C_out, 5, stride, 2, affine),
    "conv_1x7_7x1": lambda C_in, C_out, stride, affine=True: FactorizedConv(C_in, C_out, 7, stride, affine),
    "conv_1x3_3x1": lambda C_in, C_out, stride, affine=True: FactorizedConv(C_in, C_out, 3, stride, affine),
    "conv_1x7_7x1_bottleneck":
        lambda C_in, C_out, stride, affine=True: BottleneckFactorizedConv(C_in, C_out, 7, stride, affine),
    "conv_1x1": lambda C_in, C_out, stride, affine=True: ReLUConvBN(C_in, C_out, 1, stride, 0, affine=affine),
    "conv_3x3": lambda C_in, C_out, stride, affine=True: ReLUConvBN(C_in, C_out, 3, stride, 1, affine=affine),
    "nor_conv_1x1": lambda C_in, C_out, stride, affine=True: ReLUConvBN(C_in, C_out, 1, stride, 0, affine=affine),
    "nor_conv_3x3": lambda C_in, C_out, stride, affine=True: ReLUConvBN(C_in, C_out, 3, stride, 1, affine=affine),
}

# Ops never drop-pathed: slim skips drop path for its 'none' (even strided) and ENAS for identity;
# zeros gain nothing from it. DARTS's rule (any nn.Identity) is checked on the module.
NO_DROP_PATH = frozenset({"none", "identity", "enas_identity"})


def drops_path(name: str, module: nn.Module) -> bool:
    """Whether drop path applies to op ``name`` built as ``module``."""
    return name not in NO_DROP_PATH and not isinstance(module, nn.Identity)

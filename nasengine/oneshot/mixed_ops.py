"""The mixed ops of a DARTS supernet reading one state, computed edge by edge or all edges at once.

A :class:`MixedEdges` holds every edge that reads one state of a cell (state ``s`` feeds one edge into
each later node), each edge a list of candidate ops built by ``nasengine.models.ops.OPS`` with
non-affine batch norms. Its output for edge ``e`` is the mixed op ``sum_o w[e, o] * op_o(x)`` of
DARTS (Liu et al. 2019, eq. 2), ``w`` the softmax of the architecture weights.

Two ways to compute it, the same maths on the same parameters:

- ``plain``: every candidate of every edge on its own, as quark0/darts and khanrc/pt.darts do
  (``none`` included: it contributes ``0 * x``). The benchmark's eager baseline and the tests' oracle.
- ``fused``: the edges that read the same state share their input, so each candidate runs once for
  all of them: ``none`` is skipped (its weight still sits in the softmax), the parameter-free ops
  (identity, pooling and its non-affine batch norm) are computed once and broadcast over the edges,
  and a candidate with weights runs on all edges in one call: one dense conv with the edges' kernels
  stacked on the output channels (ReLU-conv-BN, FactorizedReduce), one depthwise conv over the input
  repeated per edge, one batched matmul for the edges' pointwise convs, one batch norm over every
  edge's channels (batch norm is per channel, so this is the per-edge batch norm; the running
  statistics are gathered from and written back to the edges' own modules).

On the CPU the depthwise convs use :func:`depthwise_conv`, whose backward computes the input gradient
as a forward depthwise conv of the flipped kernel and the weight gradient as a depthwise conv of the
input with the output gradient as kernel: forward and backward of a 5x5 or dilated depthwise conv
took 5.3-10.6 ms with aten's backward and 1.1-1.6 ms so (8x128x16x16, two threads), and pooling
goes through :func:`pool` (about 2x faster at stride 1); figures and commands in
benchmarks/RESULTS.md. On CUDA everything runs on aten's kernels.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nasengine.models.ops import OPS, DilConv, FactorizedReduce, ReLUConvBN, SepConv, Zero

__all__ = ["MixedEdges", "STACKABLE", "batch_norm", "depthwise_conv", "pool", "stacked"]


class _DepthwiseConv(torch.autograd.Function):
    """Depthwise conv with the backward described in the module docstring (first order only)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, stride: int, padding: int, dilation: int) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, dilation)
        return F.conv2d(x, w, None, stride, padding, dilation, x.shape[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, w = ctx.saved_tensors
        s, p, d = ctx.conf
        B, C, H, W = x.shape
        k = w.shape[-1]
        grad = grad.contiguous()
        gx = gw = None
        if ctx.needs_input_grad[0]:
            if s == 1:
                gx = F.conv2d(grad, w.flip(-1, -2), None, 1, d * (k - 1) - p, d, C)
            else:
                reach = d * (k - 1) + 1 - 2 * p
                extra = (H - ((grad.shape[2] - 1) * s + reach), W - ((grad.shape[3] - 1) * s + reach))
                gx = F.conv_transpose2d(grad, w, None, s, p, extra, C, d)
        if ctx.needs_input_grad[1]:
            kernel = grad.reshape(B * C, 1, grad.shape[2], grad.shape[3])
            out = F.conv2d(x.reshape(1, B * C, H, W), kernel, None, d, p, s, B * C)  # stride d, dilation s
            gw = out.view(B, C, out.shape[2], out.shape[3])[:, :, :k, :k].sum(0).unsqueeze(1)
        return gx, gw, None, None, None


def depthwise_conv(x: torch.Tensor, w: torch.Tensor, stride: int, padding: int, dilation: int) -> torch.Tensor:
    """``F.conv2d(x, w, groups=channels)``; on the CPU with the faster backward of :class:`_DepthwiseConv`."""
    if x.device.type == "cpu" and torch.is_grad_enabled() and (x.requires_grad or w.requires_grad):
        return _DepthwiseConv.apply(x, w, stride, padding, dilation)
    return F.conv2d(x, w, None, stride, padding, dilation, x.shape[1])


def pool(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` (a pooling module), faster on the CPU at stride 1: max pooling in channels-last
    layout, average pooling (padding not counted) as a depthwise conv with a kernel of ones divided by
    the number of pixels under it (each about 2x faster forward and backward; at stride 2 neither
    beat aten's NCHW pools; benchmarks/RESULTS.md)."""
    stride = module.stride if isinstance(module.stride, int) else module.stride[0]
    if x.device.type != "cpu" or x.dim() != 4 or stride != 1:
        return module(x)
    if isinstance(module, nn.MaxPool2d):
        return module(x.contiguous(memory_format=torch.channels_last)).contiguous()
    if module.count_include_pad or module.ceil_mode or module.divisor_override:
        return module(x)
    k, pad = (v if isinstance(v, int) else v[0] for v in (module.kernel_size, module.padding))
    ones = x.new_ones(x.shape[1], 1, k, k)
    count = F.conv2d(x.new_ones(1, 1, x.shape[2], x.shape[3]), ones[:1], None, stride, pad)
    return depthwise_conv(x, ones, stride, pad, 1) / count


def batch_norm(x: torch.Tensor, bns: list[nn.BatchNorm2d], shared: bool = False) -> torch.Tensor:
    """Non-affine batch norm of ``x``, whose channels are those of ``bns`` one after the other, or, with
    ``shared``, those of every one of ``bns`` (edges reading one input: each would compute the same).
    In training mode the batch statistics update every module's running statistics as its own forward
    would (momentum, unbiased running variance)."""
    bn = bns[0]
    if not bn.training:
        mean = bn.running_mean if shared or len(bns) == 1 else torch.cat([b.running_mean for b in bns])
        var = bn.running_var if shared or len(bns) == 1 else torch.cat([b.running_var for b in bns])
        return F.batch_norm(x, mean, var, None, None, False, 0.0, bn.eps)
    # aten's kernel, without running statistics; its saved mean and 1/std give them (one pass less
    # than asking for them again, and one module's buffers per call would not do for several)
    y, mean, invstd = torch.native_batch_norm(x, None, None, None, None, True, 0.0, bn.eps)
    with torch.no_grad():
        n = x.numel() // x.shape[1]
        mean = mean.to(bn.running_mean.dtype)
        var = (invstd.to(bn.running_var.dtype).pow(-2) - bn.eps) * (n / max(n - 1, 1))
        if shared:
            means, variances = [mean] * len(bns), [var] * len(bns)
        else:
            sizes = [b.num_features for b in bns]
            means, variances = list(mean.split(sizes)), list(var.split(sizes))
        torch._foreach_lerp_([b.running_mean for b in bns] + [b.running_var for b in bns], means + variances,
                             bn.momentum)
    return y


def _stacked(convs: list[nn.Conv2d]) -> torch.Tensor:
    return torch.cat([c.weight for c in convs])


def _pointwise(x: torch.Tensor, convs: list[nn.Conv2d], edges: int) -> torch.Tensor:
    """Each edge's 1x1 conv on its own block of channels of ``x`` (B, edges * C_in, H, W)."""
    B, _, H, W = x.shape
    weight = _stacked(convs)  # edges * C_out, C_in, 1, 1
    C_out, C_in = weight.shape[0] // edges, weight.shape[1]
    y = torch.matmul(weight.view(edges, C_out, C_in), x.reshape(B, edges, C_in, H * W))
    return y.view(B, edges * C_out, H, W)


def _dw_stage(x: torch.Tensor, dws: list[nn.Conv2d], pws: list[nn.Conv2d], bns: list[nn.BatchNorm2d],
              edges: int) -> torch.Tensor:
    """Depthwise, pointwise, BN of every edge at once on ``x``, activated already: every edge's
    channels (B, edges * C, H, W) or one shared input (B, C, H, W)."""
    if x.shape[1] != dws[0].weight.shape[0] * edges:
        x = x.repeat(1, edges, 1, 1)
    conv = dws[0]
    x = depthwise_conv(x, _stacked(dws), conv.stride[0], conv.padding[0], conv.dilation[0])
    return batch_norm(_pointwise(x, pws, edges), bns)


def _is_pool(module: nn.Module) -> bool:
    return isinstance(module, (nn.MaxPool2d, nn.AvgPool2d))


STACKABLE = (DilConv, SepConv, ReLUConvBN, FactorizedReduce)


def stacked(ops: list[nn.Module], x: torch.Tensor, relu: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.stack([op(x) for op in ops], 1)`` for ops of one ``STACKABLE`` type and shape, in one
    call per layer (see the module docstring); ``relu``: ``F.relu(x)`` if already computed."""
    first, E, B = ops[0], len(ops), x.shape[0]
    if relu is None and not (isinstance(first, FactorizedReduce) and not first.relu):
        relu = F.relu(x)
    if isinstance(first, FactorizedReduce):
        h = relu if first.relu else x
        shifted = h[:, :, 1:, 1:]
        if h.shape[2] % 2 or h.shape[3] % 2:
            shifted = F.pad(shifted, (0, 1, 0, 1))
        y1 = F.conv2d(h, _stacked([op.conv_1 for op in ops]), None, 2)
        y2 = F.conv2d(shifted, _stacked([op.conv_2 for op in ops]), None, 2)
        H, W = y1.shape[2:]
        y = torch.cat([y1.view(B, E, -1, H, W), y2.view(B, E, -1, H, W)], 2).view(B, -1, H, W)
        y = batch_norm(y, [op.bn for op in ops])
    elif isinstance(first, ReLUConvBN):
        conv = first[1]
        y = F.conv2d(relu, _stacked([op[1] for op in ops]), None, conv.stride, conv.padding, conv.dilation)
        y = batch_norm(y, [op[2] for op in ops])
    else:  # DilConv: ReLU, dw, pw, BN; SepConv: that twice
        y = _dw_stage(relu, [op[1] for op in ops], [op[2] for op in ops], [op[3] for op in ops], E)
        if isinstance(first, SepConv):
            y = _dw_stage(F.relu(y), [op[5] for op in ops], [op[6] for op in ops], [op[7] for op in ops], E)
    return y.view(B, E, -1, y.shape[2], y.shape[3])


class MixedEdges(nn.Module):
    """The mixed ops of every edge reading one state (see the module docstring).

    ``ops`` are op names (``nasengine.models.ops.OPS``), built with ``affine=False``; ``pool_bn`` puts a
    non-affine batch norm after every pooling op (quark0/darts ``model_search.MixedOp``).
    """

    def __init__(self, ops: tuple[str, ...], edges: int, C_in: int, C: int, stride: int, pool_bn: bool):
        super().__init__()
        self.n_edges = edges
        self.edges = nn.ModuleList()
        for _ in range(edges):
            candidates = nn.ModuleList()
            for name in ops:
                op = OPS[name](C_in, C, stride, affine=False)
                if pool_bn and _is_pool(op):
                    op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
                candidates.append(op)
            self.edges.append(candidates)

    # ---- plain -----------------------------------------------------------------------------
    def plain(self, x: torch.Tensor, w: torch.Tensor) -> list[torch.Tensor]:
        """Every edge's mixed op, candidate by candidate; ``w``: (edges, ops) softmax weights."""
        return [sum(w[e, o] * op(x) for o, op in enumerate(candidates)) for e, candidates in enumerate(self.edges)]

    # ---- fused -----------------------------------------------------------------------------
    def fused(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Every edge's mixed op, (B, edges, C, H', W'), computed as the module docstring says."""
        E = self.n_edges
        out = None
        relu = None
        for o, first in enumerate(self.edges[0]):
            ops = [candidates[o] for candidates in self.edges]
            if isinstance(first, Zero):
                continue
            weight = w[:, o].view(1, E, 1, 1, 1)
            if isinstance(first, nn.Identity):
                y = x.unsqueeze(1)
            elif _is_pool(first):
                y = pool(first, x).unsqueeze(1)
            elif isinstance(first, nn.Sequential) and len(first) == 2 and _is_pool(first[0]):
                y = batch_norm(pool(first[0], x), [op[1] for op in ops], shared=True).unsqueeze(1)
            elif isinstance(first, STACKABLE):
                if relu is None:
                    relu = F.relu(x)
                y = stacked(ops, x, relu)
            else:  # any other op: edge by edge
                y = torch.stack([op(x) for op in ops], 1)
            out = weight * y if out is None else torch.addcmul(out, weight, y)
        if out is None:  # only zero ops
            out = torch.stack(self.plain(x, w), 1)
        return out

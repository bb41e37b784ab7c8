"""Mobile networks of blocks (the ``mobile`` skeleton): MnasNet, MobileNetV2 and EfficientNet.

Imports only torch and the standard library (``nasengine.export`` copies this file verbatim).
``genotype_data`` is ``Blocks.to_data()``: ``{"blocks": [{"op", "kernel", "filters", "layers", "stride",
"se", "skip"}, ...]}``. The network, as the TF reference code builds it (tensorflow/tpu
models/official/mnasnet/mnasnet_model.py and models/official/efficientnet/efficientnet_model.py):

- stem: 3x3 conv (stride ``stem_stride``) to ``stem`` channels, BN, activation;
- per block, ``layers`` layers; the first has the block's stride and reads the previous block's
  output, the others stride 1 from the block's own width. A layer is one of
  ``conv`` (kxk conv, BN, activation: a plain convolution layer),
  ``dwconv`` (depthwise kxk, BN, activation, 1x1 projection, BN: MnasNet's SepConv, MobileNetV2's
  t=1 bottleneck, EfficientNet's MBConv1) and ``mbconvN`` (1x1 expansion to N times the input, BN,
  activation, then as dwconv: the inverted bottleneck). Squeeze-and-excitation (ratio ``se``) acts on
  the depthwise output (on a conv layer's output), squeezing to ``max(1, int(layer input * se))``
  channels with the network's activation, as ``MBConvBlock._build`` does. A layer whose input and
  output shapes match adds its input (the identity skip, unless the block says ``noskip``); in
  training, ``drop_connect`` drops that residual branch per sample with probability ``drop_connect *
  i / n`` for the i-th of the network's n block layers (``EfficientNetModel.call``);
- head: 1x1 conv to ``head`` channels, BN, activation, global average pool, dropout, linear.

Batch norm: epsilon 1e-3 as the TF code, momentum PyTorch's 0.1 as timm's port (TF's 0.99, PyTorch's 0.01,
left a short digits run's running statistics at chance: eval accuracy 0.10 where train-mode accuracy
was 0.59). Activations: ``relu`` (MnasNet), ``relu6`` (MobileNetV2), ``swish`` (EfficientNet).
Weights are initialised as the TF code does: convolutions normal with fan-out variance, the linear layer
uniform in +-1/sqrt(classes); and, unlike it, the last batch norm's scale of every layer with an identity skip
starts at zero, so each residual layer starts as the identity (Goyal et al. 2017, "Accurate, Large
Minibatch SGD", sec. 5.1). Measured on digits (the mnasnet space's MobileNetV2 backbone at width 0.25, 32x32,
4 epochs, batch 64, the trainer's defaults, one CPU thread): validation accuracy 0.43 with TF's
initialisation, 0.85 with the zero start; batch 32 without augmentation 0.97.

Scaling (EfficientNet, ``efficientnet_model.round_filters`` / ``round_repeats``): at ``width`` w != 1
every channel count (stem and head too) becomes ``c * w`` rounded to a multiple of 8, never below 90%
of ``c * w``; at ``width`` 1 the genotype's filters are built as written (the TF code would round them
to multiples of 8 as well; every published network's filters are multiples of 8 already). ``depth``
d makes a block's layers ``ceil(layers * d)``. ``image_size`` is the input resolution.

The network is exactly the sequence ``[build_layer(s) for s in layer_specs(...)]`` (its ``layers``),
so a per-layer latency table can predict it. A spec is a flat dict of plain values (``kind``,
``in_ch``, ``out_ch``, ``kernel``, ``stride``, ``expand``, ``se``, ``size``, ``activation``, ``skip``,
``classes``); the training-only rates (dropout, drop connect) are not in it: the network
sets them on the built layers.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

__all__ = ["MobileNetwork", "build_layer", "layer_specs", "round_filters", "round_repeats", "block_list",
           "ACTIVATIONS", "BLOCK_OPS"]

BN_MOMENTUM = 0.1  # not TF's 0.99 (PyTorch 0.01): see the module docstring
BN_EPS = 1e-3
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "relu6": nn.ReLU6, "swish": nn.SiLU}
BLOCK_OPS = ("conv", "dwconv", "mbconvN (N >= 2)")
_BLOCK_KEYS = ("op", "kernel", "filters", "layers", "stride", "se", "skip")


def round_filters(filters: float, width: float, divisor: int = 8) -> int:
    """EfficientNet's ``round_filters``: ``filters * width`` to a multiple of ``divisor`` (at least
    ``divisor``), never below 90% of the unrounded value; exactly ``filters`` at width 1."""
    if width == 1.0:
        return int(filters)
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(layers: int, depth: float) -> int:
    """EfficientNet's ``round_repeats``: ``ceil(layers * depth)``."""
    return int(math.ceil(layers * depth))


def _out_size(size: int, stride: int) -> int:
    """Spatial size after a kxk conv with padding k // 2 (TF's SAME for odd k)."""
    return (size - 1) // stride + 1


def _expansion(op: str) -> int:
    """The expansion ratio of a block op: 0 for conv, 1 for dwconv, N for mbconvN; ValueError otherwise."""
    if op == "conv":
        return 0
    if op == "dwconv":
        return 1
    if op.startswith("mbconv") and op[6:].isdigit() and int(op[6:]) >= 2:
        return int(op[6:])
    raise ValueError(f"unknown block op {op!r} (known: {', '.join(BLOCK_OPS)})")


def block_list(genotype: Any) -> list[dict]:
    """The blocks of ``genotype`` (a ``Blocks`` or its ``to_data()``) as checked plain dicts."""
    if hasattr(genotype, "to_data"):
        genotype = genotype.to_data()
    if not isinstance(genotype, dict) or not isinstance(genotype.get("blocks"), (list, tuple)):
        raise ValueError("genotype data needs a 'blocks' list (Blocks.to_data())")
    if not genotype["blocks"]:
        raise ValueError("a block genotype needs at least one block")
    out = []
    for i, raw in enumerate(genotype["blocks"]):
        if not isinstance(raw, dict):
            raise ValueError(f"block {i + 1} is not a mapping")
        unknown = set(raw) - set(_BLOCK_KEYS)
        if unknown:
            raise ValueError(f"block {i + 1}: unknown key(s) {sorted(unknown)}")
        b = {"se": 0.0, "skip": True, **raw}
        missing = [k for k in _BLOCK_KEYS if k not in b]
        if missing:
            raise ValueError(f"block {i + 1} needs {', '.join(missing)}")
        _expansion(b["op"])
        for key in ("kernel", "filters", "layers", "stride"):
            if not isinstance(b[key], int) or isinstance(b[key], bool) or b[key] < 1:
                raise ValueError(f"block {i + 1}: {key} must be a positive integer, got {b[key]!r}")
        if b["kernel"] % 2 == 0:
            raise ValueError(f"block {i + 1}: kernel must be odd, got {b['kernel']}")
        if not 0.0 <= float(b["se"]) <= 1.0:
            raise ValueError(f"block {i + 1}: se must be in [0, 1], got {b['se']!r}")
        out.append(b)
    return out


def layer_specs(genotype_data: Any, num_classes: int = 1000, in_channels: int = 3, image_size: int = 224,
                width: float = 1.0, depth: float = 1.0, stem: int = 32, head: int = 1280,
                activation: str = "relu", stem_stride: int = 2, skeleton: str = "mobile",
                **training_only: Any) -> list[dict]:
    """One spec per layer of the network, in order: stem, every block layer, head (see the module
    docstring). Takes the network's settings (``dropout`` and ``drop_connect`` are accepted and
    ignored: they do not change the layers)."""
    if skeleton != "mobile":
        raise ValueError(f"layer specs are for the mobile skeleton, not {skeleton!r}")
    unknown = sorted(set(training_only) - {"dropout", "drop_connect"})
    if unknown:
        raise ValueError(f"the mobile skeleton does not take {', '.join(unknown)}")
    blocks = block_list(genotype_data)
    for name, value in (("num_classes", num_classes), ("in_channels", in_channels), ("image_size", image_size),
                        ("stem", stem), ("head", head), ("stem_stride", stem_stride)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for name, value in (("width", width), ("depth", depth)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r} (known: {', '.join(ACTIVATIONS)})")

    def spec(kind: str, in_ch: int, out_ch: int, kernel: int, stride: int, size: int, expand: int = 0,
             se: float = 0.0, skip: bool = False, classes: int = 0) -> dict:
        return {"kind": kind, "in_ch": in_ch, "out_ch": out_ch, "kernel": kernel, "stride": stride,
                "expand": expand, "se": float(se), "size": size, "activation": activation, "skip": skip,
                "classes": classes}

    c = round_filters(stem, width)
    specs = [spec("stem", in_channels, c, 3, stem_stride, image_size)]
    size = _out_size(image_size, stem_stride)
    for b in blocks:
        out = round_filters(b["filters"], width)
        expand = _expansion(b["op"])
        kind = "conv" if expand == 0 else ("dwconv" if expand == 1 else "mbconv")
        for i in range(round_repeats(b["layers"], depth)):
            stride = b["stride"] if i == 0 else 1
            skip = bool(b["skip"]) and stride == 1 and c == out
            specs.append(spec(kind, c, out, b["kernel"], stride, size, expand, b["se"], skip))
            c, size = out, _out_size(size, stride)
    specs.append(spec("head", c, round_filters(head, width), 1, 1, size, classes=num_classes))
    return specs


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    conv = nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=bias)
    # TF conv_kernel_initializer: normal, stddev sqrt(2 / fan_out), fan_out = k * k * output channels of the
    # kernel (a depthwise kernel, [k, k, C, 1] in TF, has one)
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (kernel * kernel * (out_ch // groups))))
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: global average pool, 1x1 conv to ``reduced`` (with bias), activation,
    1x1 conv back (with bias), sigmoid gate on the input."""

    def __init__(self, channels: int, reduced: int, activation: str):
        super().__init__()
        self.reduce = _conv(channels, reduced, 1, bias=True)
        self.act = ACTIVATIONS[activation]()
        self.expand = _conv(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(s)


class BlockLayer(nn.Module):
    """One layer of a block (``conv``, ``dwconv`` or ``mbconv``, see the module docstring), or the stem
    (a conv layer without SE or skip). ``drop_connect`` is the probability of dropping the residual
    branch of a sample in training (only where the layer has its identity skip)."""

    def __init__(self, spec: dict):
        super().__init__()
        in_ch, out_ch, k, stride = spec["in_ch"], spec["out_ch"], spec["kernel"], spec["stride"]
        act = ACTIVATIONS[spec["activation"]]
        reduced = max(1, int(in_ch * spec["se"])) if spec["se"] > 0 else 0
        parts: list[nn.Module] = []
        if spec["kind"] in ("stem", "conv"):
            parts += [_conv(in_ch, out_ch, k, stride), _bn(out_ch), act()]
            if reduced:
                parts.append(SqueezeExcite(out_ch, reduced, spec["activation"]))
        else:
            mid = in_ch * spec["expand"]
            if spec["expand"] != 1:
                parts += [_conv(in_ch, mid, 1), _bn(mid), act()]
            parts += [_conv(mid, mid, k, stride, groups=mid), _bn(mid), act()]
            if reduced:
                parts.append(SqueezeExcite(mid, reduced, spec["activation"]))
            parts += [_conv(mid, out_ch, 1), _bn(out_ch)]
        self.body = nn.Sequential(*parts)
        self.skip = bool(spec["skip"])
        if self.skip:  # start as the identity (see the module docstring)
            nn.init.zeros_(next(m for m in reversed(parts) if isinstance(m, nn.BatchNorm2d)).weight)
        self.drop_connect = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if not self.skip:
            return out
        if self.training and self.drop_connect > 0:
            keep = 1.0 - self.drop_connect
            mask = torch.rand((x.shape[0], 1, 1, 1), dtype=out.dtype, device=out.device) < keep
            out = out * mask / keep
        return out + x


class Head(nn.Module):
    """1x1 conv, BN, activation, global average pool, dropout (``dropout.p``), linear."""

    def __init__(self, spec: dict):
        super().__init__()
        out_ch = spec["out_ch"]
        self.conv = nn.Sequential(_conv(spec["in_ch"], out_ch, 1), _bn(out_ch),
                                  ACTIVATIONS[spec["activation"]]())
        self.dropout = nn.Dropout(0.0)
        self.classifier = nn.Linear(out_ch, spec["classes"])
        bound = 1.0 / math.sqrt(spec["classes"])  # TF dense_kernel_initializer
        nn.init.uniform_(self.classifier.weight, -bound, bound)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.conv(x).mean((2, 3))))


def build_layer(spec: dict) -> nn.Module:
    """The module of one layer spec (from :func:`layer_specs`)."""
    if spec["kind"] == "head":
        return Head(spec)
    if spec["kind"] in ("stem", "conv", "dwconv", "mbconv"):
        return BlockLayer(spec)
    raise ValueError(f"unknown layer kind {spec['kind']!r}")


class MobileNetwork(nn.Module):
    """The ``mobile`` skeleton (see the module docstring): ``layers`` is the sequence of
    :func:`build_layer` modules of :func:`layer_specs`; ``forward`` runs them in order."""

    def __init__(self, genotype: Any, num_classes: int = 10, in_channels: int = 3, image_size: int = 224,
                 width: float = 1.0, depth: float = 1.0, stem: int = 32, head: int = 1280, activation: str = "relu",
                 dropout: float = 0.0, drop_connect: float = 0.0, stem_stride: int = 2):
        super().__init__()
        for name, rate in (("dropout", dropout), ("drop_connect", drop_connect)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {rate!r}")
        specs = layer_specs(genotype, num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                            width=width, depth=depth, stem=stem, head=head, activation=activation,
                            stem_stride=stem_stride)
        self.specs = specs
        self.image_size = image_size
        self.layers = nn.Sequential(*[build_layer(s) for s in specs])
        n = len(specs) - 2  # block layers
        for i, layer in enumerate(self.layers[1:-1]):
            layer.drop_connect = drop_connect * i / n
        self.layers[-1].dropout.p = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

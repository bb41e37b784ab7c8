"""The block genotype: a whole mobile network as a sequence of blocks (MnasNet, Tan et al. 2019, sec. 4.1).

Each block repeats one layer ``layers`` times; the first layer carries the stride. A layer is

- ``conv``: a regular kxk convolution (+ BN + activation);
- ``dwconv``: depthwise-separable, a depthwise kxk conv + BN + activation, then a linear pointwise 1x1
  conv + BN (MnasNet's "SepConv", MobileNetV2's t=1 bottleneck, EfficientNet's MBConv1);
- ``mbconvN``: MobileNetV2's inverted bottleneck with expansion N >= 2 (1x1 up to N times the input
  channels, depthwise kxk, linear 1x1 down),

optionally with squeeze-and-excitation (``se``: a ratio of the block's *input* channels, as the MnasNet
and EfficientNet TF code count it) and an identity residual on each layer whose input and output shapes
match (``skip``). The stem, head and activation are network settings, not genotype.

The text form is blocks joined by `` | ``, each ``OP kK [seR] cC nN sS [noskip]``::

    dwconv k3 c16 n1 s1 | mbconv6 k3 c24 n2 s2 | mbconv3 k5 se0.25 c40 n3 s2

It never contains ``~`` or ``:`` (a cell genotype's text always contains ``~``), so a text tells its kind.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import networkx as nx

from nasengine.errors import NasError

_OP = re.compile(r"^(conv|dwconv|mbconv([2-9]|[1-9][0-9]+))$")
KERNELS = (3, 5, 7)
STRIDES = (1, 2)
_TOKEN = re.compile(r"^(k|se|c|n|s)(\d+(?:\.\d+)?(?:[eE]-?\d+)?)$")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class Block:
    """One block: ``layers`` repeats of one layer; see the module docstring."""

    op: str
    kernel: int
    filters: int
    layers: int
    stride: int
    se: float = 0.0
    skip: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.op, str) or not _OP.match(self.op):
            raise NasError(f"block op {self.op!r} is not conv, dwconv or mbconvN (N >= 2)")
        if not _positive_int(self.kernel) or self.kernel not in KERNELS:
            raise NasError(f"block {self.op}: kernel {self.kernel!r} is not one of {', '.join(map(str, KERNELS))}")
        for name in ("filters", "layers"):
            if not _positive_int(getattr(self, name)):
                raise NasError(f"block {self.op}: {name} {getattr(self, name)!r} is not a positive integer")
        if not _positive_int(self.stride) or self.stride not in STRIDES:
            raise NasError(f"block {self.op}: stride {self.stride!r} is not 1 or 2")
        if isinstance(self.se, bool) or not isinstance(self.se, (int, float)) or not 0 <= self.se <= 1:
            raise NasError(f"block {self.op}: se ratio {self.se!r} is not a number in [0, 1]")
        if not isinstance(self.skip, bool):
            raise NasError(f"block {self.op}: skip {self.skip!r} is not true or false")
        object.__setattr__(self, "se", float(self.se))

    def __str__(self) -> str:
        se = f" se{self.se!r}" if self.se else ""
        noskip = "" if self.skip else " noskip"
        return f"{self.op} k{self.kernel}{se} c{self.filters} n{self.layers} s{self.stride}{noskip}"

    @classmethod
    def parse(cls, text: str) -> Block:
        tokens = text.split()
        if not tokens:
            raise NasError("empty block: expected e.g. 'mbconv6 k3 c24 n2 s2'")
        op, rest = tokens[0], tokens[1:]
        if rest and rest[-1] == "noskip":
            skip, rest = False, rest[:-1]
        else:
            skip = True
        values: dict[str, str] = {}
        for token in rest:
            m = _TOKEN.match(token)
            if m is None or m[1] in values:
                what = "repeats a field" if m is not None else "is not kK, seR, cC, nN, sS or a final noskip"
                raise NasError(f"block {text.strip()!r}: {token!r} {what}")
            values[m[1]] = m[2]
        missing = [k for k in ("k", "c", "n", "s") if k not in values]
        if missing:
            raise NasError(f"block {text.strip()!r} lacks {', '.join(missing)} (expected e.g. 'mbconv6 k3 c24 n2 s2')")
        try:
            ints = {k: int(values[k]) for k in ("k", "c", "n", "s")}
        except ValueError:
            raise NasError(f"block {text.strip()!r}: k, c, n and s take whole numbers") from None
        return cls(op, ints["k"], ints["c"], ints["n"], ints["s"], float(values.get("se", 0.0)), skip)


@dataclass(frozen=True)
class Blocks:
    """The block genotype: the network's blocks in order (beside ``core.genotype.Genotype``)."""

    blocks: tuple[Block, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        if not self.blocks:
            raise NasError("a block genotype needs at least one block")
        if not all(isinstance(b, Block) for b in self.blocks):
            raise NasError("a block genotype holds Block values only")

    def __str__(self) -> str:
        return " | ".join(str(b) for b in self.blocks)

    @classmethod
    def parse(cls, text: str) -> Blocks:
        if not isinstance(text, str) or not text.strip():
            raise NasError("empty genotype text")
        if "~" in text or ":" in text:
            raise NasError(f"{text.strip()[:60]!r} is a cell genotype's text, not a block sequence")
        return cls(tuple(Block.parse(part) for part in text.split("|")))

    def to_data(self) -> dict[str, list[dict[str, Any]]]:
        """Plain values: what block networks and exported files consume."""
        return {"blocks": [asdict(b) for b in self.blocks]}

    def ops(self) -> set[str]:
        return {b.op for b in self.blocks}

    def graph(self) -> nx.DiGraph:
        """A chain: node i is block i (attributes: the block's fields), an edge from each block to the next."""
        g = nx.DiGraph()
        for i, b in enumerate(self.blocks):
            g.add_node(i, **{f.name: getattr(b, f.name) for f in fields(b)})
            if i:
                g.add_edge(i - 1, i)
        return g


def skip_matters(block: Block) -> bool:
    """Whether a block's ``skip`` can change its network.

    A layer gets the identity residual only when its input and output shapes match: stride 1 and equal
    channels (MobileNetV2's ``use_res_connect``, the MnasNet TF code's ``id_skip``). So a block of one
    strided layer never has one. A stride-1 block's first layer may match or not depending on the previous
    block's channels *at the network's width* (rounded to multiples of 8), which the genotype does not
    know, so there ``skip`` counts as mattering."""
    return block.stride == 1 or block.layers > 1


def canonical_blocks(g: Blocks) -> Blocks:
    """``g`` with ``skip`` set to True wherever it cannot matter, so equal networks have equal forms."""
    return Blocks(tuple(b if skip_matters(b) else replace(b, skip=True) for b in g.blocks))

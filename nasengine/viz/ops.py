"""How op names look in pictures: a short label and a colour family per op.

The layout sizes edge labels with ``short_op``, cell diagrams and the DARTS weight plots colour ops by
``op_family``; this module is stdlib only so that the layout can use it without the renderer.
"""

from __future__ import annotations

import re

#: op family -> colour (tab10-like, readable as text on white)
FAMILY_COLOURS = {
    "sep": "#1f77b4",       # separable convolutions
    "dil": "#9467bd",       # dilated (separable) convolutions
    "conv": "#2ca02c",      # plain / factorized convolutions
    "avg": "#e07b00",       # average pooling
    "max": "#d62728",       # max pooling
    "identity": "#444444",  # identity, skip_connect
    "none": "#a0a0a0",      # zero
    "other": "#8c6d1f",
}
#: edges into a cell's output concat
CONCAT_COLOUR = "#b8b8b8"

_SHORT = {"skip_connect": "skip", "identity": "identity", "enas_identity": "identity", "none": "none",
          "zero": "none"}


def op_family(op: str) -> str:
    """The colour family of an op name: sep, dil, conv, avg, max, identity, none or other."""
    if op in ("none", "zero"):
        return "none"
    if "identity" in op or op.startswith("skip"):
        return "identity"
    for family in ("sep", "dil", "avg", "max"):
        if op.startswith(family):
            return family
    if "conv" in op:
        return "conv"
    return "other"


def short_op(op: str) -> str:
    """A short readable label: ``sep_conv_3x3`` -> ``sep 3x3``, ``conv_1x7_7x1`` -> ``1x7+7x1``."""
    if op in _SHORT:
        return _SHORT[op]
    m = re.fullmatch(r"(sep|dil)_conv_(\d+x\d+)", op)
    if m:
        return f"{m.group(1)} {m.group(2)}"
    m = re.fullmatch(r"(?:nor_)?conv_(\d+x\d+)", op)
    if m:
        return f"conv {m.group(1)}"
    m = re.fullmatch(r"(avg|max)_pool_(\d+x\d+)", op)
    if m:
        return f"{m.group(1)} {m.group(2)}"
    m = re.fullmatch(r"conv_(\d+x\d+)_(\d+x\d+)(_bottleneck)?", op)
    if m:
        return f"{m.group(1)}+{m.group(2)}" + (" bneck" if m.group(3) else "")
    return op.replace("_", " ")

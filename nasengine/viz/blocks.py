"""Block diagrams of block genotypes (MnasNet, MobileNetV2, EfficientNet): one row per block, from the
input down, with its op (a box coloured by op), kernel, squeeze-and-excitation ratio, filters, layers,
stride and skip; the renderer of ``Blocks`` for ``viz.render`` (so ``draw_genotype`` and
``genotype_png``, the trial diagrams, draw either kind of genotype). Given the network's settings,
the filters and layers are those the network builds (EfficientNet's rounding at its width and depth:
efficientnet_b3 is B0's blocks at width 1.2, depth 1.4) and the scaling is said under the title."""

from __future__ import annotations

from typing import Any

from nasengine.core.blocks import Blocks
from nasengine.viz.cells import render, text_size

OP_COLOURS = {"conv": "#2ca02c", "dwconv": "#1f77b4", "mbconv": "#9467bd"}  # mbconvN: any N
COLUMNS = ("block", "op", "kernel", "SE", "filters", "layers", "stride", "skip")
_ROW, _HEAD, _MARGIN, _FONT = 22.0, 26.0, 14.0, 9.5


def op_label(op: str) -> str:
    """``mbconv6`` -> ``MBConv6``, ``dwconv`` -> ``SepConv``, ``conv`` -> ``Conv`` (the MnasNet paper's names)."""
    if op.startswith("mbconv"):
        return "MBConv" + op[6:]
    return {"dwconv": "SepConv", "conv": "Conv"}.get(op, op)


def op_colour(op: str) -> str:
    return OP_COLOURS["mbconv" if op.startswith("mbconv") else op]


def block_rows(genotype: Blocks, width: float = 1.0, depth: float = 1.0) -> list[tuple[str, ...]]:
    """The table's text rows, one per block (the ``COLUMNS``), filters and layers at ``width`` and ``depth``."""
    from nasengine.models.blocks import round_filters, round_repeats

    return [(str(i), op_label(b.op), f"{b.kernel}x{b.kernel}", f"{b.se:g}" if b.se else "-",
             str(round_filters(b.filters, width)), str(round_repeats(b.layers, depth)), str(b.stride),
             "identity" if b.skip else "none")
            for i, b in enumerate(genotype.blocks, 1)]


def scaling_caption(network: dict[str, Any] | None) -> str | None:
    """``width 1.2, depth 1.4, 300x300 input`` for a scaled network; None at width and depth 1."""
    if not network or (network.get("width", 1.0), network.get("depth", 1.0)) == (1.0, 1.0):
        return None
    size = network.get("image_size")
    return f"width {network.get('width', 1.0):.4g}, depth {network.get('depth', 1.0):.4g}" + (
        f", {size}x{size} input" if size else "")


@render.register(Blocks)
def _render_blocks(genotype: Blocks, title: str | None = None, network: dict[str, Any] | None = None,
                   **cell_options: Any) -> Any:
    """A table of the blocks, top (input side) to bottom, the op in a box coloured by its kind. The cell
    diagrams' layout options (``arrange``) have nothing to arrange here and are ignored."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    network = network or {}
    rows = block_rows(genotype, network.get("width", 1.0), network.get("depth", 1.0))
    caption = scaling_caption(network)
    # the op column is bold: about 15% wider than text_size measures
    widths = [max(text_size(text, _FONT)[0] for text in [head, *(r[j] for r in rows)]) * (1.15 if j == 1 else 1.0)
              + 16.0 for j, head in enumerate(COLUMNS)]
    head = (24.0 if title else 0.0) + (18.0 if caption else 0.0)
    width = sum(widths) + 2 * _MARGIN
    if title:
        width = max(width, text_size(title, 11)[0] + 4 * _MARGIN)
    if caption:
        width = max(width, text_size(caption, _FONT)[0] + 4 * _MARGIN)
    height = head + _HEAD + _ROW * len(rows) + _MARGIN
    fig = Figure(figsize=(width / 72, height / 72))
    fig.patch.set_facecolor("white")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    if title:
        ax.text(width / 2, _MARGIN / 2 + 8, title, ha="center", va="center", fontsize=11, weight="bold")
    if caption:
        ax.text(width / 2, head - 12, caption, ha="center", va="center", fontsize=_FONT, color="#444444")
    x0 = (width - sum(widths)) / 2
    centres, x = [], x0
    for w in widths:
        centres.append(x + w / 2)
        x += w
    y = head + _HEAD / 2
    for cx, name in zip(centres, COLUMNS):
        ax.text(cx, y, name, ha="center", va="center", fontsize=_FONT, weight="bold", color="#333333")
    ax.plot([x0, x0 + sum(widths)], [head + _HEAD - 2] * 2, color="#888888", lw=0.8)
    for i, (row, block) in enumerate(zip(rows, genotype.blocks)):
        y = head + _HEAD + _ROW * (i + 0.5)
        if i % 2:
            ax.add_patch(FancyBboxPatch((x0, y - _ROW / 2), sum(widths), _ROW, boxstyle="square,pad=0",
                                        fc="#f4f4f4", ec="none", zorder=0))
        colour = op_colour(block.op)
        box_w = widths[1] - 8
        ax.add_patch(FancyBboxPatch((centres[1] - box_w / 2, y - _ROW / 2 + 3), box_w, _ROW - 6,
                                    boxstyle="round,pad=0,rounding_size=4", fc=colour, ec=colour, alpha=0.18,
                                    zorder=1))
        for j, (cx, text) in enumerate(zip(centres, row)):
            ax.text(cx, y, text, ha="center", va="center", fontsize=_FONT, zorder=2,
                    color=colour if j == 1 else "#222222", weight="bold" if j == 1 else "normal")
    return fig

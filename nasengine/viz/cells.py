"""Diagrams of genotypes as PNG (or SVG/PDF) files, drawn with matplotlib's object API (no pyplot,
no graphviz).

``draw_genotype(genotype, path, title=None)`` renders every cell of a genotype side by side; each
cell is a DAG laid out left to right by topological depth (``nasengine.viz.layout``: inputs,
intermediate nodes, the output concat), with each edge labelled by its op and coloured by op family
(``nasengine.viz.ops``).

Rendering dispatches on the genotype's type (``render.register``), so another kind of genotype (a
block sequence, say) adds its own renderer without touching this one::

    @render.register(BlockGenotype)
    def _(genotype, title=None) -> Figure: ...

matplotlib is imported inside the functions that draw, so importing this module is cheap.
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path
from typing import Any

from nasengine.core.genotype import Genotype
from nasengine.errors import NasError
from nasengine.viz.layout import LABEL_FONT, LABEL_PAD, MARGIN, NODE_FONT, Layout, edge_path, layout_cell
from nasengine.viz.ops import CONCAT_COLOUR, FAMILY_COLOURS, op_family

SCREEN = (768.0, 432.0)  # points: 1600x900 pixels at 150 dpi, what "auto" arranges cells for


@functools.lru_cache(maxsize=1024)
def text_size(text: str, size: float) -> tuple[float, float]:
    """(width, height) in points of ``text`` at ``size`` points, as matplotlib draws it (the layout's
    ``text_size``)."""
    from matplotlib.textpath import TextPath

    ext = TextPath((0, 0), text, size=size).get_extents()
    return float(ext.width), float(max(ext.height, size * 0.75))


CELL_TITLES = {"normal": "normal cell", "reduce": "reduction cell"}


def cell_title(name: str, n_cells: int) -> str:
    """The heading of a cell: normal cell, reduction cell, or just "cell" for a genotype's only cell
    (NAS-Bench-201's, or PNASNet's, which also reduces, with stride 2)."""
    if n_cells == 1:
        return "cell"
    return CELL_TITLES.get(name, f"{name} cell")


def _draw_layout(ax: Any, lay: Layout) -> None:
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, PathPatch
    from matplotlib.path import Path as MplPath

    ax.set_xlim(0, lay.width)
    ax.set_ylim(lay.height, 0)
    ax.axis("off")
    for e in lay.edges:
        if e.op is None:
            colour, style, lw, alpha = CONCAT_COLOUR, "-", 1.0, 1.0
        else:
            family = op_family(e.op)
            colour, lw = FAMILY_COLOURS[family], 1.4
            style, alpha = ("--", 0.55) if family == "none" else ("-", 1.0)
        if e.faded:
            alpha = min(alpha, 0.45)
        verts, letters = edge_path(e.points)
        codes = [{"M": MplPath.MOVETO, "L": MplPath.LINETO, "C": MplPath.CURVE4}[c] for c in letters]
        # stop the line where the arrow head starts
        end = e.points[-1]
        head = 6.0
        verts[-1] = (end[0] - head, end[1])
        ax.add_patch(PathPatch(MplPath(verts, codes), fc="none", ec=colour, lw=lw, ls=style, alpha=alpha,
                               capstyle="butt", zorder=1))
        ax.add_patch(FancyArrowPatch((end[0] - head - 0.5, end[1]), end, arrowstyle="-|>", mutation_scale=8,
                                     color=colour, lw=lw, alpha=alpha, shrinkA=0, shrinkB=0, zorder=2))
    node_style = {"input": ("#dbe9f6", "#4a6f94"), "node": ("#fdf1d0", "#9a7b2c"), "output": ("#e3f1dc", "#4f8a3a")}
    for it in lay.items:
        if it.kind == "pass":
            continue
        if it.kind == "label":
            op = lay.edges[it.edge].op or ""
            colour = FAMILY_COLOURS[op_family(op)]
            ax.text(it.x, it.y, it.text, ha="center", va="center", fontsize=LABEL_FONT, color=colour, zorder=4,
                    alpha=0.75 if it.faded else 1.0,
                    bbox=dict(boxstyle=f"round,pad={LABEL_PAD / LABEL_FONT:.3f}", fc="white", ec=colour,
                              lw=0.8, alpha=0.9 if it.faded else 1.0))
            continue
        fc, ec = node_style[it.kind]
        ls = "--" if it.faded else "-"
        ax.add_patch(FancyBboxPatch((it.x - it.w / 2, it.y - it.h / 2), it.w, it.h,
                                    boxstyle="round,pad=0,rounding_size=5", fc=fc if not it.faded else "#f2f2f2",
                                    ec=ec, lw=1.2, ls=ls, zorder=3))
        ax.text(it.x, it.y, it.text, ha="center", va="center", fontsize=NODE_FONT, zorder=5,
                color="#222222" if not it.faded else "#888888")


@functools.singledispatch
def render(genotype: Any, title: str | None = None, network: dict[str, Any] | None = None) -> Any:
    """A matplotlib Figure of a genotype in the network ``network`` (``build_network``'s settings, where
    known); register renderers for new genotype types."""
    raise NasError(f"cannot draw a {type(genotype).__name__}")


@render.register(Genotype)
def _render_cells(genotype: Genotype, title: str | None = None, network: dict[str, Any] | None = None,
                  arrange: str = "auto") -> Any:
    """The cells side by side ("row"), one above the other ("column"), or "auto": a row unless the
    cells are so deep (wide) that a column shows them clearly bigger on a 16:9 screen. A cell is drawn
    the same in every network (``network`` changes how many cells and channels, not the cell)."""
    from matplotlib.figure import Figure

    if arrange not in ("auto", "row", "column"):
        raise NasError(f"arrange must be auto, row or column, got {arrange!r}")
    layouts = [(name, layout_cell(cell, text_size)) for name, cell in genotype.cells]
    head = 24.0 if title else 0.0
    cell_head = 20.0
    between = 30.0
    row = (sum(lay.width for _, lay in layouts) + between * (len(layouts) - 1),
           cell_head + max(lay.height for _, lay in layouts))
    column = (max(lay.width for _, lay in layouts),
              sum(cell_head + lay.height for _, lay in layouts) + between * (len(layouts) - 1))
    if arrange == "auto":
        # a row unless a column would show clearly bigger on a 16:9 screen (deep, wide cells)
        def fit(size: tuple[float, float]) -> float:
            return min(SCREEN[0] / (size[0] + 2 * MARGIN), SCREEN[1] / (size[1] + head + MARGIN))

        arrange = "column" if len(layouts) > 1 and fit(column) > 1.4 * fit(row) else "row"
    inner_w, inner_h = row if arrange == "row" else column
    width = inner_w + 2 * MARGIN
    if title:
        width = max(width, text_size(title, 11)[0] + 4 * MARGIN)
    height = head + inner_h + MARGIN
    fig = Figure(figsize=(width / 72, height / 72))
    fig.patch.set_facecolor("white")
    if title:
        fig.text(0.5, 1 - (MARGIN + 6) / height, title, ha="center", va="center", fontsize=11, weight="bold")
    x0 = (width - inner_w) / 2
    x, top = x0, head
    for name, lay in layouts:
        if arrange == "column":
            x = (width - lay.width) / 2
        ax = fig.add_axes((x / width, 1 - (top + cell_head + lay.height) / height, lay.width / width,
                           lay.height / height))
        _draw_layout(ax, lay)
        fig.text((x + lay.width / 2) / width, 1 - (top + cell_head * 0.5) / height, cell_title(name, len(layouts)),
                 ha="center", va="center", fontsize=10.5)
        if arrange == "row":
            x += lay.width + between
        else:
            top += cell_head + lay.height + between
    return fig


def draw_genotype(genotype: Any, path: str | os.PathLike, title: str | None = None, dpi: int = 150,
                  network: dict[str, Any] | None = None, **options: Any) -> Path:
    """Render ``genotype`` (its cells side by side, or its blocks as built in ``network``) to ``path``
    (.png, .svg or .pdf).

    ``options`` go to the genotype's renderer (cells: ``arrange="auto" | "row" | "column"``).
    """
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    fig = render(genotype, title, network, **options)
    try:
        fig.savefig(path, dpi=dpi, facecolor="white")
    except (OSError, ValueError) as e:
        raise NasError(f"cannot write {str(path)!r}: {e}") from None
    return path


def genotype_png(genotype: Any, title: str | None = None, dpi: int = 150, network: dict[str, Any] | None = None,
                 **options: Any) -> bytes:
    """``draw_genotype`` to PNG bytes in memory (what a search worker sends back with its result)."""
    buffer = io.BytesIO()
    render(genotype, title, network, **options).savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()

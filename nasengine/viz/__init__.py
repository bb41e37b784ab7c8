"""Pictures: cell diagrams (``layout``: the geometry, ``cells``: drawing it with matplotlib, ``ops``:
op labels and colours), block diagrams of block genotypes (``blocks``) and plots of searches and
benchmarks (``plots``). matplotlib is imported only
when something is drawn, so importing this package is cheap."""

from nasengine.viz.blocks import block_rows, scaling_caption
from nasengine.viz.cells import cell_title, draw_genotype, genotype_png, render, text_size
from nasengine.viz.layout import Layout, cell_graph, layout_cell, layout_dag
from nasengine.viz.ops import FAMILY_COLOURS, op_family, short_op
from nasengine.viz.plots import (
    best_so_far,
    darts_edge_names,
    plot_alphas,
    plot_bench_curves,
    plot_best_so_far,
    plot_curves,
    plot_pareto,
    plot_study,
)

__all__ = [
    "FAMILY_COLOURS", "Layout", "best_so_far", "block_rows", "cell_graph", "cell_title", "darts_edge_names",
    "draw_genotype", "genotype_png", "layout_cell", "layout_dag", "op_family", "plot_alphas", "plot_bench_curves",
    "plot_best_so_far", "plot_curves", "plot_pareto", "plot_study", "render", "scaling_caption", "short_op",
    "text_size",
]

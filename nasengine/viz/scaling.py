"""The scaling plot: accuracy against FLOPs (log x), one line per scaling method, the grid candidates as
points, and each method's fitted saturating power law dashed."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from nasengine.viz.plots import COLOURS, _figure, _save, _si

Series = tuple[Sequence[float], Sequence[float]]


def plot_scaling(lines: Mapping[str, Series], path: str | os.PathLike, points: Mapping[str, Series] | None = None,
                 fits: Mapping[str, Series] | None = None, title: str = "") -> Path:
    """``lines``: method -> (FLOPs, accuracy) drawn as a line with markers; ``points``: name -> (FLOPs,
    accuracy) drawn as unconnected markers; ``fits``: method -> (FLOPs, accuracy) of the fitted curve,
    dashed in the method's colour."""
    from matplotlib.ticker import FuncFormatter

    fig = _figure()
    ax = fig.add_subplot()
    colour = {}
    for i, (name, (xs, ys)) in enumerate(lines.items()):
        colour[name] = COLOURS[i % len(COLOURS)]
        ax.plot(xs, ys, marker="o", color=colour[name], label=name)
    for j, (name, (xs, ys)) in enumerate((points or {}).items()):
        ax.scatter(xs, ys, marker="x", color=COLOURS[(len(lines) + j) % len(COLOURS)], label=name, zorder=3)
    for name, (xs, ys) in (fits or {}).items():
        ax.plot(xs, ys, linestyle="--", linewidth=1, color=colour.get(name, "#7f7f7f"), label=f"{name} fit")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(_si))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda x, _pos: ""))
    ax.set_xlabel("FLOPs (multiply-adds)")
    ax.set_ylabel("validation accuracy")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)

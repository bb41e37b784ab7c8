"""Draw docs/layers.png: nasengine's packages in their layers (from pyproject.toml's import-linter
layers contract) and the imports between them, read from the source with ``ast`` (drawn as the
transitive reduction, so each arrow is a dependency no other path implies).

    python docs/layers.py            # writes docs/layers.png
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nasengine"


def layers() -> list[list[str]]:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    spec = next(c for c in contracts if c["type"] == "layers")["layers"]
    return [[name.strip() for name in row.split("|")] for row in spec]


def top_level(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports() -> dict[tuple[str, str], int]:
    """(importer, imported) top-level part -> number of import statements."""
    edges: dict[tuple[str, str], int] = {}
    for path in PACKAGE.rglob("*.py"):
        src = top_level(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                parts = name.split(".")
                if parts[0] == "nasengine" and len(parts) > 1 and parts[1] != src:
                    edges[(src, parts[1])] = edges.get((src, parts[1]), 0) + 1
    return edges


def shown_edges(edges: dict[tuple[str, str], int], names: set[str]) -> list[tuple[str, str]]:
    """The imports to draw: the transitive reduction of the package graph (an import a -> c is left out
    where a -> b -> c exists); every edge when the graph has a cycle (a layering break)."""
    import networkx as nx

    g = nx.DiGraph([e for e in edges if e[0] in names and e[1] in names])
    return sorted(nx.transitive_reduction(g).edges) if nx.is_directed_acyclic_graph(g) else sorted(g.edges)


def draw(out: Path) -> Path:
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    rows = layers()
    width = max(len(r) for r in rows)
    fig = Figure(figsize=(2.0 * width + 1, 0.95 * len(rows) + 0.6))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.6, width - 0.4)
    ax.set_ylim(-0.6, len(rows) - 0.3)
    ax.axis("off")
    pos = {}
    for i, row in enumerate(rows):
        y = len(rows) - 1 - i
        offset = (width - len(row)) / 2
        for j, name in enumerate(row):
            pos[name] = (offset + j, y)
    for a, b in shown_edges(imports(), set(pos)):
        (x0, y0), (x1, y1) = pos[a], pos[b]
        upward = y1 >= y0
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=12, shrinkA=14, shrinkB=14,
                                     color="#c0392b" if upward else "#5d6d7e", alpha=0.8, linewidth=1.1, zorder=1))
    for name, (x, y) in pos.items():
        ax.add_patch(FancyBboxPatch((x - 0.3, y - 0.17), 0.6, 0.34, boxstyle="round,pad=0.02", zorder=2,
                                    facecolor="#eaf2f8", edgecolor="#2c3e50", linewidth=1))
        ax.text(x, y, name, ha="center", va="center", fontsize=10, family="monospace", zorder=3)
    title = "nasengine: packages by layer; arrows: imports (transitive reduction; red would be a break)"
    ax.text(-0.55, len(rows) - 0.45, title,
            fontsize=9, va="center")
    fig.savefig(out, dpi=130, facecolor="white")
    return out


if __name__ == "__main__":
    print(draw(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "layers.png"))

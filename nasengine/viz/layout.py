"""The layout of a small DAG (a cell) left to right, in points: pure geometry (networkx and the
standard library), which the renderer (``nasengine.viz.cells``) draws with matplotlib.

A small Sugiyama-style layered drawing (as graphviz ``dot`` does it):

1. each state gets a rank, twice its depth, so there is a free rank between two depths;
2. every edge becomes a chain of virtual items through the ranks it crosses, the one just before
   its target carrying the op label, so labels are laid out like nodes and can never overlap,
   and two ops applied to the same state (parallel edges) are two distinct, curved paths;
3. the items of each rank are ordered to reduce edge crossings (barycentre sweeps, then
   adjacent swaps), placed vertically as close to their neighbours as their order and sizes allow
   (an isotonic regression per rank), and edges are drawn as horizontal runs through columns
   joined by smooth S-curves in the gaps between columns, where no box lies; a gap is widened
   where an edge climbs steeply in it, so that crossings there stay easy to follow.

Boxes are sized to their text by a ``text_size(text, points) -> (width, height)`` the caller passes
(the renderer's measures the font it draws with), so the layout needs no font code of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from nasengine.core.genotype import Cell, Genotype
from nasengine.viz.ops import op_family, short_op

#: (text, font size in points) -> (width, height) in points
TextSize = Callable[[str, float], tuple[float, float]]

NODE_FONT = 10.0
LABEL_FONT = 8.5
LABEL_PAD = 2.5        # text to label box, points
COLUMN_GAP = 28.0      # horizontal room for the curves between two columns, at least
MAX_COLUMN_GAP = 60.0  # ... and at most
CURVE_RUN = 0.9        # gap width per point of height an edge changes in it
PORT_GAP = 9.0         # vertical distance between edge ends on a node's side
MARGIN = 10.0


@dataclass
class Item:
    """Something placed in one rank: a real node, an edge's label, or an edge passing through."""

    id: int
    kind: str              # "input" | "node" | "output" | "label" | "pass"
    rank: int
    w: float
    h: float
    text: str = ""
    node: Any = None       # the graph node (real items)
    edge: int | None = None  # index into Layout.edges (virtual items)
    x: float = 0.0
    y: float = 0.0
    faded: bool = False


@dataclass
class LaidEdge:
    src: Any
    dst: Any
    op: str | None         # None: an edge into the output concat (no label)
    faded: bool = False    # feeds a state that never reaches the output
    items: list[int] = field(default_factory=list)  # virtual items, left to right
    points: list[tuple[float, float]] = field(default_factory=list)  # src port, column runs, dst port


@dataclass
class Layout:
    items: list[Item]
    edges: list[LaidEdge]
    width: float
    height: float

    def real(self) -> list[Item]:
        return [i for i in self.items if i.kind in ("input", "node", "output")]


def _depths(g: nx.MultiDiGraph) -> dict[Any, int]:
    depth: dict[Any, int] = {}
    outputs = [n for n, d in g.nodes(data=True) if d.get("kind") == "output"]
    for n in nx.topological_sort(g):
        if n in outputs:
            continue
        preds = list(g.predecessors(n))
        depth[n] = 1 + max(depth[p] for p in preds) if preds else 0
    last = max(depth.values(), default=0)
    for n in outputs:
        depth[n] = last + 1
    return depth


def _pava(targets: list[float], weights: list[float]) -> list[float]:
    """Weighted isotonic (non-decreasing) regression: pool adjacent violators."""
    blocks: list[list[float]] = []  # [value, weight, count]
    for t, w in zip(targets, weights):
        blocks.append([t, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out: list[float] = []
    for v, _, c in blocks:
        out += [v] * c
    return out


def _gap(a: Item, b: Item) -> float:
    if a.kind == "pass" and b.kind == "pass":
        return 7.0
    if "label" in (a.kind, b.kind) and "pass" in (a.kind, b.kind):
        return 6.0
    if a.kind == "label" and b.kind == "label":
        return 5.0
    return 12.0


def layout_dag(g: nx.MultiDiGraph, labels: dict[Any, str], text_size: TextSize, fixed_first_rank: bool = True,
               faded: set | None = None) -> Layout:
    """Lay out a small DAG left to right; see the module docstring.

    Nodes carry ``kind`` ("input", "node", "output"); edges carry ``op`` ("concat" or None for an
    unlabelled edge). ``labels`` gives each node's text; ``text_size`` measures texts. ``faded``:
    nodes drawn faded, with their edges. Coordinates are points, y downwards.
    """
    faded = faded or set()
    depth = _depths(g)
    items: list[Item] = []
    item_of: dict[Any, int] = {}

    def add(kind: str, rank: int, w: float, h: float, **kw: Any) -> Item:
        item = Item(len(items), kind, rank, w, h, **kw)
        items.append(item)
        return item

    # nodes in a stable order: inputs and states as the graph lists them
    for n in g.nodes:
        kind = g.nodes[n].get("kind", "node")
        text = labels.get(n, str(n))
        tw = text_size(text, NODE_FONT)[0]
        w = max(tw + 14, 26.0)
        n_in, n_out = g.in_degree(n), g.out_degree(n)
        h = max(24.0, (max(n_in, n_out) - 1) * PORT_GAP + 16)
        item = add(kind, 2 * depth[n], w, h, text=text, node=n, faded=n in faded)
        item_of[n] = item.id

    edges: list[LaidEdge] = []
    pred: dict[int, list[int]] = {i.id: [] for i in items}
    succ: dict[int, list[int]] = {i.id: [] for i in items}

    def link(a: int, b: int) -> None:
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)

    for u, v, data in g.edges(data=True):
        op = data.get("op")
        op = None if op == "concat" else op
        e = LaidEdge(u, v, op, faded=u in faded or v in faded)
        ei = len(edges)
        edges.append(e)
        ru, rv = 2 * depth[u], 2 * depth[v]
        prev = item_of[u]
        for r in range(ru + 1, rv):
            if r == rv - 1 and op is not None:
                text = short_op(op)
                tw = text_size(text, LABEL_FONT)[0]
                it = add("label", r, tw + 2 * LABEL_PAD + 2, LABEL_FONT * 1.25 + 2 * LABEL_PAD, text=text, edge=ei,
                         faded=op_family(op) == "none" or e.faded)
            else:
                it = add("pass", r, 0.0, 1.5, edge=ei)
            e.items.append(it.id)
            link(prev, it.id)
            prev = it.id
        link(prev, item_of[v])

    n_ranks = max(i.rank for i in items) + 1
    layers: list[list[int]] = [[] for _ in range(n_ranks)]
    for it in items:
        layers[it.rank].append(it.id)

    _order(layers, pred, succ, fixed_first_rank)
    _place_y(layers, items, pred, succ)

    top = min(it.y - it.h / 2 for it in items)
    for it in items:
        it.y += MARGIN - top
    height = max(it.y + it.h / 2 for it in items) + MARGIN

    # x: one column per rank, as wide as its widest item, and gaps as wide as their curves need
    col_w = [max((items[i].w for i in layer), default=0.0) for layer in layers]
    chains = _chains(edges, items, item_of)
    gaps = _gaps(chains, n_ranks)
    x = MARGIN
    col_x = []
    for r in range(n_ranks):
        col_x.append(x + col_w[r] / 2)
        x += col_w[r] + (gaps[r] if r < n_ranks - 1 else 0.0)
    width = x + MARGIN
    for it in items:
        it.x = col_x[it.rank]

    _route(edges, chains, items, item_of, col_x, col_w)
    return Layout(items, edges, width, height)


def _gaps(chains: list[list[tuple[int, float]]], n_ranks: int) -> list[float]:
    """The width of the gap after each column: ``COLUMN_GAP``, widened where an edge changes height a
    lot in it so that its S-curve stays gentle and crossings there are easy to follow."""
    rise = [0.0] * max(n_ranks - 1, 0)
    for chain in chains:
        for (rank, y0), (_, y1) in zip(chain, chain[1:]):
            rise[rank] = max(rise[rank], abs(y1 - y0))
    return [min(MAX_COLUMN_GAP, max(COLUMN_GAP, CURVE_RUN * r)) for r in rise]


def _crossings(upper: list[int], lower_pos: dict[int, int], upper_pos: dict[int, int],
               succ: dict[int, list[int]]) -> int:
    segs = [(upper_pos[a], lower_pos[b]) for a in upper for b in succ.get(a, ()) if b in lower_pos]
    n = 0
    for i in range(len(segs)):
        a1, b1 = segs[i]
        for j in range(i + 1, len(segs)):
            a2, b2 = segs[j]
            if (a1 - a2) * (b1 - b2) < 0:
                n += 1
    return n


def _total_crossings(layers: list[list[int]], succ: dict[int, list[int]]) -> int:
    pos = [{v: k for k, v in enumerate(layer)} for layer in layers]
    return sum(_crossings(layers[r], pos[r + 1], pos[r], succ) for r in range(len(layers) - 1))


def _order(layers: list[list[int]], pred: dict[int, list[int]], succ: dict[int, list[int]],
           fixed_first_rank: bool) -> None:
    """Reorder each rank in place to reduce crossings (barycentre sweeps, then adjacent swaps)."""
    best = [list(layer) for layer in layers]
    best_n = _total_crossings(layers, succ)
    first = 1 if fixed_first_rank else 0
    for sweep in range(8):
        down = sweep % 2 == 0
        ranks = range(1, len(layers)) if down else range(len(layers) - 2, first - 1, -1)
        for r in ranks:
            ref = layers[r - 1] if down else layers[r + 1]
            ref_pos = {v: k for k, v in enumerate(ref)}
            nbrs = pred if down else succ
            keys: dict[int, tuple[float, int]] = {}
            for k, v in enumerate(layers[r]):  # barycentre of the neighbours; no neighbour: stays put
                ps = [ref_pos[p] for p in nbrs.get(v, ()) if p in ref_pos]
                keys[v] = (sum(ps) / len(ps) if ps else k, k)
            layers[r].sort(key=keys.__getitem__)
        n = _total_crossings(layers, succ)
        if n < best_n:
            best, best_n = [list(layer) for layer in layers], n
    for r, layer in enumerate(best):
        layers[r][:] = layer
    # adjacent swaps while they help
    improved = True
    while improved and best_n:
        improved = False
        for r in range(first, len(layers)):
            for k in range(len(layers[r]) - 1):
                layers[r][k], layers[r][k + 1] = layers[r][k + 1], layers[r][k]
                n = _total_crossings(layers, succ)
                if n < best_n:
                    best_n, improved = n, True
                else:
                    layers[r][k], layers[r][k + 1] = layers[r][k + 1], layers[r][k]


def _place_y(layers: list[list[int]], items: list[Item], pred: dict[int, list[int]],
             succ: dict[int, list[int]]) -> None:
    """Vertical positions: each item near the mean of its neighbours, keeping order and spacing."""
    for layer in layers:  # start stacked and centred
        y = 0.0
        for k, i in enumerate(layer):
            if k:
                y += (items[layer[k - 1]].h + items[i].h) / 2 + _gap(items[layer[k - 1]], items[i])
            items[i].y = y
        for i in layer:
            items[i].y -= y / 2

    def weight(a: Item, b: Item) -> float:
        # straighten long edges: virtual-to-virtual links pull harder
        return 4.0 if a.kind in ("pass", "label") and b.kind in ("pass", "label") else 1.0

    for sweep in range(60):
        order = range(len(layers)) if sweep % 2 == 0 else range(len(layers) - 1, -1, -1)
        for r in order:
            layer = layers[r]
            targets, weights, offsets = [], [], []
            off = 0.0
            for k, i in enumerate(layer):
                it = items[i]
                if k:
                    prev = items[layer[k - 1]]
                    off += (prev.h + it.h) / 2 + _gap(prev, it)
                nb = pred.get(i, []) + succ.get(i, [])
                if nb:
                    ws = [weight(it, items[j]) for j in nb]
                    target = sum(items[j].y * w for j, w in zip(nb, ws)) / sum(ws)
                    wt = sum(ws)
                else:
                    target, wt = it.y, 0.1
                targets.append(target - off)
                weights.append(wt)
                offsets.append(off)
            for i, z, off in zip(layer, _pava(targets, weights), offsets):
                items[i].y = z + off


def _ports(item: Item, n: int) -> list[float]:
    """y of ``n`` edge ends on one side of a real node, top to bottom."""
    if n <= 1:
        return [item.y] * n
    gap = min(PORT_GAP, (item.h - 10) / (n - 1))
    return [item.y + (k - (n - 1) / 2) * gap for k in range(n)]


def _chains(edges: list[LaidEdge], items: list[Item], item_of: dict[Any, int]) -> list[list[tuple[int, float]]]:
    """Each edge as (rank, y) left to right: its port on the source, its virtual items, its port on the
    target. A node's ports are ordered like the edges' first (last) virtual items, so they never cross."""
    out_port: dict[int, float] = {}
    in_port: dict[int, float] = {}
    by_src: dict[Any, list[int]] = {}
    by_dst: dict[Any, list[int]] = {}
    for ei, e in enumerate(edges):
        by_src.setdefault(e.src, []).append(ei)
        by_dst.setdefault(e.dst, []).append(ei)
    for node, eis in by_src.items():
        first = sorted(eis, key=lambda ei: (items[edges[ei].items[0]].y, ei))
        out_port.update(zip(first, _ports(items[item_of[node]], len(first))))
    for node, eis in by_dst.items():
        last = sorted(eis, key=lambda ei: (items[edges[ei].items[-1]].y, ei))
        in_port.update(zip(last, _ports(items[item_of[node]], len(last))))
    return [[(items[item_of[e.src]].rank, out_port[ei])] + [(items[i].rank, items[i].y) for i in e.items]
            + [(items[item_of[e.dst]].rank, in_port[ei])] for ei, e in enumerate(edges)]


def _route(edges: list[LaidEdge], chains: list[list[tuple[int, float]]], items: list[Item],
           item_of: dict[Any, int], col_x: list[float], col_w: list[float]) -> None:
    """Each edge's points: straight out of the source to the edge of its column, through every column
    the edge crosses, then straight from the edge of the target's column into the target; so curves
    lie only in the gaps between columns."""
    for e, chain in zip(edges, chains):
        s, d = items[item_of[e.src]], items[item_of[e.dst]]
        pts = [(s.x + s.w / 2, chain[0][1])]
        for rank, y in chain:
            pts += [(col_x[rank] - col_w[rank] / 2, y), (col_x[rank] + col_w[rank] / 2, y)]
        pts = pts[:1] + pts[2:-1] + [(d.x - d.w / 2, chain[-1][1])]
        e.points = [p for k, p in enumerate(pts) if k == 0 or p != pts[k - 1]]


def edge_path(points: list[tuple[float, float]]) -> tuple[list[tuple[float, float]], list[str]]:
    """The drawn geometry of an edge through its points: ("L", end) for straight runs, ("C", c1, c2,
    end) S-curves with horizontal tangents where the height changes. Returns (vertices, codes)
    with codes "M", "L", "C" per vertex (three "C" vertices per curve)."""
    verts, codes = [points[0]], ["M"]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if abs(y1 - y0) < 0.01:
            verts.append((x1, y1))
            codes.append("L")
        else:
            mx = (x1 - x0) / 2
            verts += [(x0 + mx, y0), (x1 - mx, y1), (x1, y1)]
            codes += ["C", "C", "C"]
    return verts, codes


def sample_edge(points: list[tuple[float, float]], steps: int = 24) -> list[tuple[float, float]]:
    """Points along the drawn edge (for checks: what the line covers)."""
    verts, codes = edge_path(points)
    out = [verts[0]]
    k = 1
    while k < len(verts):
        p0 = verts[k - 1]
        if codes[k] == "L":
            for i in range(1, steps + 1):
                t = i / steps
                out.append((p0[0] + (verts[k][0] - p0[0]) * t, p0[1] + (verts[k][1] - p0[1]) * t))
            k += 1
        else:
            c1, c2, p1 = verts[k], verts[k + 1], verts[k + 2]
            for i in range(1, steps + 1):
                t = i / steps
                u = 1 - t
                out.append(tuple(u ** 3 * a + 3 * u * u * t * b + 3 * u * t * t * c + t ** 3 * d
                                 for a, b, c, d in zip(p0, c1, c2, p1)))
            k += 3
    return out


# ---- cells ---------------------------------------------------------------------------------------------
def input_labels(n_inputs: int) -> list[str]:
    """h_{i-2}, h_{i-1} for two inputs (state 0 is the previous-previous cell); "in" for one."""
    if n_inputs == 1:
        return ["in"]
    return [f"$h_{{i-{n_inputs - s}}}$" for s in range(n_inputs)]


def cell_graph(cell: Cell) -> tuple[nx.MultiDiGraph, dict[Any, str], set]:
    """The cell as a DAG (from ``Genotype.graph()``), node texts, and the states that feed nothing."""
    g = Genotype((("cell", cell),)).graph()
    g = nx.relabel_nodes(g, {n: n[1] for n in g.nodes})
    labels: dict[Any, str] = {s: t for s, t in enumerate(input_labels(cell.n_inputs))}
    for s in range(cell.n_inputs, cell.n_states):
        labels[s] = str(s)
    labels["out"] = "concat" if len(cell.output_states()) > 1 else "out"
    alive = nx.ancestors(g, "out") | {"out"}
    return g, labels, set(g.nodes) - alive


def layout_cell(cell: Cell, text_size: TextSize) -> Layout:
    """The cell's layout, states that feed nothing faded."""
    g, labels, dead = cell_graph(cell)
    return layout_dag(g, labels, text_size, faded=dead)

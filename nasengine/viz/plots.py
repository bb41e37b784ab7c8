"""Plots of a search as PNG files: best-so-far, accuracy against cost with the Pareto front,
learning curves, DARTS architecture weights over epochs, and a tabular benchmark's curves.

The plotting functions take plain numbers (so a benchmark or a DARTS run can use them without a
study); ``plot_study`` takes a study's trials (Optuna's ``FrozenTrial`` or anything shaped like
it) and writes them all. matplotlib is imported inside the functions (and only its object API is
used, never pyplot, so no global backend state: PNGs go through Agg), which keeps
``import nasengine.viz.plots`` cheap.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nasengine.core.pareto import pareto_front
from nasengine.errors import NasError
from nasengine.viz.ops import FAMILY_COLOURS, op_family, short_op

DPI = 150
#: one colour per compared series (tab10's order, minus its light ones)
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#e07b00", "#8c564b", "#17becf", "#7f7f7f"]


# ---- helpers --------------------------------------------------------------------------------------
def _figure(width: float = 6.4, height: float = 4.2) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    fig.patch.set_facecolor("white")
    return fig


def _save(fig: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=DPI, facecolor="white")
    except (OSError, ValueError) as e:
        raise NasError(f"cannot write {str(path)!r}: {e}") from None
    return path


def best_so_far(values: Sequence[float | None], maximize: bool = True) -> list[float | None]:
    """The running best of ``values`` in order (None entries, failed trials, are skipped)."""
    out: list[float | None] = []
    best: float | None = None
    for v in values:
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            if best is None or (v > best if maximize else v < best):
                best = v
        out.append(best)
    return out


def _si(x: float, _pos: Any = None) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= div:
            return f"{x / div:g}{unit}"
    return f"{x:g}"


# ---- search plots ---------------------------------------------------------------------------------
def plot_best_so_far(runs: Sequence[float | None] | Mapping[str, Sequence[float | None]], path: str | os.PathLike,
                     title: str | None = None, ylabel: str = "validation accuracy", maximize: bool = True) -> Path:
    """Each trial's value (dots) and the best so far (a step line) against the trial number.

    ``runs``: values in trial order (None: failed, drawn as a tick at the bottom), or a mapping
    name -> such a list to compare several searches (best-so-far lines only for more than one).
    """
    series = dict(runs) if isinstance(runs, Mapping) else {"": list(runs)}
    if not any(v is not None for vs in series.values() for v in vs):
        raise NasError("nothing to plot: no finished trial has a value")
    fig = _figure()
    ax = fig.add_subplot()
    n = max(len(vs) for vs in series.values())
    dot = 12 if n <= 300 else 6 if n <= 2000 else 3
    for k, (name, values) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        xs = list(range(len(values)))
        if len(series) == 1:
            ok = [(x, v) for x, v in zip(xs, values) if v is not None]
            ax.scatter([x for x, _ in ok], [v for _, v in ok], s=dot, color="#9ab7d3", label="trial", zorder=2,
                       linewidths=0)
            failed = [x for x, v in zip(xs, values) if v is None]
            if failed:
                ax.scatter(failed, [0] * len(failed), marker="|", s=40 if n <= 300 else 15, color="#d62728",
                           alpha=1 if n <= 300 else 0.5, label=f"failed ({len(failed)})",
                           transform=ax.get_xaxis_transform(), clip_on=False, zorder=3)
        best = best_so_far(values, maximize)
        pts = [(x, b) for x, b in zip(xs, best) if b is not None]
        ax.step([x for x, _ in pts], [b for _, b in pts], where="post", color=colour, lw=2,
                label=f"{name} best so far".strip(), zorder=4)
    ax.set_xlabel("trial")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_pareto(costs: Sequence[float], values: Sequence[float], path: str | os.PathLike, xlabel: str = "parameters",
                ylabel: str = "validation accuracy", labels: Sequence[Any] | None = None,
                title: str | None = None, front: Sequence[int] | None = None,
                front_label: str = "Pareto front") -> Path:
    """Value against cost for every point, the Pareto front (low cost, high value) highlighted and
    its points labelled (``labels``, e.g. trial numbers) where a label has room; the dominated points
    faded. ``front``: the indices to highlight when the front is another one than this plane's (a
    multi-objective study's, of more objectives); the staircase joins those of them this plane's
    front holds."""
    if len(costs) != len(values):
        raise NasError(f"plot_pareto: {len(costs)} costs but {len(values)} values")
    if not costs:
        raise NasError(f"nothing to plot: no trial has both {xlabel} and a value")
    from matplotlib.ticker import FuncFormatter

    fig = _figure()
    ax = fig.add_subplot()
    # low cost, high value; in increasing cost for the staircase
    if front is None:
        front = pareto_front(list(zip(costs, values)), (False, True))
    front = sorted(set(front), key=lambda i: (costs[i], -values[i]))
    on = set(front)
    ax.scatter([c for i, c in enumerate(costs) if i not in on], [v for i, v in enumerate(values) if i not in on],
               s=14 if len(costs) <= 300 else 6 if len(costs) <= 2000 else 3, color="#9ab7d3", alpha=0.6,
               label="dominated trial", zorder=2, linewidths=0)
    stairs = [front[k] for k in pareto_front([(costs[i], values[i]) for i in front], (False, True))]
    ax.step([costs[i] for i in stairs], [values[i] for i in stairs], where="post", color="#d62728", lw=1.5, zorder=3)
    fx, fy = [costs[i] for i in front], [values[i] for i in front]
    ax.scatter(fx, fy, s=28, color="#d62728", edgecolor="white", linewidth=0.6, label=front_label, zorder=4)
    positive = [c for c in costs if c > 0]
    log_x = bool(positive) and len(positive) == len(costs) and max(positive) / min(positive) > 30
    if log_x:
        ax.set_xscale("log")
    if labels is not None:
        # label front points, skipping any label that would touch one already placed (approximate
        # positions in inches on an axes of about 5.6 x 3.2 in)
        xs = [math.log10(c) if log_x else c for c in costs]
        x_span = (max(xs) - min(xs)) or 1.0
        y_span = (max(values) - min(values)) or 1.0
        placed: list[tuple[float, float]] = []
        for i in front:
            x, y = (xs[i] - min(xs)) / x_span * 5.6, (values[i] - min(values)) / y_span * 3.2
            if all(abs(x - px) > 0.45 or abs(y - py) > 0.14 for px, py in placed):
                placed.append((x, y))
                ax.annotate(str(labels[i]), (costs[i], values[i]), textcoords="offset points", xytext=(4, -10),
                            fontsize=7, color="#8b1a1a")
    ax.xaxis.set_major_formatter(FuncFormatter(_si))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_curves(curves: Mapping[Any, Sequence[float] | Mapping[int, float]], path: str | os.PathLike,
                title: str | None = None, ylabel: str = "validation accuracy", xlabel: str = "epoch") -> Path:
    """Learning curves, one line per key: a list (x = 1, 2, ...) or a mapping step -> value (an
    Optuna trial's ``intermediate_values``; x = the step). The legend names up to 10."""
    from matplotlib.ticker import MaxNLocator

    series = {}
    for k, v in curves.items():
        pts = sorted(v.items()) if isinstance(v, Mapping) else list(enumerate(v, start=1))
        if pts:
            series[k] = pts
    if not series:
        raise NasError("nothing to plot: no trial reported a learning curve")
    fig = _figure()
    ax = fig.add_subplot()
    for k, pts in series.items():
        ax.plot([x for x, _ in pts], [y for _, y in pts], lw=1.2, marker="o" if len(pts) <= 12 else None, ms=3,
                label=str(k) if len(series) <= 10 else None)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) <= 10:
        ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title)
    return _save(fig, path)


# ---- a tabular benchmark's runs ---------------------------------------------------------------------
def plot_bench_curves(curves: Mapping[str, Sequence[Sequence[float]]], optimum: float, path: str | os.PathLike,
                      title: str | None = None, ylabel: str = "best value so far") -> Path:
    """Searches compared by how fast they approach a known optimum (a value to maximise): two panels
    against the number of queries, the best value so far and the regret (optimum minus best so far)
    on a log scale, where the last steps to the optimum are visible.

    ``curves``: algorithm name -> one best-so-far curve per seed (equal lengths within an algorithm).
    Each algorithm is drawn as the median over its seeds in a band holding the middle half of them
    (25th to 75th percentile): a mean ± std band reaches above the optimum in the first queries (the
    values are skewed) and has no log form for the regret. The value panel's y-axis holds every
    median line whole, from its first query to the optimum (the band of the first few queries may
    run below it; the regret panel shows everything); a regret of 0, the optimum found, is drawn on
    a dashed line at the regret panel's bottom.
    """
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    arrays = {}
    for name, runs in curves.items():
        if not runs or len({len(c) for c in runs}) != 1 or not len(runs[0]):
            raise NasError(f"plot_bench_curves: {name!r} needs one or more curves of one nonzero length")
        arrays[name] = np.asarray(runs, dtype=float)
    if not arrays:
        raise NasError("nothing to plot: no algorithm has a curve")
    top = max(float(a.max()) for a in arrays.values())
    if top > optimum + 1e-9 * max(1.0, abs(optimum)):
        raise NasError(f"plot_bench_curves: a curve reaches {top:g}, above the optimum {optimum:g}")
    regrets = {name: np.maximum(optimum - a, 0.0) for name, a in arrays.items()}
    positive = [float(r[r > 0].min()) for r in regrets.values() if (r > 0).any()]
    floor = min(positive) / 3 if positive else 1e-3 * max(1.0, abs(optimum))

    fig = _figure(11, 4.4)
    value_ax, regret_ax = fig.subplots(1, 2)
    lowest = optimum
    for k, (name, a) in enumerate(arrays.items()):
        colour = COLOURS[k % len(COLOURS)]
        x = np.arange(1, a.shape[1] + 1)
        low, mid, high = np.percentile(a, [25, 50, 75], axis=0)
        lowest = min(lowest, float(mid.min()))
        value_ax.plot(x, mid, color=colour, lw=1.8, drawstyle="steps-post", label=f"{name} ({a.shape[0]} seeds)")
        value_ax.fill_between(x, low, high, color=colour, alpha=0.15, lw=0, step="post")
        r_low, r_mid, r_high = (np.maximum(q, floor) for q in np.percentile(regrets[name], [25, 50, 75], axis=0))
        regret_ax.plot(x, r_mid, color=colour, lw=1.8, drawstyle="steps-post")
        regret_ax.fill_between(x, r_low, r_high, color=colour, alpha=0.15, lw=0, step="post")
    value_ax.axhline(optimum, color="black", ls=":", lw=1, label=f"optimum {optimum:g}")
    pad = 0.04 * (optimum - lowest) or 1.0
    value_ax.set_ylim(lowest - pad, optimum + pad)
    value_ax.set_ylabel(ylabel)
    value_ax.set_title("median and middle half of the seeds", fontsize=9)
    regret_ax.set_yscale("log")
    regret_ax.set_ylim(bottom=floor / 1.3)
    regret_ax.axhline(floor, color="#555555", ls="--", lw=0.8)
    regret_ax.text(0.99, floor * 1.08, "0: the optimum found", transform=regret_ax.get_yaxis_transform(),
                   ha="right", va="bottom", fontsize=7, color="#555555")
    regret_ax.set_ylabel("regret: optimum − best so far")
    regret_ax.set_title("regret, log scale", fontsize=9)
    n = max(a.shape[1] for a in arrays.values())
    for ax in (value_ax, regret_ax):
        ax.set_xlim(1, max(n, 2))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("queries")
        ax.grid(alpha=0.3)
        ax.grid(alpha=0.12, which="minor")
    fig.legend(loc="outside lower center", ncols=min(len(arrays) + 1, 5), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


# ---- DARTS architecture weights -------------------------------------------------------------------
def darts_edge_names(n_edges: int, n_inputs: int = 2) -> list[str]:
    """``"0→2"``-style names of a DARTS/NB201 mixed-op cell's edges in their usual order (node by
    node, each reading every earlier state), or ``"edge k"`` where ``n_edges`` fits no such cell."""
    names, k = [], 0
    while len(names) < n_edges:
        names += [f"{s}→{n_inputs + k}" for s in range(n_inputs + k)]
        k += 1
    return names if len(names) == n_edges else [f"edge {i}" for i in range(n_edges)]


def _softmax_rows(a: Any) -> Any:
    import numpy as np

    z = a - a.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def plot_alphas(alphas_by_epoch: Any, path: str | os.PathLike, op_names: Sequence[str] | None = None,
                edge_names: Sequence[str] | None = None, softmax: bool | None = None, title: str | None = None,
                n_inputs: int = 2) -> Path:
    """Architecture weights per edge over epochs: one small panel per edge, one line per op.

    ``alphas_by_epoch``: an array (or nested lists) shaped epochs x edges x ops, or a mapping cell
    name -> such an array (one row of panels per cell). ``softmax``: True applies a softmax over the
    ops (raw DARTS alphas), False plots as given, None (default) applies it unless every row is
    already a distribution. ``op_names`` default to ``op 0..``; ``edge_names`` to ``darts_edge_names``.
    """
    import numpy as np
    from matplotlib.lines import Line2D

    cells = dict(alphas_by_epoch) if isinstance(alphas_by_epoch, Mapping) else {"": alphas_by_epoch}
    arrays = {}
    for name, a in cells.items():
        a = np.asarray(a, dtype=float)
        if a.ndim != 3 or 0 in a.shape:
            raise NasError(f"alphas must be shaped epochs x edges x ops, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise NasError("alphas contain NaN or infinite values")
        arrays[name] = a
    n_ops = {a.shape[2] for a in arrays.values()}
    if len(n_ops) != 1:
        raise NasError(f"every cell needs the same number of ops, got {sorted(n_ops)}")
    n_ops_ = n_ops.pop()
    ops = list(op_names) if op_names is not None else [f"op {i}" for i in range(n_ops_)]
    if len(ops) != n_ops_:
        raise NasError(f"{len(ops)} op names for alphas with {n_ops_} ops")
    # one colour per op: its family's colour, varied in shade within a family
    from matplotlib.colors import to_rgb

    seen: dict[str, int] = {}
    colours, styles = [], []
    for o, op in enumerate(ops):
        if op_names is None:
            colours.append(f"C{o % 10}")
            styles.append("-" if o < 10 else "--")
            continue
        fam = op_family(op)
        k = seen.get(fam, 0)
        seen[fam] = k + 1
        base = np.array(to_rgb(FAMILY_COLOURS[fam]))
        colours.append(tuple(base + (1 - base) * min(0.45 * k, 0.7)))  # lighter for the family's later ops
        styles.append("--" if fam == "none" else ("-" if k % 2 == 0 else "-."))

    # panels: one row per node where the edges are a DARTS/NB201 cell's (node k reads every earlier
    # state), else rows of up to 7 edges
    def rows_of(n_edges: int) -> list[list[int]]:
        if edge_names is None and not darts_edge_names(n_edges, n_inputs)[0].startswith("edge"):
            rows, start, k = [], 0, 0
            while start < n_edges:
                rows.append(list(range(start, start + n_inputs + k)))
                start += n_inputs + k
                k += 1
            return rows
        return [list(range(i, min(i + 7, n_edges))) for i in range(0, n_edges, 7)]

    layout = {name: rows_of(a.shape[1]) for name, a in arrays.items()}
    n_cols = max(len(r) for rows in layout.values() for r in rows)
    n_rows = sum(len(rows) for rows in layout.values())
    probs, applied = {}, []
    for name, a in arrays.items():
        apply = softmax if softmax is not None else not (
            (a >= 0).all() and np.allclose(a.sum(axis=-1), 1.0, atol=1e-3))
        applied.append(apply)
        probs[name] = _softmax_rows(a) if apply else a
    lo = min(0.0, min(float(p.min()) for p in probs.values()))
    hi = max(float(p.max()) for p in probs.values())
    hi = hi + 0.06 * (hi - lo) if hi > lo else lo + 1
    # a fixed grid (no layout engine: with dozens of panels constrained layout takes seconds); all
    # panels share one y scale so edges compare at a glance
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panel_w, panel_h, left, right, top, bottom = 1.7, 1.3, 0.75, 0.15, 0.6, 0.75
    width, height = left + right + panel_w * n_cols, top + bottom + panel_h * n_rows
    fig = Figure(figsize=(width, height))
    fig.patch.set_facecolor("white")
    grid = fig.add_gridspec(n_rows, n_cols, left=left / width, right=1 - right / width, top=1 - top / height,
                            bottom=bottom / height, wspace=0.12, hspace=0.55)
    row = 0
    for name, a in arrays.items():
        names = list(edge_names) if edge_names is not None else darts_edge_names(a.shape[1], n_inputs)
        if len(names) != a.shape[1]:
            raise NasError(f"{len(names)} edge names for alphas with {a.shape[1]} edges")
        epochs = np.arange(1, a.shape[0] + 1)
        for edges in layout[name]:
            for col, e in enumerate(edges):
                ax = fig.add_subplot(grid[row, col])
                for o in range(n_ops_):
                    ax.plot(epochs, probs[name][:, e, o], color=colours[o], ls=styles[o], lw=1.2)
                ax.set_ylim(lo, hi)
                ax.set_xlim(1, max(2, a.shape[0]))
                ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))
                ax.yaxis.set_major_locator(MaxNLocator(4))
                ax.set_title(f"{name}: {names[e]}" if name else names[e], fontsize=8, pad=3)
                ax.tick_params(labelsize=6, length=2, pad=1.5)
                if col:
                    ax.tick_params(labelleft=False)
                ax.grid(alpha=0.25)
            row += 1
    apply = any(applied)
    fig.text(0.2 / width, 0.5, "weight" if apply else "alpha", rotation=90, va="center", ha="center", fontsize=8)
    fig.text(0.5, 0.42 / height, "epoch", ha="center", va="center", fontsize=8)
    handles = [Line2D([], [], color=c, ls=s, lw=1.5) for c, s in zip(colours, styles)]
    fig.legend(handles, [short_op(o) if op_names is not None else o for o in ops], loc="lower center",
               bbox_to_anchor=(0.5, 0.0), ncols=min(len(ops), 8), fontsize=8, frameon=False)
    fig.suptitle(title or ("architecture weights (softmax over ops) against epoch" if apply
                           else "architecture weights against epoch"), fontsize=10, y=1 - 0.22 / height)
    return _save(fig, path)


# ---- a whole study ----------------------------------------------------------------------------------
def plot_study(name: str, maximize: bool, trials: Sequence[Any], out_dir: str | os.PathLike,
               top: int = 10, objectives: Sequence[str] = ("accuracy",),
               directions: Sequence[bool] | None = None) -> list[Path]:
    """Every plot a study supports, into ``out_dir``: best_so_far.png, accuracy_vs_params.png,
    accuracy_vs_flops.png, accuracy_vs_latency.png (where trials record those) and curves.png (the
    learning curves of the ``top`` best trials). Returns the paths written.

    Accuracy is the trials' ``accuracy`` attr (their value in studies from before it). A multi-objective
    study (``objectives``, 2 or 3, and ``directions``: maximise each or not) highlights and labels the
    trials on the front of all its objectives in each plane; another study, the plane's own front.
    ``name`` titles the plots; ``maximize``: the study's (first) direction. ``trials``: objects with
    ``number``, ``state`` (compared by ``state.name``: COMPLETE, FAIL, PRUNED, RUNNING ...),
    ``values``, ``user_attrs`` and ``intermediate_values``, as Optuna's ``FrozenTrial`` has them
    (``study.get_trials()``), so that this module needs no Optuna.
    """
    out = Path(out_dir)
    trials = sorted(trials, key=lambda t: t.number)
    finished = [t for t in trials if t.state.name in ("COMPLETE", "FAIL", "PRUNED")]
    complete = [t for t in finished if t.state.name == "COMPLETE" and t.values]
    if not complete:
        raise NasError(f"study {name!r} has no complete trials to plot yet")
    written = []
    by_number = {t.number: (t.values[0] if t.state.name == "COMPLETE" and t.values else None) for t in finished}
    last = max(by_number)
    values = [by_number.get(n) for n in range(last + 1)]
    first = objectives[0] if objectives else "accuracy"
    ylabel = "validation accuracy" if first == "accuracy" else first
    written.append(plot_best_so_far(values, out / "best_so_far.png", title=f"{name}: best {first} so far",
                                    ylabel=ylabel, maximize=maximize))
    on_front: set[int] | None = None
    if len(objectives) > 1 and directions is not None:
        scored = [t for t in complete if len(t.values) == len(objectives)]
        on_front = {scored[i].number for i in pareto_front([t.values for t in scored], directions)}

    def accuracy(t: Any) -> Any:
        return t.user_attrs.get("accuracy", t.values[0] if first == "accuracy" else None)

    for attr, label, file in (("params", "parameters", "accuracy_vs_params.png"),
                              ("flops", "FLOPs (multiply-adds)", "accuracy_vs_flops.png"),
                              ("latency_ms", "latency (ms)", "accuracy_vs_latency.png")):
        pts = [(float(t.user_attrs[attr]), float(accuracy(t)), t.number) for t in complete
               if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (t.user_attrs.get(attr),
                                                                                       accuracy(t)))]
        if pts:
            front = None if on_front is None else [i for i, p in enumerate(pts) if p[2] in on_front]
            what = f" of {', '.join(objectives)}" if on_front is not None else ""
            written.append(plot_pareto([p[0] for p in pts], [p[1] for p in pts], out / file, xlabel=label,
                                       labels=[p[2] for p in pts], front=front, front_label=f"Pareto front{what}",
                                       title=f"{name}: accuracy against {label}"))
    best = sorted(complete, key=lambda t: (-t.values[0] if maximize else t.values[0], t.number))[:top]
    curves = {f"trial {t.number}": dict(t.intermediate_values) for t in best if t.intermediate_values}
    if curves:
        written.append(plot_curves(curves, out / "curves.png", xlabel="epoch (reported step)",
                                   title=f"{name}: learning curves of the best {len(best)}"))
    return written

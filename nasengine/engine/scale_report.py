"""The report of a scaling study: a table of every trained network (printed and saved as CSV), a PNG
of accuracy against FLOPs with one line per method, and a saturating power law fitted per method with
its prediction at the next phi, so a user sees where scaling stops paying.

The law is ``acc(F) = a - b * (F / F0)^(-c)`` (``F0``: the base network's FLOPs; ``a`` the accuracy it
saturates at, ``b, c > 0``), fitted by ``scipy.optimize.curve_fit`` (scipy comes with scikit-learn).
Three parameters need at least four points (base + phi = 1..3); with fewer the report says so. Each
line starts at the base network (phi = 0); the compound line's phi = 1 point is the best grid trial.
A fit that is no trend gets no prediction: flat (the law rises less than 0.001 over the line) or a
single step (``c`` above 5: everything past the first point at one value).

Each accuracy is measured once, on a fixed validation split; with its size stored in the study
(``val_size``) the report prints the binomial standard error, so a user can tell a trend from noise:
on digits (359 validation images) it is about 0.011 at 0.95, so two networks less than about 0.03
apart (two standard errors of their difference) are not told apart.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasengine.engine.scale import SINGLE
from nasengine.errors import NasError

COLUMNS = ("trial", "method", "phi", "alpha", "beta", "gamma", "coefficient", "width", "depth", "resolution",
           "params", "flops", "latency_ms", "accuracy")
MIN_FIT_POINTS = 4
STEP_C = 5.0  # an exponent above this is a step (all the gain at the first point), not a power law
LINES = ("compound", *SINGLE)


@dataclass(frozen=True)
class PowerLaw:
    """``acc(F) = a - b * (F / f0)^(-c)``."""

    a: float
    b: float
    c: float
    f0: float

    def __call__(self, flops: float) -> float:
        return self.a - self.b * (flops / self.f0) ** (-self.c)

    def __str__(self) -> str:
        return f"{self.a:.4f} - {self.b:.4f} * (F/F0)^-{self.c:.3f}"


def fit_power_law(flops: Sequence[float], accuracy: Sequence[float], f0: float | None = None) -> PowerLaw:
    """The least-squares saturating power law through the points; ValueError with fewer than
    :data:`MIN_FIT_POINTS` distinct FLOPs, or when the fit does not converge."""
    import numpy as np
    from scipy.optimize import curve_fit

    x = np.asarray(flops, dtype=float)
    y = np.asarray(accuracy, dtype=float)
    if len(set(x.tolist())) < MIN_FIT_POINTS:
        raise ValueError(f"too few points to fit ({len(set(x.tolist()))} FLOPs values, needs {MIN_FIT_POINTS})")
    f0 = float(f0 if f0 is not None else x.min())

    def law(f, a, b, c):
        return a - b * (f / f0) ** (-c)

    p0 = (min(1.0, y.max() + 0.01), max(y.max() - y.min(), 1e-3), 1.0)
    try:
        (a, b, c), _ = curve_fit(law, x, y, p0=p0, bounds=([0.0, 0.0, 1e-3], [1.0, 10.0, 20.0]), maxfev=20000)
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"the fit did not converge ({e})") from None
    return PowerLaw(float(a), float(b), float(c), f0)


# ---- rows ----------------------------------------------------------------------------------------
def rows_from_trials(trials: Iterable[Any]) -> list[dict[str, Any]]:
    """One row per COMPLETE trial with a ``method`` attr (Optuna FrozenTrials or alike), by number."""
    rows = []
    for t in trials:
        state = getattr(t.state, "name", t.state)
        ua = t.user_attrs
        if state != "COMPLETE" or ua.get("method") is None or t.value is None:
            continue
        row = {k: ua.get(k) for k in COLUMNS}
        row.update(trial=t.number, accuracy=float(t.value))
        rows.append(row)
    return sorted(rows, key=lambda r: r["trial"])


def lines_of(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Method -> its points in FLOPs order, each line from the base network; the compound line's
    phi = 1 point is the grid trial with the compound coefficients (the best grid trial when no
    compound trial exists yet)."""
    base = [r for r in rows if r["method"] == "base"][:1]
    grid = [r for r in rows if r["method"] == "grid"]
    out: dict[str, list[dict[str, Any]]] = {}
    for method in LINES:
        own = [r for r in rows if r["method"] == method]
        if method == "compound" and grid:
            coefficients = {(r["alpha"], r["beta"], r["gamma"]) for r in own}
            phi1 = ([r for r in grid if (r["alpha"], r["beta"], r["gamma"]) in coefficients] if own
                    else [max(grid, key=lambda r: r["accuracy"])])
            own = phi1[:1] + own
        if own:
            out[method] = sorted(base + own, key=lambda r: (r["flops"] or 0, r["phi"]))
    return out


# ---- text, CSV, fits and plot ----------------------------------------------------------------------
def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def table_text(rows: list[dict[str, Any]]) -> str:
    cells = [list(COLUMNS)] + [[_cell(r.get(k)) for k in COLUMNS] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)).rstrip() for line in cells)


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: r.get(k) for k in COLUMNS} for r in rows)
    return path


def fits_of(lines: dict[str, list[dict[str, Any]]]) -> tuple[dict[str, PowerLaw], list[str]]:
    """The fitted law per method, and one printed line per method: the law and its prediction at the
    next phi (FLOPs growing by the line's own mean factor per phi), or why there is no fit."""
    fits, text = {}, []
    for method, points in lines.items():
        xs = [p["flops"] for p in points if p["flops"]]
        ys = [p["accuracy"] for p in points if p["flops"]]
        try:
            law = fit_power_law(xs, ys)
        except ValueError as e:
            text.append(f"{method:>10}: no fit: {e}")
            continue
        first, last = points[0], points[-1]
        if law.c > STEP_C:
            text.append(f"{method:>10}: no trend: a single step to {law.a:.4f} after the first point; no prediction")
            continue
        if law(last["flops"]) - law(first["flops"]) < 1e-3:
            text.append(f"{method:>10}: no trend: accuracy does not rise with FLOPs along this line "
                        f"(mean {sum(ys) / len(ys):.4f}); no prediction")
            continue
        fits[method] = law
        steps = last["phi"] - first["phi"]
        growth = (last["flops"] / first["flops"]) ** (1 / steps) if steps > 0 else 2.0
        nxt = last["flops"] * growth
        gain = law(nxt) - law(last["flops"])
        text.append(f"{method:>10}: acc(F) = {law}; at phi = {last['phi'] + 1} (~{nxt:.3g} FLOPs) predicted "
                    f"{law(nxt):.4f}, {gain:+.4f} over phi = {last['phi']}")
    return fits, text


def noise_text(rows: list[dict[str, Any]], val_size: int) -> str:
    """The binomial standard error of one accuracy on ``val_size`` images, at the rows' mean accuracy."""
    acc = sum(r["accuracy"] for r in rows) / len(rows)
    se = math.sqrt(max(acc * (1 - acc), 1e-12) / val_size)
    return (f"noise: each accuracy is one run on {val_size:,} validation images, standard error ~{se:.4f} at "
            f"{acc:.4f}; networks closer than ~{2 * math.sqrt(2) * se:.4f} are not told apart")


def write_report(rows: list[dict[str, Any]], out_dir: str | os.PathLike, name: str,
                 val_size: int | None = None) -> tuple[str, Path, Path | None]:
    """Write ``NAME.csv`` and ``NAME.png`` into ``out_dir``; returns ``(printed text, csv path, png path)``
    (the PNG is None when no trial has FLOPs). ``val_size``: the validation split's size, for the noise line."""
    from nasengine.viz.scaling import plot_scaling

    if not rows:
        raise NasError(f"study {name!r} has no COMPLETE scaling trials to report")
    out_dir = Path(out_dir)
    csv_path = write_csv(rows, out_dir / f"{name}.csv")
    lines = lines_of(rows)
    fits, fit_text = fits_of(lines)
    base = next((r for r in rows if r["method"] == "base"), None)
    head = "fits: acc(F) = a - b * (F/F0)^-c" + (f", F0 = {base['flops']:,} FLOPs (the base)" if base else "")
    png_path = None
    if any(r["flops"] for r in rows):
        curves = {}
        for method, law in fits.items():
            lo, hi = lines[method][0]["flops"], lines[method][-1]["flops"] * 2
            xs = [lo * (hi / lo) ** (i / 49) for i in range(50)]
            curves[method] = (xs, [law(x) for x in xs])
        grid = [r for r in rows if r["method"] == "grid" and r["flops"]]
        png_path = plot_scaling({m: ([p["flops"] for p in pts], [p["accuracy"] for p in pts])
                                 for m, pts in lines.items()}, out_dir / f"{name}.png",
                                points={"grid (phi = 1)": ([r["flops"] for r in grid], [r["accuracy"] for r in grid])}
                                if grid else None, fits=curves, title=name)
    noise = [noise_text(rows, val_size)] if val_size else []
    text = "\n".join([table_text(rows), "", *noise, head, *fit_text, "", f"table: {csv_path}"]
                     + ([f"plot:  {png_path}"] if png_path else []))
    return text, csv_path, png_path

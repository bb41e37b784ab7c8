"""The tabular benchmark with several objectives: accuracy from the table, the cheap objectives
(params) counted (``costs.py``), scored by hypervolume.

A run's figure after N queries is the hypervolume of the front of its N queried cells divided by that
of the table's true front (every row's accuracy and params), with the reference point at the column's
median accuracy and the largest params count of the table (the issue's definition). A query is a
cell whose accuracy the algorithm receives; a candidate equal to one already queried (same computed
function, same params) is answered from memory and not counted, as with one objective. The algorithm
sees nothing of the table but the accuracies of the cells it queried.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from nasengine.bench.costs import COST_OBJECTIVES, CellCosts
from nasengine.bench.table import Table
from nasengine.core.pareto import hypervolume, pareto_front
from nasengine.errors import NasError

ACCURACY = "accuracy"


def parse_objectives(text: str | None) -> tuple[str, ...]:
    """``accuracy,params`` -> ("accuracy", "params"); the first is the table's column, the others costs."""
    names = tuple(n.strip() for n in (text or ACCURACY).split(",") if n.strip())
    if not names or names[0] != ACCURACY:
        raise NasError(f"--objectives starts with {ACCURACY} (the table's column), got {text!r}")
    unknown = [n for n in names[1:] if n not in COST_OBJECTIVES]
    if unknown:
        raise NasError(f"unknown objective {unknown[0]!r} for bench (known: {', '.join((ACCURACY, *COST_OBJECTIVES))})")
    if len(set(names)) != len(names) or len(names) > 3:
        raise NasError(f"--objectives: 1 to 3 distinct names, got {text!r}")
    return names


def directions(objectives: tuple[str, ...]) -> tuple[str, ...]:
    return tuple("maximize" if n == ACCURACY else "minimize" for n in objectives)


@dataclass
class Problem:
    """A table column with cost objectives: every row's objective vector, the true front and its hypervolume."""

    table: Table
    objectives: tuple[str, ...]

    def __post_init__(self) -> None:
        space = self.table.space
        self.costs = CellCosts(space)
        self.maximize = tuple(d == "maximize" for d in directions(self.objectives))
        self.rows = list(self.table.raw)
        points = [self.vector(text, space.parse(text)) for text in self.rows]
        accuracies = [p[0] for p in points]
        self.reference = (statistics.median(accuracies),) + tuple(
            max(p[j] for p in points) for j in range(1, len(self.objectives)))
        self.front = [self.rows[i] for i in pareto_front(points, self.maximize)]
        self.true_hypervolume = hypervolume([points[i] for i in pareto_front(points, self.maximize)],
                                            self.reference, self.maximize)
        if self.true_hypervolume <= 0:
            raise NasError(f"table {self.table.path!r}: its front has no hypervolume above the median accuracy")

    def vector(self, text: str, g) -> tuple[float, ...]:
        cost = self.costs(g)
        return (self.table.raw[text],) + tuple(cost[n] for n in self.objectives[1:])

    def ratio(self, points: list[tuple[float, ...]]) -> float:
        return hypervolume(points, self.reference, self.maximize) / self.true_hypervolume


class Front:
    """The queried cells' front, kept as queries come: the hypervolume ratio after each."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.points: list[tuple[float, ...]] = []
        self.last = 0.0

    def add(self, point: tuple[float, ...]) -> float:
        if not any(_covers(p, point, self.problem.maximize) for p in self.points):
            self.points = [p for p in self.points if not _covers(point, p, self.problem.maximize)] + [point]
            self.last = self.problem.ratio(self.points)
        return self.last


def _covers(a: tuple[float, ...], b: tuple[float, ...], maximize: tuple[bool, ...]) -> bool:
    """``a`` is at least as good as ``b`` everywhere (so ``b`` adds no hypervolume)."""
    return all((x >= y) if up else (x <= y) for x, y, up in zip(a, b, maximize))


def summarise(runs: list, problem: Problem, marks: list[int]) -> list[dict[str, Any]]:
    """Per algorithm: mean and std of the hypervolume ratio at each milestone, and the true front's
    cells found (mean, min, max over seeds)."""
    front = set(problem.front)
    rows = []
    for algo in dict.fromkeys(r.algo for r in runs):
        mine = [r for r in runs if r.algo == algo]
        row: dict[str, Any] = {"algo": algo, "seeds": len(mine), "at": {}}
        for m in marks:
            values = [r.curve[m - 1] for r in mine]
            row["at"][m] = (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
        found = [len(front & {q["row"] for q in r.queries}) for r in mine]
        row["found"] = (statistics.fmean(found), min(found), max(found))
        row["seconds"] = sum(r.seconds for r in mine)
        rows.append(row)
    return rows


def format_summary(rows: list[dict[str, Any]], title: str, problem: Problem, marks: list[int]) -> str:
    width = max([len("algorithm")] + [len(r["algo"]) for r in rows])
    head = f"{'algorithm':<{width}}  " + "  ".join(f"{'@' + str(m):>15}" for m in marks)
    head += f"  {'front found':>16}  {'seconds':>8}"
    reference = ", ".join(f"{v:.6g}" for v in problem.reference)
    lines = [title, f"true front {len(problem.front)} cells; reference point ({reference}); "
                    f"mean ± std of the hypervolume ratio after N queries; front cells found: mean (min-max)",
             head]
    for r in rows:
        cells = "  ".join(f"{mean:>6.4f} ± {std:<6.4f}" for mean, std in (r["at"][m] for m in marks))
        mean, low, high = r["found"]
        found = f"{mean:.1f} ({low}-{high})"
        lines.append(f"{r['algo']:<{width}}  {cells}  {found:>16}  {r['seconds']:>8.1f}")
    return "\n".join(lines)

"""The best hypervolume ratio a de-duplicating search can reach on a NAS-Bench-201 column.

A search that never queries one computed function twice (``bench``: same canonical hash, same params)
queries one cell of each such class, whichever it meets first; the table gives the cells of a class
different accuracies (each was trained on its own), so even a search that queries every class does
not in general hold the true front. This prints, per column, the number of classes and the
hypervolume ratio (``bench``'s definition) of all classes queried once, with each class represented
by its worst cell, by a random cell (mean over ``--draws`` draws, seed 0), and by its best cell (1 by
construction). Issue 19's targets are to be read against the random figure.

    python benchmarks/pareto_ceiling.py --table ../shared/benchmarks/nats_bench_tss_200ep.csv \\
        --columns CIFAR10TestAccuracy200Epochs CIFAR100TestAccuracy200Epochs ImageNetTestAccuracy200Epochs

With two objectives it also prints how exactly a search must hit the best class of each params level
(each class by its best member): the ratio when every params level holds only its k-th best class, and
the ratio lost when one level alone holds its second best class instead of its best. On CIFAR-10 the
second best class of every level gives 0.9833 (CIFAR-100 0.9672, ImageNet16-120 0.9707), and missing
the best class at 643,386 params alone (1 of 169 classes there) costs 0.0083: a mean of 0.99 needs the
best class of the few levels that carry the front in nearly every run. With ``--runs``, the share of
runs that hold those levels' best classes after 50, 100 and 200 queries.

With ``--runs FILE`` (``bench --json`` of one column, 2-D accuracy and params), also where the runs
lose hypervolume: after 50, 100 and 200 queries, the mean over runs of the true front's staircase
minus the queried cells' one, integrated over each params interval between two consecutive params
counts of the table, as a fraction of the true hypervolume; the ``--top`` largest intervals; and the
params levels the first 200 queries went to most (queries per run, and the level's best accuracy in
the table).

About 3 s per column.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from collections import defaultdict

from nasengine.bench.pareto import Problem
from nasengine.bench.table import load_table
from nasengine.core.pareto import pareto_front

BUDGETS = (50, 100, 200)
NEAR_MISS_RANKS = (2, 3, 5, 10)


def vectors(problem: Problem) -> dict[str, tuple[float, ...]]:
    """Each table row's objective vector (accuracy, params)."""
    return {text: problem.vector(text, problem.table.space.parse(text)) for text in problem.rows}


def classes(problem: Problem, points: dict[str, tuple[float, ...]]) -> list[list[tuple[float, ...]]]:
    """The de-duplication classes (same computed function, same costs): each its members' vectors."""
    space = problem.table.space
    out: dict[tuple[str, tuple[float, ...]], list[tuple[float, ...]]] = defaultdict(list)
    for text, point in points.items():
        out[(space.hash(space.parse(text)), point[1:])].append(point)
    return list(out.values())


def ratio(problem: Problem, points: list[tuple[float, ...]]) -> float:
    return problem.ratio([points[i] for i in pareto_front(points, problem.maximize)])


def ceilings(problem: Problem, members: list[list[tuple[float, ...]]], draws: int) -> tuple[float, float, float]:
    """The ratio of every class queried once: worst member, random member (mean), best member."""
    rng = random.Random(0)
    drawn = statistics.mean(ratio(problem, [rng.choice(m) for m in members]) for _ in range(draws))
    return ratio(problem, [min(m) for m in members]), drawn, ratio(problem, [max(m) for m in members])


def near_misses(problem: Problem, members: list[list[tuple[float, ...]]],
                ranks: tuple[int, ...]) -> tuple[dict[int, float], list[tuple[float, int, float, float]]]:
    """How exactly a search must hit each params level's best class (2-D: accuracy, params; each class by
    its best member). The ratio when every level holds only its k-th best class, for k in ``ranks``; and,
    per level, the ratio lost when that level alone holds its second best class instead of its best
    (params, classes at the level, loss, the second best class's accuracy), largest first."""
    by_level: dict[float, list[float]] = defaultdict(list)
    for m in members:
        best = max(m)
        by_level[best[1]].append(best[0])
    for values in by_level.values():
        values.sort(reverse=True)

    def kth(k: int, only: float | None = None) -> list[tuple[float, float]]:
        return [(v[min(k if only in (None, level) else 1, len(v)) - 1], level) for level, v in by_level.items()]

    uniform = {k: ratio(problem, kth(k)) for k in ranks}
    single = [(level, len(v), 1 - ratio(problem, kth(2, level)), v[min(2, len(v)) - 1])
              for level, v in sorted(by_level.items())]
    return uniform, sorted(single, key=lambda row: -row[2])


def losses(problem: Problem, points: dict[str, tuple[float, ...]], runs: list[list[str]],
           budget: int) -> dict[float, float]:
    """Params interval start -> mean lost fraction of the true hypervolume after ``budget`` queries."""
    ref_accuracy, ref_params = problem.reference
    levels = sorted({p[1] for p in points.values()} | {ref_params})

    def staircase(cells) -> list[float]:
        """Best accuracy (at least the reference) among ``cells`` with params <= each level."""
        best = {}
        for text in cells:
            accuracy, params = points[text]
            best[params] = max(best.get(params, ref_accuracy), accuracy)
        out, run = [], ref_accuracy
        for level in levels:
            run = max(run, best.get(level, ref_accuracy))
            out.append(run)
        return out

    true = staircase(problem.rows)
    lost: dict[float, float] = defaultdict(float)
    for queries in runs:
        found = staircase(queries[:budget])
        for k in range(len(levels) - 1):
            width = levels[k + 1] - levels[k]
            lost[levels[k]] += (true[k] - found[k]) * width / problem.true_hypervolume / len(runs)
    return lost


def busiest(points: dict[str, tuple[float, ...]], runs: list[list[str]], budget: int,
            top: int) -> list[tuple[float, float, float]]:
    """The ``top`` params levels with the most of the first ``budget`` queries per run: (params, queries per
    run, level's best)."""
    best: dict[float, float] = defaultdict(lambda: float("-inf"))
    for accuracy, params in points.values():
        best[params] = max(best[params], accuracy)
    counts: dict[float, int] = defaultdict(int)
    for queries in runs:
        for text in queries[:budget]:
            counts[points[text][1]] += 1
    levels = sorted(counts, key=counts.get, reverse=True)[:top]
    return [(level, counts[level] / len(runs), best[level]) for level in levels]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", required=True)
    p.add_argument("--columns", nargs="+", required=True)
    p.add_argument("--objectives", default="accuracy,params")
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--runs", metavar="FILE", help="bench --json output of one column (the first of --columns)")
    p.add_argument("--top", type=int, default=8)
    args = p.parse_args()
    objectives = tuple(args.objectives.split(","))
    print("column | cells | classes | worst member | random member | best member")
    for column in args.columns:
        problem = Problem(load_table(args.table, column), objectives)
        points = vectors(problem)
        members = classes(problem, points)
        worst, drawn, best = ceilings(problem, members, args.draws)
        print(f"{column} | {len(problem.rows)} | {len(members)} | {worst:.4f} | {drawn:.4f} | {best:.4f}")
        if len(objectives) == 2:
            uniform, single = near_misses(problem, members, NEAR_MISS_RANKS)
            print("  every params level's k-th best class only: "
                  + ", ".join(f"k={k} {r:.4f}" for k, r in uniform.items())
                  + "; one level's second best class instead of its best (classes there), ratio lost: "
                  + ", ".join(f"{int(level):,} ({n}) {loss:.4f}"
                              for level, n, loss, _ in single[:args.top] if loss > 0))
        if args.runs and column == args.columns[0]:
            with open(args.runs) as f:
                runs = [line["queries"] for line in map(json.loads, f) if "queries" in line]
            for budget in BUDGETS:
                lost = losses(problem, points, runs, budget)
                top = sorted(lost, key=lost.get, reverse=True)[:args.top]
                print(f"  lost after {budget}: {sum(lost.values()):.4f}; by params interval: "
                      + ", ".join(f"{int(level):,} {lost[level]:.4f}" for level in top))
            if len(objectives) == 2:
                for level, _, _, second in single[:3]:
                    held = [statistics.mean(any(points[t][1] == level and points[t][0] > second
                                                for t in queries[:budget]) for queries in runs) for budget in BUDGETS]
                    print(f"  runs holding the best class at {int(level):,} params (a cell above its second best, "
                          f"{second:.2f}) after {'/'.join(map(str, BUDGETS))}: " + "/".join(f"{h:.2f}" for h in held))
            busy = busiest(points, runs, BUDGETS[-1], args.top)
            print("  queries per run by params level (level's best): "
                  + ", ".join(f"{int(level):,} {count:.1f} ({best:.2f})" for level, count, best in busy))


if __name__ == "__main__":
    main()


"""``nasengine bench``: compare search algorithms on a tabular benchmark in seconds."""

from __future__ import annotations

import argparse
import json
import sys

from nasengine.cli.args import positive_int

DEFAULT_ALGOS = "random,evolution,local"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="compare search algorithms on a tabular benchmark (e.g. NAS-Bench-201)",
        description="Run search algorithms against a table of precomputed accuracies: each query is a "
                    "table lookup, so hundreds of searches take seconds. A cell equal in canonical form "
                    "to one already queried is answered from memory and not counted (except by the "
                    "textbook evolution, which counts every proposal). See docs/bench.md.")
    p.add_argument("--space", default="nasbench201", help="search space name or YAML path (default nasbench201)")
    p.add_argument("--table", required=True, metavar="PATH",
                   help="CSV with a column ArchitectureString and one value column per dataset")
    p.add_argument("--column", required=True, metavar="NAME", help="the value column to maximise")
    p.add_argument("--objectives", default="accuracy", metavar="accuracy[,params]",
                   help="accuracy (the column) alone, or with params (counted for NAS-Bench-201's CIFAR network): "
                        "then each run is scored by the hypervolume ratio of its queried cells' front; baselines "
                        "nsga2 and motpe (default accuracy)")
    p.add_argument("--algo", action="append", metavar="ALGO[,ALGO...]",
                   help="algorithms, repeatable or comma-separated: random, evolution, local, reinforce, textbook "
                        "(evolution:variant=textbook), tpe, gp; with several objectives random, evolution, local, "
                        "nsga2, motpe; settings as evolution:population=50:sample=10 "
                        f"(default {DEFAULT_ALGOS})")
    p.add_argument("--budget", type=positive_int, default=200, metavar="N", help="queries per run (default 200)")
    p.add_argument("--seeds", type=positive_int, default=10, metavar="K", help="runs per algorithm (default 10)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="first seed; runs use S..S+K-1 (default 0)")
    p.add_argument("--jobs", type=positive_int, default=None, metavar="J",
                   help="processes running seeds in parallel (default: the usable CPU cores)")
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object per line and seed: {"algo", "seed", "curve"} instead of the table '
                        '(several objectives: {"algo", "seed", "queries"}, the queried cells as the table writes them)')
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw the best-so-far curves (several objectives: the hypervolume ratio), a band per algorithm")
    p.add_argument("--storage", metavar="URL", help="also record every run as an Optuna study in this storage")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nasengine.bench import pareto
    from nasengine.bench import runner as bench
    from nasengine.bench.table import load_table
    from nasengine.errors import NasError
    from nasengine.progress import Progress
    from nasengine.spaces.cell import load_space

    space = load_space(args.space)
    table = load_table(args.table, args.column, space)
    algos = list(dict.fromkeys(a.strip() for spec in (args.algo or [DEFAULT_ALGOS])
                               for a in spec.split(",") if a.strip()))
    if not algos:
        raise NasError("--algo names no algorithm")
    objectives = pareto.parse_objectives(args.objectives)
    several = len(objectives) > 1
    if several and args.storage:
        raise NasError("--storage records single-objective runs; drop it or --objectives")
    bench.check_algos(algos, space, objectives)
    seeds = list(range(args.seed, args.seed + args.seeds))
    progress = Progress(len(algos) * len(seeds), "bench", enabled=not args.quiet, unit="runs")

    def done(count: int, run: bench.Run) -> None:
        figure = "hypervolume ratio" if several else "best"
        progress.set(count, status=f"{run.algo} seed {run.seed} {figure} {run.curve[-1]:.4g}")

    try:
        runs = bench.run_many(algos, args.space, args.table, args.column, args.budget, seeds,
                              jobs=args.jobs or bench.default_jobs(), keep_queries=bool(args.storage), done=done,
                              objectives=objectives)
    finally:
        progress.close()
    if several:
        return _report_pareto(args, runs, bench.load_problem(table, objectives), space)
    optimum = table.best()
    title = (f"{space.name} · {args.column} · {len(table)} cells · {args.seeds} seeds x {args.budget} queries")
    if args.json:
        for r in runs:
            print(json.dumps({"algo": r.algo, "seed": r.seed, "curve": r.curve}))
    else:
        print(bench.format_summary(bench.summarise(runs, optimum, args.budget), title, optimum, args.budget))
    if args.plot:
        bench.plot(runs, optimum, args.plot, title)
        print(f"plot: {args.plot}", file=sys.stderr)
    if args.storage:
        names = bench.record(runs, args.storage, space, args.table, args.column)
        print(f"recorded {len(names)} studies in {args.storage}", file=sys.stderr)
    return 0


def _report_pareto(args: argparse.Namespace, runs: list, problem, space) -> int:
    from nasengine.bench import pareto
    from nasengine.bench import runner as bench

    marks = bench.milestones(args.budget)
    title = (f"{space.name} · {args.column} · {', '.join(problem.objectives)} · {len(problem.table)} cells · "
             f"{args.seeds} seeds x {args.budget} queries")
    if args.json:
        for r in runs:
            print(json.dumps({"algo": r.algo, "seed": r.seed, "queries": [q["row"] for q in r.queries]}))
    else:
        print(pareto.format_summary(pareto.summarise(runs, problem, marks), title, problem, marks))
    if args.plot:
        from nasengine.viz.plots import plot_bench_curves

        algos = dict.fromkeys(r.algo for r in runs)
        plot_bench_curves({a: [r.curve for r in runs if r.algo == a] for a in algos}, 1.0, args.plot, title,
                          ylabel="hypervolume ratio")
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0

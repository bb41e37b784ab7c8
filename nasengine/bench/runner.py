"""Tabular benchmark mode: run search algorithms against a table and compare how fast they find good cells.

The loop is the real search loop with a table as the evaluator: the algorithm (the same classes
``nasengine search`` uses) proposes with ``ask`` and learns with ``tell``. A *query* is a candidate
whose value the algorithm receives. As in the engine's driver, a candidate equal in canonical form to
one already queried is answered from memory (its first value), told again and not counted; the
textbook regularized evolution is the exception (``COUNTS_EVERY_PROPOSAL``): it is the paper's
algorithm, which knows nothing of de-duplication, so each of its proposals is a query, as in the
published NAS-Bench-201 comparisons.

Optuna's TPE and GP samplers (``tpe``, ``gp``) are outside baselines: an in-memory study over the
space's param choices, with the same de-duplication. They live here, not in ``nasengine.algorithms``.

With several objectives (``objectives=("accuracy", "params")``) a run's curve is the hypervolume ratio
after each query (``bench/pareto.py``); the baselines are then Optuna's NSGA-II and multi-objective
TPE (``nsga2``, ``motpe``), and every run keeps its queries.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from threadpoolctl import threadpool_limits

from nasengine.algorithms import ALGORITHMS, Record, make_algorithm
from nasengine.bench.baselines import MULTI_OBJECTIVE_SAMPLERS, OPTUNA_SAMPLERS, run_sampler
from nasengine.bench.pareto import Front, Problem, directions
from nasengine.bench.table import Table, load_table
from nasengine.errors import NasError
from nasengine.spaces.cell import CellSpace, load_space

ALIASES = {"textbook": ("evolution", {"variant": "textbook"})}
MILESTONES = (25, 50, 100, 200)
STALE_LIMIT = 10_000  # known cells proposed in a row before a run gives up (the space is used up)


def parse_algo(spec: str) -> tuple[str, dict[str, Any]]:
    """``name`` or ``name:key=value:key=value`` (values read as int, float or text); aliases expand."""
    name, *pairs = spec.strip().split(":")
    base, settings = ALIASES.get(name, (name, {}))
    settings = dict(settings)
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise NasError(f"cannot read algorithm setting {pair!r} in {spec!r}: expected key=value")
        settings[key] = _number(text)
    if base not in ALGORITHMS and base not in OPTUNA_SAMPLERS and base not in MULTI_OBJECTIVE_SAMPLERS:
        known = sorted([*ALGORITHMS, *OPTUNA_SAMPLERS, *MULTI_OBJECTIVE_SAMPLERS, *ALIASES])
        raise NasError(f"unknown algorithm {name!r} (known: {', '.join(known)})")
    if (base in OPTUNA_SAMPLERS or base in MULTI_OBJECTIVE_SAMPLERS) and settings:
        raise NasError(f"{base} takes no settings")
    return base, settings


def check_algos(algos: list[str], space: CellSpace, objectives: tuple[str, ...] = ("accuracy",)) -> None:
    """NasError now, before any run starts, for an unknown algorithm, a setting it does not take, or
    one that does not take this many objectives."""
    several = len(objectives) > 1
    for algo in algos:
        name, settings = parse_algo(algo)
        if name in OPTUNA_SAMPLERS or name in MULTI_OBJECTIVE_SAMPLERS:
            if several != (name in MULTI_OBJECTIVE_SAMPLERS):
                fitting = MULTI_OBJECTIVE_SAMPLERS if several else OPTUNA_SAMPLERS
                raise NasError(f"{name} is for {'one objective' if several else 'several objectives'}"
                               f" (with {len(objectives)}: {', '.join(fitting)})")
        elif several:
            make_algorithm(name, space, 0, objectives=objectives, directions=directions(objectives), **settings)
        else:
            make_algorithm(name, space, 0, **settings)


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def counts_every_proposal(name: str, settings: dict[str, Any]) -> bool:
    return name == "evolution" and settings.get("variant") == "textbook"


@dataclass
class Run:
    """One algorithm, one seed: the queries in order and the best value after each."""

    algo: str
    seed: int
    curve: list[float] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)  # number, genotype, hash, value, parent
    proposals: int = 0
    seconds: float = 0.0


def run_once(algo: str, space: CellSpace | str, table_path: str, column: str, budget: int, seed: int,
             keep_queries: bool = False, objectives: tuple[str, ...] = ("accuracy",)) -> Run:
    """Run one algorithm (a spec for ``parse_algo``) for ``budget`` queries on a table column."""
    space = space if isinstance(space, CellSpace) else load_space(space)
    table = load_table(table_path, column, space)
    name, settings = parse_algo(algo)
    run = Run(algo, seed)
    started = time.perf_counter()
    if len(objectives) > 1:
        problem = load_problem(table, tuple(objectives))
        if name in MULTI_OBJECTIVE_SAMPLERS:
            _run_optuna_pareto(run, name, problem, budget, seed)
        else:
            _run_pareto(run, name, settings, problem, budget, seed)
    elif name in OPTUNA_SAMPLERS:
        _run_optuna(run, name, space, table, budget, seed, keep_queries)
    else:
        _run_algorithm(run, name, settings, space, table, budget, seed, keep_queries)
    run.seconds = time.perf_counter() - started
    return run


def _query(run: Run, best: float, g, h: str, value: float, parent, keep: bool) -> float:
    best = max(best, value)
    run.curve.append(best)
    if keep:
        run.queries.append({"number": run.proposals - 1, "genotype": g, "hash": h, "value": value, "parent": parent})
    return best


def _run_algorithm(run: Run, name: str, settings: dict, space: CellSpace, table, budget: int, seed: int,
                   keep: bool) -> None:
    algorithm = make_algorithm(name, space, seed, **settings)
    dedup = not counts_every_proposal(name, settings)
    memory: dict[str, float] = {}
    best, stale = -math.inf, 0
    while len(run.curve) < budget:
        proposal = algorithm.ask()
        g = proposal.genotype
        h = space.hash(g)
        run.proposals += 1
        if h in memory and dedup:
            value = memory[h]
            stale += 1
            if stale >= STALE_LIMIT:
                raise NasError(f"{run.algo} proposed {STALE_LIMIT} known cells in a row after {len(run.curve)} "
                               f"queries: the space has too few distinct cells for --budget {budget}?")
        else:
            value = memory.setdefault(h, table.value(g))
            stale = 0
            best = _query(run, best, g, h, value, proposal.parent, keep)
        algorithm.tell(Record(run.proposals - 1, g, value, proposal.parent))


def _run_optuna(run: Run, name: str, space: CellSpace, table, budget: int, seed: int, keep: bool) -> None:
    memory: dict[str, float] = {}
    best = -math.inf

    def value_of(g, h: str) -> tuple[float, bool]:
        nonlocal best
        run.proposals += 1
        if h in memory:
            return memory[h], False
        value = memory[h] = table.value(g)
        best = _query(run, best, g, h, value, None, keep)
        return value, True

    run_sampler(name, space, seed, lambda: len(run.curve) < budget, value_of, STALE_LIMIT)


# ---- several objectives ------------------------------------------------------------------------
_PROBLEMS: dict[tuple, Problem] = {}


def load_problem(table: Table, objectives: tuple[str, ...]) -> Problem:
    """The table column's ``Problem`` (true front, reference point), computed once per process."""
    key = (id(table), objectives)
    if key not in _PROBLEMS:
        _PROBLEMS[key] = Problem(table, objectives)
    return _PROBLEMS[key]


def _pareto_query(run: Run, problem: Problem, front: Front, g, key: str, parent) -> tuple[float, ...]:
    row = problem.table.row(g)
    values = problem.vector(row, g)
    run.curve.append(front.add(values))
    run.queries.append({"number": run.proposals - 1, "genotype": g, "hash": key, "row": row, "values": values,
                        "value": values[0], "parent": parent})
    return values


def _run_pareto(run: Run, name: str, settings: dict, problem: Problem, budget: int, seed: int) -> None:
    space, costs = problem.table.space, problem.costs
    algorithm = make_algorithm(name, space, seed, objectives=problem.objectives,
                               directions=directions(problem.objectives), costs=costs, **settings)
    memory: dict[str, tuple[float, ...]] = {}
    front, stale = Front(problem), 0
    while len(run.curve) < budget:
        proposal = algorithm.ask()
        g = proposal.genotype
        key = f"{space.hash(g)}:{costs.params(g)}"  # one function with other params is another network
        run.proposals += 1
        if key in memory:
            values = memory[key]
            stale += 1
            if stale >= STALE_LIMIT:
                raise NasError(f"{run.algo} proposed {STALE_LIMIT} known cells in a row after {len(run.curve)} "
                               f"queries: the space has too few distinct cells for --budget {budget}?")
        else:
            values = memory[key] = _pareto_query(run, problem, front, g, key, proposal.parent)
            stale = 0
        algorithm.tell(Record(run.proposals - 1, g, values[0], proposal.parent, values=values))


def _run_optuna_pareto(run: Run, name: str, problem: Problem, budget: int, seed: int) -> None:
    space, costs = problem.table.space, problem.costs
    memory: dict[str, tuple[float, ...]] = {}
    front = Front(problem)

    def value_of(g, h: str) -> tuple[tuple[float, ...], bool]:
        run.proposals += 1
        key = f"{h}:{costs.params(g)}"
        if key in memory:
            return memory[key], False
        memory[key] = _pareto_query(run, problem, front, g, key, None)
        return memory[key], True

    run_sampler(name, space, seed, lambda: len(run.curve) < budget, value_of, STALE_LIMIT,
                directions=directions(problem.objectives))


# ---- many runs --------------------------------------------------------------------------------
def _job(args: tuple) -> tuple[int, Run]:
    index, work = args
    return index, run_once(*work)


def _one_blas_thread() -> None:
    """A pool worker's numpy uses one thread: with a process per core, BLAS threads fight over the cores
    (a 200 x 200 inverse, the rank model's fit: 3 ms on one thread, 40 ms with two threads per process)."""
    threadpool_limits(1)


def run_many(algos: list[str], space: str, table_path: str, column: str, budget: int, seeds: list[int],
             jobs: int = 1, keep_queries: bool = False, done: Callable[[int, Run], None] | None = None,
             objectives: tuple[str, ...] = ("accuracy",)) -> list[Run]:
    """Every algorithm on every seed, ``jobs`` processes at a time; runs in (algo, seed) order.

    ``done(count, run)`` is called as each run finishes (in the order they finish), for a progress line."""
    check_algos(algos, load_space(space), objectives)
    table = load_table(table_path, column, space)  # read once before forking; errors surface here
    if len(objectives) > 1:
        load_problem(table, tuple(objectives))
    work = list(enumerate((algo, space, table_path, column, budget, seed, keep_queries, tuple(objectives))
                          for algo in algos for seed in seeds))
    runs: list[Run | None] = [None] * len(work)

    def collect(finished) -> None:
        for count, (index, run) in enumerate(finished, start=1):
            runs[index] = run
            if done is not None:
                done(count, run)

    if jobs <= 1 or len(work) == 1:
        collect(map(_job, work))
    else:
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        with context.Pool(min(jobs, len(work)), initializer=_one_blas_thread) as pool:
            collect(pool.imap_unordered(_job, work, chunksize=1))
    return runs  # type: ignore[return-value]


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def milestones(budget: int) -> list[int]:
    return sorted({m for m in MILESTONES if m < budget} | {budget})


def summarise(runs: list[Run], optimum: float, budget: int) -> list[dict[str, Any]]:
    """Per algorithm: mean and std of the best value at each milestone, and seeds that found the optimum."""
    rows = []
    for algo in dict.fromkeys(r.algo for r in runs):
        mine = [r for r in runs if r.algo == algo]
        row: dict[str, Any] = {"algo": algo, "seeds": len(mine), "at": {}}
        for m in milestones(budget):
            values = [r.curve[m - 1] for r in mine]
            row["at"][m] = (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
        row["optimal"] = sum(1 for r in mine if r.curve[-1] >= optimum - 1e-9)
        row["seconds"] = sum(r.seconds for r in mine)
        rows.append(row)
    return rows


def decimals(optimum: float) -> int:
    """Decimals that show five significant digits of values near ``optimum`` (94.370, 0.94370)."""
    if optimum == 0 or not math.isfinite(optimum):
        return 2
    return max(0, 4 - math.floor(math.log10(abs(optimum))))


def format_summary(rows: list[dict[str, Any]], title: str, optimum: float, budget: int) -> str:
    marks = milestones(budget)
    d = decimals(optimum)
    cell = 2 * (d + 5) + 3
    width = max([len("algorithm")] + [len(r["algo"]) for r in rows])
    head = f"{'algorithm':<{width}}  " + "  ".join(f"{'@' + str(m):>{cell}}" for m in marks)
    head += f"  {'optimum':>9}  {'seconds':>8}"
    lines = [title, f"table optimum {optimum:.{d}f}; mean ± std of the best value after N queries", head]
    for r in rows:
        cells = "  ".join(f"{mean:>{d + 5}.{d}f} ± {std:<{d + 2}.{d}f}" for mean, std in (r["at"][m] for m in marks))
        lines.append(f"{r['algo']:<{width}}  {cells}  {str(r['optimal']) + '/' + str(r['seeds']):>9}"
                     f"  {r['seconds']:>8.1f}")
    return "\n".join(lines)


def plot(runs: list[Run], optimum: float, path: str, title: str) -> None:
    """The runs' best-so-far curves and regret, per algorithm (``viz.plots.plot_bench_curves``)."""
    from nasengine.viz.plots import plot_bench_curves

    algos = dict.fromkeys(r.algo for r in runs)
    plot_bench_curves({a: [r.curve for r in runs if r.algo == a] for a in algos}, optimum, path, title)


def record(runs: list[Run], storage: str, space: CellSpace, table_path: str, column: str) -> list[str]:
    """Write each run as a study in ``storage`` through the engine's trial writer (the same trial layout
    as a search's); returns the study names."""
    from nasengine import storage as st

    rdb = st.connect(storage, create=True)  # checked URL; SQLite in WAL mode, so a trial costs no fsync
    names = [f"bench-{column}-{run.algo}-seed{run.seed}" for run in runs]
    taken = sorted(set(names) & set(st.study_names(rdb)))
    if taken:
        raise NasError(f"storage {storage!r} already has a study {taken[0]!r}")
    for run, name in zip(runs, names):
        attrs = {"space": space.name, "algo": run.algo, "dataset": column, "table": table_path, "seed": run.seed,
                 "kind": "bench"}
        writer = st.TrialWriter(rdb, st.create_study(rdb, name, attrs), space)
        trial_of = {q["number"]: i for i, q in enumerate(run.queries)}
        for q in run.queries:
            trial_id, _ = writer.start(q["genotype"], seed=run.seed, parent=trial_of.get(q["parent"]),
                                       note=run.algo, hash=q["hash"])
            writer.complete(trial_id, q["value"], {})
    return names

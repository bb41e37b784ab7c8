"""Recompute ``nasengine bench --objectives accuracy,params`` hypervolume ratios from its ``--json`` output.

Issue 19's check: the bench's figures, recomputed from nothing but the order of the queried cells
(``--json``: one line per run with its ArchitectureString queries) by ``independent_ratios`` of
``tests/test_pareto_bench.py`` (params from three direct counts, a staircase sweep; none of the
bench's or ``core.pareto``'s code). For each column of the table it writes a one-column copy, and
copies with Gaussian noise of the given standard deviations (accuracy points) added to every cell:
tables the project has not seen (other fronts, other near-ties). Prints the recomputed mean ratio at
50/100/200 queries per table beside the bench's own figures for the same runs.

    python benchmarks/pareto_check.py --table ../shared/benchmarks/nats_bench_tss_200ep.csv \\
        --columns CIFAR10TestAccuracy200Epochs CIFAR100TestAccuracy200Epochs ImageNetTestAccuracy200Epochs \\
        --noise 0.1 0.5

About 25 s per table of 40 runs (two at a time; the bench runs twice, with and without --json).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_pareto_bench import independent_ratios  # noqa: E402 - the tests' own recomputation

BUDGETS = (50, 100, 200)


def one_column(source: str, column: str, out: Path, noise: float) -> str:
    """A copy of ``column`` as ``acc``, with N(0, noise) added to every value (noise 0: unchanged; the
    noise drawn with seed 0, so each table can be remade)."""
    rng = random.Random(0)
    with open(source, newline="") as f, open(out, "w", newline="") as g:
        writer = csv.writer(g)
        writer.writerow(["ArchitectureString", "acc"])
        for row in csv.DictReader(f):
            value = float(row[column])
            writer.writerow([row["ArchitectureString"], repr(value + rng.gauss(0.0, noise) if noise else value)])
    return str(out)


def bench(table: str, algo: str, seeds: int, start: int, *extra: str) -> str:
    argv = [sys.executable, "-m", "nasengine", "bench", "--table", table, "--column", "acc", "--objectives",
            "accuracy,params", "--algo", algo, "--seeds", str(seeds), "--seed", str(start),
            "--budget", str(max(BUDGETS)), "--jobs", "2", "--quiet", *extra]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def recomputed(table: str, algo: str, seeds: int, start: int) -> list[float]:
    """Mean independent hypervolume ratio at ``BUDGETS`` over the ``--json`` runs of one bench call."""
    out = bench(table, algo, seeds, start, "--json")
    runs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    ratios = [independent_ratios(table, run["queries"]) for run in runs]
    return [statistics.mean(r[n - 1] for r in ratios) for n in BUDGETS]


def reported(table: str, algo: str, seeds: int, start: int) -> list[float]:
    """The bench's own mean ratios at ``BUDGETS`` (its printed table: ``@N`` columns of ``mean ± std``)."""
    lines = bench(table, algo, seeds, start).splitlines()
    budgets = [int(word[1:]) for word in next(x for x in lines if x.startswith("algorithm")).split() if word[0] == "@"]
    means = [float(m) for m in re.findall(r"([\d.]+) ±", next(x for x in lines if x.split()[:1] == [algo]))]
    return [means[budgets.index(n)] for n in BUDGETS]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", required=True)
    p.add_argument("--columns", nargs="+", required=True)
    p.add_argument("--noise", type=float, nargs="*", default=[], help="also tables with this noise added")
    p.add_argument("--algo", default="evolution")
    p.add_argument("--seeds", type=int, default=40)
    p.add_argument("--seed", type=int, default=0, help="the first seed")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for column in args.columns:
            for noise in [0.0, *args.noise]:
                table = one_column(args.table, column, Path(tmp) / f"{column}-{noise}.csv", noise)
                mine, theirs = (f(table, args.algo, args.seeds, args.seed) for f in (recomputed, reported))
                print(f"{column} noise {noise:g}: {args.algo} recomputed "
                      + " / ".join(f"{m:.4f}" for m in mine) + ", reported " + " / ".join(f"{m:.4f}" for m in theirs),
                      flush=True)


if __name__ == "__main__":
    main()

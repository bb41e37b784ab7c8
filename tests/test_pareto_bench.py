"""``nasengine bench --objectives accuracy,params``: params counted per edge (checked against building
the network), the --json queries, and the hypervolume ratio recomputed independently from them."""

import csv
import itertools
import json
import random
import re
import statistics
from pathlib import Path

import pytest

from nasengine.algorithms.choices import Choices
from nasengine.bench.costs import CellCosts, count_cell_params
from nasengine.cli.main import main
from nasengine.spaces.cell import load_space

SHARED_TABLE = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "nats_bench_tss_200ep.csv"
SPACE = load_space("nasbench201")


def test_params_are_the_sum_of_per_edge_contributions():
    costs = CellCosts(SPACE)
    rng = random.Random(0)
    sampler = Choices(SPACE)
    for _ in range(200):
        g = sampler.sample(rng)
        assert costs.params(g) == count_cell_params(SPACE, g), SPACE.format(g)


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> str:
    """Every cell of the space with a made-up accuracy (rows in a shuffled order, the table's own text)."""
    path = tmp_path_factory.mktemp("table") / "made.csv"
    rng = random.Random(1)
    rows = [f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{g}~2|" for a, b, c, d, e, g in itertools.product(SPACE.ops, repeat=6)]
    rng.shuffle(rows)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ArchitectureString", "acc"])
        for text in rows:
            convs = text.count("conv_3x3") * 2 + text.count("conv_1x1")
            writer.writerow([text, round(60 + 3 * convs + rng.uniform(0, 8), 3)])
    return str(path)


def independent_ratios(table: str, queries: list[str]) -> list[float]:
    """The hypervolume ratio after each query, computed without nasengine's bench or pareto code:
    params from three direct counts (all-none, one conv 1x1, one conv 3x3), a staircase area."""
    none = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    base = count_cell_params(SPACE, SPACE.parse(none))
    c1 = count_cell_params(SPACE, SPACE.parse(none.replace("none~0|+", "nor_conv_1x1~0|+", 1))) - base
    c3 = count_cell_params(SPACE, SPACE.parse(none.replace("none~0|+", "nor_conv_3x3~0|+", 1))) - base
    rows = {r["ArchitectureString"]: float(r["acc"]) for r in csv.DictReader(open(table))}

    def point(text):
        return rows[text], base + c1 * text.count("nor_conv_1x1") + c3 * text.count("nor_conv_3x3")

    every = [point(t) for t in rows]
    ref_acc, ref_params = statistics.median(a for a, _ in every), max(p for _, p in every)

    def area(points):
        total, best = 0.0, ref_acc  # sweep by params: each cell raises the best accuracy so far
        for a, p in sorted(points, key=lambda x: (x[1], -x[0])):
            if a > best:
                total += (a - best) * (ref_params - p)
                best = a
        return total

    # the area is a sum over accuracy bands of (ref_params - least params reaching the band): the sweep
    # above adds, for each cell that raises the best accuracy, its band times the params it leaves
    true = area(every)
    return [area([point(t) for t in queries[:n]]) / true for n in range(1, len(queries) + 1)]


def test_json_queries_give_the_reported_hypervolume_ratios(table, capsys):
    argv = ["bench", "--table", table, "--column", "acc", "--objectives", "accuracy,params", "--budget", "30",
            "--seeds", "3", "--jobs", "1", "--quiet", "--algo", "evolution,local,random,nsga2"]
    assert main([*argv, "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["algo"], r["seed"]) for r in lines] == [(a, s) for a in ("evolution", "local", "random", "nsga2")
                                                       for s in range(3)]
    rows = {r["ArchitectureString"] for r in csv.DictReader(open(table))}
    for r in lines:
        assert len(r["queries"]) == 30 and set(r["queries"]) <= rows
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"true front \d+ cells", out)
    summary = {line.split()[0]: line for line in out.splitlines()[3:]}
    for algo in ("evolution", "local", "random", "nsga2"):
        ratios = [independent_ratios(table, r["queries"]) for r in lines if r["algo"] == algo]
        assert all(0 <= x <= y <= 1 + 1e-12 for c in ratios for x, y in zip(c, c[1:]))
        for m in (25, 30):
            values = [c[m - 1] for c in ratios]
            expected = f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"
            assert expected in summary[algo], (algo, m, expected, summary[algo])


def test_plot_and_bad_input(table, tmp_path, capsys):
    png = tmp_path / "hv.png"
    argv = ["bench", "--table", table, "--column", "acc", "--objectives", "accuracy,params", "--budget", "12",
            "--seeds", "2", "--jobs", "1", "--quiet"]
    assert main([*argv, "--algo", "evolution,random", "--plot", str(png)]) == 0
    assert png.stat().st_size > 0
    capsys.readouterr()
    for extra, message in ((["--algo", "tpe"], "tpe is for one objective"),
                           (["--algo", "reinforce"], "takes one objective"),
                           (["--objectives", "params,accuracy"], "starts with accuracy"),
                           (["--objectives", "accuracy,latency"], "unknown objective 'latency'"),
                           (["--storage", f"sqlite:///{tmp_path / 'x.db'}"], "--storage records single-objective")):
        assert main([*argv, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert main(["bench", "--table", table, "--column", "acc", "--algo", "nsga2", "--quiet"]) == 2
    assert "nsga2 is for several objectives" in capsys.readouterr().err


@pytest.mark.skipif(not SHARED_TABLE.is_file(), reason=f"the shared NATS-Bench table is absent ({SHARED_TABLE})")
def test_pareto_evolution_beats_the_baselines_on_cifar10_at_100_queries():
    from nasengine.bench import runner

    runs = runner.run_many(["evolution", "local", "random"], "nasbench201", str(SHARED_TABLE),
                           "CIFAR10TestAccuracy200Epochs", 100, list(range(8)), jobs=2,
                           objectives=("accuracy", "params"))
    mean = {a: statistics.fmean(r.curve[99] for r in runs if r.algo == a) for a in ("evolution", "local", "random")}
    assert mean["evolution"] > max(mean["local"], mean["random"])

import csv
import itertools
import json
import random
import statistics
from pathlib import Path

import pytest

from nasengine.bench import runner as bench
from nasengine.cli.main import main
from nasengine.spaces.cell import load_space

SHARED_TABLE = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "nats_bench_tss_200ep.csv"
SPACE = load_space("nasbench201")


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> str:
    """All 15,625 cells with a made-up value per computed function (equal functions, equal values)."""
    path = tmp_path_factory.mktemp("table") / "made.csv"
    values: dict[str, float] = {}
    rng = random.Random(0)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ArchitectureString", "acc"])
        for a, b, c, d, e, g in itertools.product(SPACE.ops, repeat=6):
            text = f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{g}~2|"
            h = SPACE.hash(SPACE.parse(text))
            writer.writerow([text, values.setdefault(h, round(rng.uniform(10, 90), 2))])
    return str(path)


def bench_args(table: str, *extra: str) -> list[str]:
    return ["bench", "--table", table, "--column", "acc", "--budget", "30", "--seeds", "3", "--jobs", "1", *extra]


def test_json_curves_have_n_nondecreasing_points_and_agree_with_the_summary(table, capsys):
    assert main(bench_args(table, "--algo", "evolution", "--algo", "local,random", "--json")) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    order = [(a, s) for a in ("evolution", "local", "random") for s in range(3)]
    assert [(r["algo"], r["seed"]) for r in lines] == order
    for r in lines:
        assert len(r["curve"]) == 30 and all(x <= y for x, y in zip(r["curve"], r["curve"][1:]))
    assert "bench: 9/9 runs" in err  # the progress line, on stderr
    assert main(bench_args(table, "--algo", "evolution,local", "--algo", "random", "--quiet")) == 0
    out, err = capsys.readouterr()
    assert err == ""
    optimum = max(float(row["acc"]) for row in csv.DictReader(open(table)))
    rows = {line.split()[0]: line for line in out.splitlines()[3:]}
    assert set(rows) == {"evolution", "local", "random"}
    for algo, row in rows.items():
        curves = [r["curve"] for r in lines if r["algo"] == algo]
        at = [[c[m - 1] for c in curves] for m in (25, 30)]
        expected = [f"{statistics.fmean(v):.3f} ± {statistics.stdev(v):.3f}" for v in at]
        assert all(e in row for e in expected), (row, expected)
        optimal = sum(c[-1] >= optimum - 1e-9 for c in curves)
        assert f" {optimal}/3 " in row


def test_a_known_cell_is_not_counted_except_by_the_textbook_evolution(table):
    guided = bench.run_once("evolution", SPACE, table, "acc", 40, 0, keep_queries=True)
    assert len({q["hash"] for q in guided.queries}) == 40
    textbook = bench.run_once("textbook", SPACE, table, "acc", 200, 0, keep_queries=True)
    assert len(textbook.curve) == textbook.proposals == 200
    assert len({q["hash"] for q in textbook.queries}) < 200  # the paper's algorithm proposes repeats


def test_parallel_runs_equal_serial_runs_and_report_progress(table):
    seen = []
    serial = bench.run_many(["evolution", "local"], "nasbench201", table, "acc", 20, [5, 6])
    parallel = bench.run_many(["evolution", "local"], "nasbench201", table, "acc", 20, [5, 6], jobs=2,
                              done=lambda count, run: seen.append(count))
    assert [(r.algo, r.seed, r.curve) for r in serial] == [(r.algo, r.seed, r.curve) for r in parallel]
    assert seen == [1, 2, 3, 4]


def test_plot_and_storage(table, tmp_path, capsys):
    import optuna

    db = f"sqlite:///{tmp_path / 'bench.db'}"
    png = tmp_path / "curves.png"
    argv = bench_args(table, "--algo", "evolution", "--algo", "tpe", "--seeds", "2", "--budget", "10")
    assert main([*argv, "--plot", str(png), "--storage", db]) == 0
    assert png.stat().st_size > 0
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(db))
    assert names == [f"bench-acc-{a}-seed{s}" for a in ("evolution", "tpe") for s in range(2)]
    study = optuna.load_study(study_name="bench-acc-evolution-seed1", storage=db)
    assert len(study.trials) == 10 and study.user_attrs["algo"] == "evolution"
    assert "recorded 4 studies" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--algo", "nope"], "unknown algorithm 'nope'"),
    (["--algo", "evolution:kappa"], "expected key=value"),
    (["--algo", "tpe:n=3"], "tpe takes no settings"),
    (["--algo", "evolution:variant=fancy"], "unknown evolution variant 'fancy'"),
    (["--algo", " , "], "--algo names no algorithm"),
])
def test_bad_algorithms_are_one_line_errors(table, capsys, argv, message):
    assert main(bench_args(table, *argv)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.skipif(not SHARED_TABLE.is_file(), reason=f"the shared NATS-Bench table is absent ({SHARED_TABLE})")
def test_evolution_beats_local_search_on_imagenet16():
    """A small version of issue 11's check (the full one: docs/bench.md, benchmarks/nb201_sweep.py)."""
    runs = bench.run_many(["evolution", "local"], "nasbench201", str(SHARED_TABLE), "ImageNetTestAccuracy200Epochs",
                          100, list(range(12)))
    mean = {a: statistics.fmean(r.curve[49] for r in runs if r.algo == a) for a in ("evolution", "local")}
    assert mean["evolution"] > mean["local"] and mean["evolution"] >= 46.7

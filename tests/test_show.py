"""`nasengine show`, `studies`, `plot` and `draw --storage` on real SQLite studies (one written by a real
`nasengine search`, others built with Optuna's API to have every trial state), their printed figures
checked against the storage, and reading that never writes."""

import hashlib
import itertools
import json
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")
from optuna.distributions import CategoricalDistribution  # noqa: E402
from optuna.trial import TrialState, create_trial  # noqa: E402
from test_draw import assert_sensible_png  # noqa: E402

from nasengine.cli.main import main  # noqa: E402
from nasengine.progress import duration, human  # noqa: E402
from nasengine.spaces.cell import load_space  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


def add_trials(study, space_name, n, seed):
    """n trials laid out as docs/design.md says; every 5th FAIL, one RUNNING, one PRUNED."""
    space = load_space(space_name)
    choices = space.param_choices()
    rng = random.Random(seed)
    for i in range(n):
        g = space.sample(rng)
        params = space.to_params(g)
        dists = {k: CategoricalDistribution(choices[k]) for k in params}
        curve = [round(0.3 + 0.15 * e + 0.1 * rng.random(), 6) for e in range(4)]
        attrs = {"genotype": str(g), "hash": space.hash(g), "params": rng.randint(1_000_000, 9_000_000),
                 "flops": rng.randint(10_000_000, 99_000_000), "train_seconds": rng.uniform(5, 50),
                 "parent": None, "seed": i}
        if i % 3 == 0:
            attrs["latency_ms"] = round(rng.uniform(1, 9), 3)
        if i % 5 == 4:
            trial = create_trial(params=params, distributions=dists, user_attrs={"genotype": str(g), "seed": i},
                                 state=TrialState.FAIL)
        elif i == n - 1:
            trial = create_trial(params=params, distributions=dists, user_attrs={"genotype": str(g)},
                                 state=TrialState.RUNNING)
        elif i == n - 2:
            trial = create_trial(params=params, distributions=dists, user_attrs=attrs,
                                 intermediate_values=dict(enumerate(curve[:2])), state=TrialState.PRUNED)
        else:
            trial = create_trial(params=params, distributions=dists, value=curve[-1], user_attrs=attrs,
                                 intermediate_values=dict(enumerate(curve)))
        study.add_trial(trial)


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    path = tmp_path_factory.mktemp("studies") / "nas.db"
    url = f"sqlite:///{path}"
    for name, space, algo, n, seed in (("evo", "nasnet", "evolution", 23, 1), ("nb", "nasbench201", "random", 9, 2)):
        study = optuna.create_study(study_name=name, storage=url, direction="maximize")
        for key, value in (("space", space), ("algo", algo), ("dataset", "digits"),
                           ("config", {"space": space, "algo": algo, "trials": n, "epochs": 4}),
                           ("network", load_space(space).network)):
            study.set_user_attr(key, value)
        add_trials(study, space, n, seed)
    optuna.create_study(study_name="empty", storage=url)
    return path


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expected_ranking(path, name):
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{path}")
    done = study.get_trials(states=(TrialState.COMPLETE,))
    return study, sorted(done, key=lambda t: (-t.value, t.number))


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """(database path, URL) of a study written by a real search: ``nasengine search`` in-process, 3 trials
    of 1 epoch on digits, the default evolution on NAS-Bench-201 cells in a 4-channel network (seconds)."""
    torch = pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("search")
    config = folder / "tiny.yaml"
    # one thread: on a busy machine torch's default threads spin against each other (10x slower)
    config.write_text("space: nasbench201\nnetwork: {C: 4}\ntrain: {batch_size: 256, threads: 1}\n")
    url = f"sqlite:///{folder / 'search.db'}"
    threads = torch.get_num_threads()
    try:
        assert main(["search", "--config", str(config), "--executor", "inprocess", "--trials", "3", "--epochs", "1",
                     "--workers", "1", "--storage", url, "--study-name", "tiny"]) == 0
    finally:
        torch.set_num_threads(threads)
    return folder / "search.db", url


def table_rows(out, first_header):
    """The rows (split on spaces) of the table whose header starts with ``first_header`` (up to a blank line)."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:1] == [first_header])
    return [line.split() for line in itertools.takewhile(str.strip, lines[head + 2:])]


def test_show_and_studies_on_a_study_written_by_a_real_search(searched, capsys):
    path, url = searched
    study = optuna.load_study(study_name="tiny", storage=url)
    states = [t.state for t in study.trials]
    ranked = sorted((t for t in study.trials if t.state == TrialState.COMPLETE), key=lambda t: (-t.value, t.number))
    assert len(ranked) == 3
    before = digest(path)

    assert main(["show", "--storage", url, "--study-name", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "space    nasbench201   algo evolution   dataset digits" in out
    assert (f"trials   3 complete, 0 running, {states.count(TrialState.FAIL)} failed, 0 pruned "
            f"({len(states)} in all)") in out
    assert "progress 3/3 complete trials of the budget (done)" in out
    assert f"best     {study.best_value:.4f} (trial {study.best_trial.number})" in out
    assert "  epochs: 1" in out and "  executor: inprocess" in out
    space = load_space("nasbench201")
    rows = table_rows(out, "trial")
    assert len(rows) == 3
    for row, t in zip(rows, ranked):
        a = t.user_attrs  # written by the search driver from the real training
        assert a["params"] > 0 and a["flops"] > 0 and a["train_seconds"] > 0
        assert a["hash"] == space.hash(space.parse(a["genotype"]))
        assert row == [str(t.number), f"{t.value:.4f}", human(a["params"]), human(a["flops"]), "-",
                       duration(a["train_seconds"]), a["hash"]]

    assert main(["show", "--storage", url, "--study-name", "tiny", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    keys = ("number", "value", "params", "flops", "train_seconds", "genotype")
    assert [tuple(r[k] for k in keys) for r in data["top"]] \
        == [(t.number, t.value, *(t.user_attrs[k] for k in ("params", "flops", "train_seconds", "genotype")))
            for t in ranked]
    assert data["config"] == study.user_attrs["config"] and data["network"] == study.user_attrs["network"]

    assert main(["studies", "--storage", url]) == 0
    (row,) = table_rows(capsys.readouterr().out, "study")
    assert row[:9] == ["tiny", "nasbench201", "evolution", "digits", "3", "0", str(states.count(TrialState.FAIL)),
                       "0", f"{study.best_value:.4f}"]
    assert digest(path) == before  # reading wrote nothing


def test_show_prints_the_storage_figures(storage, capsys):
    before = digest(storage)
    assert main(["show", "--storage", f"sqlite:///{storage}", "--study-name", "evo", "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert digest(storage) == before  # reading wrote nothing
    study, ranked = expected_ranking(storage, "evo")
    states = [t.state for t in study.trials]
    n = {s: states.count(s) for s in TrialState}
    assert (f"{n[TrialState.COMPLETE]} complete, {n[TrialState.RUNNING]} running, {n[TrialState.FAIL]} failed, "
            f"{n[TrialState.PRUNED]} pruned ({len(states)} in all)") in out
    assert n[TrialState.FAIL] == 4 and n[TrialState.RUNNING] == 1 and n[TrialState.PRUNED] == 1
    assert f"best     {ranked[0].value:.4f} (trial {ranked[0].number})" in out
    assert "space    nasnet   algo evolution   dataset digits" in out
    assert "  epochs: 4" in out  # the configuration
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["trial", "accuracy"])
    rows = [line.split() for line in itertools.takewhile(str.strip, lines[head + 2:])]
    assert len(rows) == 5
    for row, t in zip(rows, ranked[:5]):
        a = t.user_attrs
        latency = f"{a['latency_ms']:.2f}ms" if "latency_ms" in a else "-"
        assert row == [str(t.number), f"{t.value:.4f}", f"{a['params'] / 1e6:.2f}M", f"{a['flops'] / 1e6:.1f}M",
                       latency, f"{a['train_seconds']:.1f}s", a["hash"]]


def test_show_json_matches_the_storage(storage, capsys):
    assert main(["show", "--storage", f"sqlite:///{storage}", "--study-name", "evo", "--top", "50", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    study, ranked = expected_ranking(storage, "evo")
    assert [r["number"] for r in data["top"]] == [t.number for t in ranked]
    for r, t in zip(data["top"], ranked):
        assert r["value"] == t.value
        for key in ("params", "flops", "train_seconds", "hash", "genotype"):
            assert r[key] == t.user_attrs[key]
        assert r["latency_ms"] == t.user_attrs.get("latency_ms")
    assert data["counts"]["COMPLETE"] == len(ranked)
    assert data["config"] == study.user_attrs["config"]
    assert data["best"] == {"number": ranked[0].number, "value": ranked[0].value}
    assert data["last_failure"]["number"] == max(t.number for t in study.trials if t.state == TrialState.FAIL)


def test_studies_lists_every_study(storage, capsys):
    before = digest(storage)
    assert main(["studies", "--storage", f"sqlite:///{storage}"]) == 0
    out = capsys.readouterr().out
    assert digest(storage) == before
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert set(rows) == {"evo", "nb", "empty"}
    for name in ("evo", "nb"):
        study, ranked = expected_ranking(storage, name)
        states = [t.state for t in study.trials]
        row = rows[name]
        assert row[1:4] == [study.user_attrs["space"], study.user_attrs["algo"], "digits"]
        assert row[4:9] == [str(states.count(TrialState.COMPLETE)), str(states.count(TrialState.RUNNING)),
                            str(states.count(TrialState.FAIL)), str(states.count(TrialState.PRUNED)),
                            f"{ranked[0].value:.4f}"]
    assert rows["empty"][1:9] == ["-", "-", "-", "0", "0", "0", "0", "-"]


def test_show_on_a_study_without_complete_trials(storage, capsys):
    assert main(["show", "--storage", f"sqlite:///{storage}", "--study-name", "empty"]) == 0
    out = capsys.readouterr().out
    assert "0 complete" in out and "no complete trials yet" in out


def assert_one_line_error(capsys, argv):
    """``nasengine ARGV`` exits 2 with one ``nasengine: error:`` line and no traceback; returns the line."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("nasengine: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err + captured.out
    return err


def test_show_defaults_to_the_only_study_of_the_default_storage(searched, tmp_path, monkeypatch, capsys):
    path, url = searched
    for suffix in ("", "-wal", "-shm"):  # the database as a search leaves it in the working directory
        if Path(f"{path}{suffix}").exists():
            (tmp_path / f"nasengine.db{suffix}").write_bytes(Path(f"{path}{suffix}").read_bytes())
    monkeypatch.chdir(tmp_path)
    assert main(["show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["study"] == "tiny"
    assert main(["show", "--storage", url, "--study-name", "tiny", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["study"] == "tiny"


@pytest.mark.parametrize("command", [["show", "--study-name", "evo"], ["studies"], ["plot", "--study-name", "evo",
                                                                                   "--out", "unused"]])
def test_a_missing_sqlite_file_is_an_error_and_is_not_created(command, tmp_path, capsys):
    missing = tmp_path / "nothing.db"
    err = assert_one_line_error(capsys, [command[0], "--storage", f"sqlite:///{missing}", *command[1:]])
    assert "nothing.db" in err  # names the file
    assert not missing.exists() and not (tmp_path / "unused").exists()


def test_a_sqlite_file_that_is_not_optuna_is_left_alone(tmp_path, capsys):
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("create table notes (x text)")
    con.commit()
    con.close()
    before = digest(other)
    err = assert_one_line_error(capsys, ["studies", "--storage", f"sqlite:///{other}"])
    assert "optuna" in err.lower()  # says it is not Optuna's
    assert digest(other) == before
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    before = digest(garbage)
    assert_one_line_error(capsys, ["studies", "--storage", str(garbage)])
    assert_one_line_error(capsys, ["studies", "--storage", f"sqlite:///{garbage}"])
    assert digest(garbage) == before


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "nonsense", "postgresql://nobody@127.0.0.1:1/x"])
def test_bad_storage_urls_are_one_line_errors(url, capsys):
    # postgresql: a one-line error whether its driver is missing or the server is not there
    assert_one_line_error(capsys, ["studies", "--storage", url])


def test_a_missing_study_names_the_ones_there(storage, capsys):
    before = digest(storage)
    assert main(["show", "--storage", f"sqlite:///{storage}", "--study-name", "evx"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "evx" in err and "evo" in err
    assert digest(storage) == before
    assert [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{storage}")] == ["evo", "nb", "empty"]


def test_show_png_draws_the_top_trials(storage, tmp_path, capsys):
    out_dir = tmp_path / "png"
    assert main(["show", "--storage", f"sqlite:///{storage}", "--study-name", "nb", "--top", "3",
                 "--png", str(out_dir)]) == 0
    _, ranked = expected_ranking(storage, "nb")
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"trial-{t.number}.png" for t in ranked[:3])
    for p in out_dir.iterdir():
        assert_sensible_png(p)
    assert "cell diagrams: 3/3" in capsys.readouterr().err  # progress


def test_draw_a_trial_of_a_study(storage, tmp_path, capsys):
    _, ranked = expected_ranking(storage, "evo")
    out = str(tmp_path / "b.png")
    assert main(["draw", "--storage", f"sqlite:///{storage}", "--study-name", "evo", "--out", out]) == 0
    assert_sensible_png(tmp_path / "b.png")
    failed = next(t for t in optuna.load_study(study_name="evo", storage=f"sqlite:///{storage}").trials
                  if t.state == TrialState.FAIL)  # a failed trial still has its genotype
    assert main(["draw", "--storage", f"sqlite:///{storage}", "--study-name", "evo", "--trial", str(failed.number),
                 "--out", str(tmp_path / "f.png")]) == 0
    assert main(["draw", "--storage", f"sqlite:///{storage}", "--study-name", "evo", "--trial", "999",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()


def test_plot_command_writes_every_plot(storage, tmp_path, capsys):
    before = digest(storage)
    assert main(["plot", "--storage", f"sqlite:///{storage}", "--study-name", "evo", "--out", str(tmp_path)]) == 0
    assert digest(storage) == before
    names = {"best_so_far.png", "accuracy_vs_params.png", "accuracy_vs_flops.png", "accuracy_vs_latency.png",
             "curves.png"}
    assert {p.name for p in tmp_path.iterdir()} == names
    for name in names:
        assert_sensible_png(tmp_path / name)
    assert main(["plot", "--storage", f"sqlite:///{storage}", "--study-name", "empty", "--out", str(tmp_path)]) == 2


def test_the_command_module_imports_nothing_heavy():
    code = ("import sys, nasengine.cli.show, nasengine.viz, nasengine.progress; "
            "print(sorted(m for m in ('optuna', 'matplotlib', 'torch', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""The search engine end to end: real `nasengine search` processes on real Ray, real Optuna studies in
SQLite files, real training on digits (tiny networks, one epoch). One search study is shared by most
tests; the kill-and-resume test and the Python-API searches run their own."""

import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import ray
import ray.cloudpickle
from optuna.trial import TrialState

from nasengine.cli.main import build_parser, main
from nasengine.cli.search import config_from_args
from nasengine.engine import SearchConfig, config_from_mapping, load_config_file, prepare, run_search
from nasengine.errors import NasError
from nasengine.spaces.cell import load_space
from nasengine.zoo.published import get_published

optuna.logging.set_verbosity(optuna.logging.WARNING)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import test modules

CLI = [sys.executable, "-m", "nasengine.cli.main"]
# a one-epoch NASNet network of 8 filters trains in a second or two on one core
TINY = "network: {F: 8}\ntrain: {batch_size: 128}\n"
SEARCH = ["search", "--config", "tiny.yaml", "--init", "nasnet_a", "--trials", "5", "--epochs", "1",
          "--algo-setting", "initial=2", "--algo-setting", "sample=2", "--workers", "2", "--cpus-per-trial", "1"]


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kill_all(proc: subprocess.Popen) -> None:
    """SIGKILL a process started in a session of its own: its process group, then whatever it started
    that lives elsewhere (Ray puts its node agents in process groups of their own)."""
    import psutil

    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    os.killpg(proc.pid, signal.SIGKILL)
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()


def nasengine(*args, cwd, timeout=240):
    """Run the ``nasengine`` command; on a timeout nothing it started is left behind."""
    proc = subprocess.Popen(CLI + list(args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_all(proc)
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """``(folder, completed process, study)``: `nasengine search` with the default storage and study name
    in an empty folder: NASNet-A first, then an evolution from 2 random cells (2 or more children)."""
    folder = tmp_path_factory.mktemp("searched")
    (folder / "tiny.yaml").write_text(TINY)
    done = nasengine(*SEARCH, cwd=folder)
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="nasnet-evolution-digits", storage=f"sqlite:///{folder / 'nasengine.db'}")
    return folder, done, study


def test_every_trial_is_laid_out_as_designed(searched):
    folder, done, study = searched
    space = load_space("nasnet")
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 5
    for t in trials:
        g = space.parse(t.user_attrs["genotype"])
        assert t.params == space.to_params(g) and t.user_attrs["hash"] == space.hash(g)
        assert t.user_attrs["params"] > 0 and t.user_attrs["flops"] > 0 and t.user_attrs["train_seconds"] > 0
        assert t.user_attrs["seed"] == 0 and "parent" in t.user_attrs
        assert list(t.intermediate_values) == [1] and t.value == t.intermediate_values[1]
    assert len({t.user_attrs["hash"] for t in trials}) == 5  # no candidate trained twice
    config = study.user_attrs["config"]
    assert config["network"] == {"F": 8} and config["trials"] == 5 and config["init"] == ["nasnet_a"]
    assert config["algo_settings"] == {"initial": 2, "sample": 2} and config["workers"] == 2
    assert (study.user_attrs["space"], study.user_attrs["algo"], study.user_attrs["dataset"]) == \
        ("nasnet", "evolution", "digits")
    assert study.user_attrs["network"]["F"] == 8 and study.user_attrs["network"]["image_size"] == 8
    assert "2 trials at once, 1 CPU each" in done.stderr  # --workers and --cpus-per-trial reached Ray Tune
    assert "5/5 trained" in done.stderr  # live progress
    best = max(trials, key=lambda t: t.value)
    out = done.stdout
    assert "storage:   sqlite:///nasengine.db" in out and "study:     nasnet-evolution-digits" in out
    assert f"trial #{best.number}, validation accuracy {best.value:.4f}" in out
    assert "nasengine dashboard --storage sqlite:///nasengine.db" in out
    assert "nasengine export --storage sqlite:///nasengine.db --study-name nasnet-evolution-digits" in out


def test_the_published_cell_starts_and_children_name_parents(searched):
    _, _, study = searched
    space = load_space("nasnet")
    first = study.trials[0]
    assert first.user_attrs["note"] == "init:nasnet_a" and first.user_attrs["parent"] is None
    assert first.user_attrs["hash"] == space.hash(get_published("nasnet_a"))
    children = [t for t in study.trials if t.user_attrs["parent"] is not None]
    assert children and all(t.user_attrs["parent"] < t.number for t in children)
    assert all(study.trials[t.user_attrs["parent"]].state == TrialState.COMPLETE for t in children)


def test_each_trial_has_its_cell_diagram_as_an_artifact(searched):
    folder, _, study = searched
    for t in study.trials:
        metas = optuna.artifacts.get_all_artifact_meta(t, storage=study._storage)
        assert sorted(m.mimetype for m in metas) == ["application/octet-stream", "image/png"]  # + the weights
        (png,) = [folder / "nasengine-artifacts" / m.artifact_id for m in metas if m.mimetype == "image/png"]
        assert png.read_bytes().startswith(b"\x89PNG")


def test_the_same_command_resumes_and_leaves_a_finished_study_alone(searched):
    folder, _, study = searched
    before = digest(folder / "nasengine.db")
    again = nasengine(*SEARCH, cwd=folder)
    assert again.returncode == 0 and "already has 5 COMPLETE trials" in again.stdout
    assert digest(folder / "nasengine.db") == before


def export_and_count(folder, storage: str, study_name: str, *trial: str) -> int:
    """`nasengine export` of the best (or the numbered) trial, then the file's ``Network()`` run on a digits
    batch in a Python where importing nasengine fails; returns its parameter count."""
    out = folder / "exported.py"
    done = nasengine("export", "--storage", storage, "--study-name", study_name, *trial, "--out", str(out),
                     cwd=folder)
    assert done.returncode == 0, done.stderr
    code = ("import sys, runpy, torch; sys.modules['nasengine'] = None; "  # import nasengine now fails
            f"net = runpy.run_path({str(out)!r})['Network']().eval(); "
            "print(sum(p.numel() for p in net.parameters()), tuple(net(torch.zeros(2, 1, 8, 8)).shape))")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=folder, timeout=120)
    assert ran.returncode == 0, ran.stderr
    params, *shape = ran.stdout.split()
    assert shape == ["(2,", "10)"]
    return int(params)


def test_export_a_trial_runs_without_nasengine(searched, tmp_path):
    folder, _, study = searched
    assert export_and_count(tmp_path, f"sqlite:///{folder / 'nasengine.db'}", study.study_name, "--trial", "2") == \
        study.trials[2].user_attrs["params"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, timeout=30.0):
    end = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.3)


# optuna-dashboard's own command, beside this Python's executable (a venv's bin/)
OPTUNA_DASHBOARD = [str(Path(sys.executable).with_name("optuna-dashboard")), "sqlite:///nasengine.db",
                    "--artifact-dir", "nasengine-artifacts"]


@pytest.mark.parametrize("command", [CLI + ["dashboard"], OPTUNA_DASHBOARD], ids=["nasengine", "optuna-dashboard"])
def test_dashboard_serves_the_study_with_params_and_diagrams(searched, command):
    folder, _, study = searched
    port = free_port()
    proc = subprocess.Popen(command + ["--port", str(port)], cwd=folder, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        studies = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
        assert [s["study_name"] for s in studies] == [study.study_name]
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}")
        trials = detail["trials"]
        assert len(trials) == 5
        assert {p["name"] for p in trials[0]["params"]} == set(study.trials[0].params)
        assert all(len(t["artifacts"]) == 2 for t in trials)  # diagram and weights: the default artifact dir was found
    finally:
        proc.terminate()
        proc.wait(timeout=30)


OTHER_EPOCHS = ["2" if before == "--epochs" else arg for before, arg in zip([""] + SEARCH, SEARCH)]


@pytest.mark.parametrize("argv,message", [
    (["search", "--space", "nope"], "unknown search space 'nope'"),
    (["search", "--algo", "nope"], "unknown algorithm 'nope'"),
    (["search", "--storage", "nonsense"], "bad storage URL"),
    (["search", "--storage", "oracle2://x@y/z"], "unknown database kind"),
    (OTHER_EPOCHS, "was made with other settings: epochs 1 (now 2)"),
    (["export", "--storage", "sqlite:///nasengine.db", "--study-name", "nope", "--out", "x.py"], "no study 'nope'"),
    (["export", "--storage", "sqlite:///missing.db", "--study-name", "x", "--out", "x.py"], "does not exist"),
    (["search", "--trials", "-3"], "--trials: must be positive, got -3"),
])
def test_bad_input_is_one_line_exit_2_and_leaves_the_database_alone(searched, monkeypatch, capsys, argv, message):
    folder, _, _ = searched
    monkeypatch.chdir(folder)
    before = digest(folder / "nasengine.db")
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("nasengine") and ": error: " in err
    assert digest(folder / "nasengine.db") == before
    assert not (folder / "missing.db").exists() and not (folder / "x.py").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_gpus_per_trial_without_a_gpu_is_a_one_line_error(tmp_path, capsys):
    assert main(["search", "--gpus-per-trial", "0.25", "--storage", f"sqlite:///{tmp_path / 'g.db'}"]) == 2
    assert "has no GPU" in capsys.readouterr().err and not (tmp_path / "g.db").exists()


# ---------------------------------------------------------------------------------------- resume


def states(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(con.execute("select number, state from trials order by number").fetchall())
    finally:
        con.close()


def completed_so_far(db) -> int:
    """COMPLETE trials of a study still being written: 0 while the file exists but Optuna has not yet
    created its tables (or holds a lock), which a poll can catch."""
    try:
        return list(states(db).values()).count("COMPLETE")
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_a_killed_search_resumes_to_exactly_its_budget(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    db = tmp_path / "r.db"
    argv = CLI + ["search", "--config", "tiny.yaml", "--trials", "12", "--epochs", "1", "--storage",
                  f"sqlite:///{db}", "--algo-setting", "initial=3", "--algo-setting", "sample=2"]
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(argv, cwd=tmp_path, stdout=log, stderr=log, start_new_session=True)
        end = time.monotonic() + 120
        while first.poll() is None and time.monotonic() < end:
            if db.exists() and completed_so_far(db) >= 6:
                break
            time.sleep(0.2)
        assert first.poll() is None, (tmp_path / "first.log").read_text()
        kill_all(first)  # SIGKILL to the driver's process group (and Ray's agents, not to leak them)
    before = states(db)
    study = optuna.load_study(study_name="nasnet-evolution-digits", storage=f"sqlite:///{db}")
    values = {t.number: t.value for t in study.trials if t.state == TrialState.COMPLETE}
    assert 6 <= len(values) < 12

    second = nasengine(*argv[len(CLI):], cwd=tmp_path, timeout=120)
    assert second.returncode == 0, second.stderr
    assert f"resuming: {len(values)} COMPLETE" in second.stderr
    trials = optuna.load_study(study_name="nasnet-evolution-digits", storage=f"sqlite:///{db}").trials
    assert [t.number for t in trials] == list(range(len(trials)))
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 12
    for t in trials[:len(before)]:
        if before[t.number] == "COMPLETE":  # nothing finished before the kill is lost or redone
            assert t.state == TrialState.COMPLETE and t.value == values[t.number]
        else:  # left RUNNING by the dead driver
            assert t.state == TrialState.FAIL and "left RUNNING" in t.user_attrs["error"]
    after = trials[len(before):]
    assert all(t.state == TrialState.COMPLETE for t in after)
    assert any(t.user_attrs["parent"] is not None and t.user_attrs["parent"] < len(before) for t in after)
    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert export_and_count(tmp_path, f"sqlite:///{db}", "nasnet-evolution-digits") == best.user_attrs["params"]


# ------------------------------------------------------------------------------------ Python API


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the searches run through the Python API (the executor joins it)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20)
    yield
    ray.shutdown()


def flaky(genotype_text: str, seed: int, report) -> dict:
    """An evaluator that fails a third of the candidates by raising and a third with a NaN value."""
    h = int(hashlib.sha256(genotype_text.encode()).hexdigest(), 16)
    report(1, 0.5)
    if h % 3 == 0:
        raise FloatingPointError("synthetic failure")
    value = float("nan") if h % 3 == 1 else (h % 997) / 997
    return {"value": value, "curve": [0.5, value], "params": 1, "flops": 1, "train_seconds": 0.0}


def test_failed_trials_are_stored_with_their_error_and_the_search_goes_on(local_ray, tmp_path, capsys):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # the diagrams cannot be written: the search must not care
    cfg = SearchConfig(space="nasbench201", algo="random", trials=6, storage=f"sqlite:///{tmp_path / 'f.db'}",
                       artifact_dir=str(blocked), max_failures=50)
    result = run_search(cfg, evaluator=flaky, stream=sys.stderr)
    assert result.n_complete == 6 and result.n_failed > 0
    study = optuna.load_study(study_name="nasbench201-random-digits", storage=cfg.storage)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    errors = {t.user_attrs["error"] for t in failed}
    assert errors <= {"FloatingPointError: synthetic failure", "EvaluatorError: the evaluator returned value nan"}
    assert any("Traceback" in t.user_attrs.get("traceback", "") for t in failed)
    assert all(t.intermediate_values[1] == 0.5 for t in study.trials)
    assert capsys.readouterr().err.count("warning: no cell diagram") == 1


# two texts of one computed function: node 2 feeds the output only through a zero op
SAME = ["|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
        "|none~0|+|nor_conv_1x1~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"]


def test_nasbench201_cells_are_searched_on_digits_and_a_known_cell_is_not_trained_again(local_ray, tmp_path):
    cfg = SearchConfig(space="nasbench201", algo="evolution", trials=3, epochs=2, network={"C": 4}, init=SAME,
                       storage=f"sqlite:///{tmp_path / 'nb.db'}", diagrams=False, algo_settings={"initial": 2})
    result = run_search(cfg, stream=None)
    assert result.n_complete == 3 and result.trained_now == 3 and result.n_failed == 0
    study = optuna.load_study(study_name="nasbench201-evolution-digits", storage=cfg.storage)
    space = load_space("nasbench201")
    assert len(study.trials) == 3 and study.trials[0].user_attrs["genotype"] == SAME[0]
    assert len({t.user_attrs["hash"] for t in study.trials}) == 3  # SAME[1] was answered from trial 0
    for t in study.trials:
        assert t.value == t.intermediate_values[2] and list(t.intermediate_values) == [1, 2]
        space.validate(space.parse(t.user_attrs["genotype"]))
    assert study.trials[0].value > 0.3  # trained: a 3x3 conv cell beats chance (0.1) on digits
    assert study.user_attrs["network"]["skeleton"] == "nb201"


# ------------------------------------------------------------------------------------ configurations


def test_quick_study_is_the_default_search():
    assert config_from_mapping(load_config_file("quick")) == SearchConfig()


def test_the_amoebanet_study_is_valid_and_paper_like():
    cfg = config_from_mapping(load_config_file("cifar10-amoebanet"), "cifar10-amoebanet")
    p = prepare(cfg, check_machine=False)  # no CIFAR files and no GPU needed to check it
    assert (cfg.dataset, cfg.algo, cfg.epochs, cfg.gpus_per_trial) == ("cifar10", "evolution", 25, 0.25)
    assert cfg.algo_settings == {"variant": "textbook", "population": 100, "sample": 25}
    assert (p.network["N"], p.network["F"], p.network["image_size"]) == (3, 24, 32)
    assert p.evaluators["train"].config().batch_size > 0


def test_flags_override_the_config_file_and_reach_the_executor():
    args = build_parser().parse_args(["search", "--config", "quick", "--trials", "7", "--algo-setting", "sample=2",
                                      "--workers", "3", "--cpus-per-trial", "2", "--gpus-per-trial", "0.5",
                                      "--ray-address", "10.0.0.1:6379"])
    cfg = config_from_args(args)
    assert cfg.trials == 7 and cfg.algo_settings["sample"] == 2 and cfg.epochs == SearchConfig().epochs
    executor = prepare(cfg, check_machine=False).executor
    assert (executor.workers, executor.cpus_per_trial, executor.gpus_per_trial, executor.address) == \
        (3, 2.0, 0.5, "10.0.0.1:6379")
    assert prepare(cfg, check_machine=False).evaluators["train"].threads == 2  # torch threads follow --cpus-per-trial
    in_process = config_from_mapping({"executor": "inprocess", "ray_address": None}, base=cfg)
    assert prepare(in_process, check_machine=False).evaluators["train"].threads == 2


def test_bad_config_values_are_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    for text, message in (("trials: -3", "trials must be a positive integer"), ("epochs: two", "epochs must be"),
                          ("colour: red", "unknown setting"), ("- a list", "mapping")):
        bad.write_text(text)
        with pytest.raises(NasError, match=message):
            prepare(config_from_mapping(load_config_file(str(bad))), check_machine=False)


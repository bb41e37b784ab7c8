"""The Optuna layer on real SQLite files and a real PostgreSQL server (conftest.py's ``storage_url``):
storage URL checks and their one-line errors, the trial layout the driver writes (fast SQL path = Optuna's
API), the narrow history read a resume uses, and marking the trials of a dead driver FAIL."""

import hashlib
import importlib.util
import random
import sqlite3

import optuna
import pytest
from optuna.trial import TrialState

from nasengine import storage as st
from nasengine.errors import NasError
from nasengine.spaces.cell import load_space
from nasengine.storage.history import _read_history_api

optuna.logging.set_verbosity(optuna.logging.WARNING)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text and text
    return text


# ------------------------------------------------------------------------------------------- URLs


@pytest.mark.parametrize("url,message", [
    ("", "empty"),
    ("nonsense", "sqlite:///nonsense"),
    ("oracle2://a@b/c", "unknown database kind"),
    ("sqlite://", "in-memory"),
    ("sqlite:///:memory:", "in-memory"),
    ("sqlite:////no/such/folder/x.db", "does not exist"),
])
def test_bad_urls_are_one_line_errors(url, message):
    with pytest.raises(NasError) as e:
        st.check_storage_url(url)
    assert message in one_line(e)


@pytest.mark.skipif(any(importlib.util.find_spec(m) for m in ("psycopg", "psycopg2")),
                    reason="a PostgreSQL driver is installed")
def test_postgres_without_a_driver_names_the_package():
    with pytest.raises(NasError) as e:
        st.connect("postgresql://nobody:secret@127.0.0.1:1/x", create=True)
    text = one_line(e)
    assert "psycopg" in text and "pip install 'nasengine[postgres]'" in text and "secret" not in text


def test_reading_a_missing_file_says_it_does_not_exist_and_creates_nothing(tmp_path):
    path = tmp_path / "missing.db"
    with pytest.raises(NasError) as e:
        st.connect(f"sqlite:///{path}", create=False)
    assert "does not exist" in one_line(e) and str(path) in str(e.value)
    with pytest.raises(NasError, match="does not exist"):
        st.open_study(f"sqlite:///{path}", "s")
    assert not path.exists()


def test_files_that_are_not_optuna_storages_are_left_alone(tmp_path):
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("create table notes (x text)")
    con.commit()
    con.close()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    empty = tmp_path / "empty.db"
    empty.touch()
    for path, create in ((other, True), (other, False), (garbage, True), (garbage, False), (empty, False)):
        before = digest(path)
        with pytest.raises(NasError) as e:
            st.connect(f"sqlite:///{path}", create=create)
        assert "is not an Optuna storage" in one_line(e)
        assert digest(path) == before


def test_default_artifact_dir_is_beside_the_sqlite_file(tmp_path):
    assert st.default_artifact_dir(f"sqlite:///{tmp_path}/a.db") == tmp_path / "nasengine-artifacts"


# ------------------------------------------------------------------------------------------ trials


@pytest.fixture()
def rdb(storage_url):
    """A new Optuna storage: a SQLite file, and a PostgreSQL database (conftest.py's ``storage_url``)."""
    return st.connect(storage_url, create=True)


def start_trials(rdb, space, n, seed=0, fast=True):
    study_id = st.find_study_id(rdb, "s") or st.create_study(rdb, "s", {"space": space.name, "config": {"a": 1}})
    writer = st.TrialWriter(rdb, study_id, space)
    writer.fast = fast
    rng = random.Random(seed)
    out = []
    for i in range(n):
        g = space.sample(rng)
        trial_id, number = writer.start(g, seed=0, parent=i - 1 if i else None)
        out.append((trial_id, number, g))
    return writer, out


def test_the_fast_trial_rows_equal_optunas_own(rdb):
    space = load_space("nasnet")
    writer, fast = start_trials(rdb, space, 3, fast=True)
    _, slow = start_trials(rdb, space, 3, fast=False)  # the same genotypes through create_new_trial
    assert [n for _, n, _ in fast + slow] == list(range(6))
    for (a, _, g), (b, _, _) in zip(fast, slow):
        ta, tb = rdb.get_trial(a), rdb.get_trial(b)
        assert ta.state == tb.state == TrialState.RUNNING
        assert ta.params == tb.params == space.to_params(g)
        assert ta.distributions == tb.distributions
        assert ta.user_attrs == tb.user_attrs
        assert space.parse(ta.user_attrs["genotype"]) == g


@pytest.mark.parametrize("fast", [True, False])
def test_a_guarded_start_refuses_twins_and_trials_past_the_limit(rdb, fast):
    space = load_space("nasbench201")
    writer, [(first, _, g), (second, _, _)] = start_trials(rdb, space, 2, fast=fast)
    assert writer.start(g, seed=0, unique=True) is None  # RUNNING twin
    writer.complete(first, 0.5, {})
    assert writer.start(g, seed=0, unique=True) is None  # COMPLETE twin
    writer.fail(second, {"error": "x"})
    other = space.sample(random.Random(7))
    assert writer.start(other, seed=0, unique=True, limit=1) is None  # 1 COMPLETE trial: the budget is spent
    assert writer.start(other, seed=0, unique=True, limit=2)[1] == 2
    assert writer.start(g, seed=0) is not None  # unguarded: as before


def test_a_trial_written_as_designed_reads_back_through_optuna(rdb):
    space = load_space("pnasnet")
    writer, trials = start_trials(rdb, space, 3)
    (t0, _, _), (t1, _, _), (t2, _, _) = trials
    for step, value in ((1, 0.5), (2, 0.75), (3, float("nan"))):  # a NaN report is skipped
        writer.report(t0, step, value)
    writer.complete(t0, 0.75, {"params": 1234, "flops": 5678, "train_seconds": 1.5})
    writer.fail(t1, {"error": "TrainingDiverged: loss is nan"})
    study = optuna.load_study(study_name="s", storage=rdb)
    done = study.trials[0]
    assert done.state == TrialState.COMPLETE and done.value == 0.75
    assert done.intermediate_values == {1: 0.5, 2: 0.75}
    assert done.user_attrs["params"] == 1234 and done.user_attrs["parent"] is None
    assert study.trials[1].state == TrialState.FAIL and study.trials[1].user_attrs["error"].startswith("Training")
    assert study.trials[2].state == TrialState.RUNNING
    assert st.pick_trial(study).number == 0
    assert st.pick_trial(study, 2).number == 2
    with pytest.raises(NasError, match="no trial 7 .trials 0..2."):
        st.pick_trial(study, 7)


def test_history_is_narrow_ordered_by_finish_and_agrees_with_optuna(rdb):
    space = load_space("nasnet")
    writer, trials = start_trials(rdb, space, 5)
    for trial_id, _, _ in reversed(trials[1:]):  # finish in reverse order; trial 0 stays RUNNING
        writer.complete(trial_id, 0.1 * trial_id, {})
    rows = st.read_history(rdb, writer.study_id)
    assert [r.number for r in rows] == [4, 3, 2, 1]
    assert rows == _read_history_api(rdb, writer.study_id, ("COMPLETE", "FAIL"))
    assert rows[0].genotype == space.format(trials[4][2]) and rows[0].parent == 3
    assert rows[0].hash == space.hash(trials[4][2]) and rows[0].state == "COMPLETE"
    assert st.count_complete(rdb, writer.study_id) == 4


def test_fail_running_marks_only_dead_drivers_trials(rdb):
    import socket
    import subprocess
    import sys
    import time

    from nasengine.storage.drivers import heartbeat_key

    space = load_space("nasbench201")
    writer, trials = start_trials(rdb, space, 6)
    writer.complete(trials[0][0], 0.9, {})
    assert st.fail_running(rdb, writer.study_id, "left RUNNING") == []  # this process writes them: alive
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    writers = {1: f"{host}:{gone.pid}:1", 2: None, 3: "elsewhere:7:1", 4: "stale-host:7:1"}  # 5: this process
    for number, driver in writers.items():
        rdb.set_trial_user_attr(trials[number][0], "driver", driver)
    rdb.set_study_system_attr(writer.study_id, heartbeat_key("elsewhere:7:1"), time.time())
    rdb.set_study_system_attr(writer.study_id, heartbeat_key("stale-host:7:1"), time.time() - 3600)
    assert st.fail_running(rdb, writer.study_id, "left RUNNING") == [1, 2, 4]
    states = [rdb.get_trial(t).state for t, _, _ in trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL, TrialState.RUNNING, TrialState.FAIL,
                      TrialState.RUNNING]
    assert rdb.get_trial(trials[1][0]).user_attrs["error"] == "left RUNNING"
    assert st.fail_running(rdb, writer.study_id, "again") == []


def test_open_study_never_creates_and_names_what_is_there(tmp_path):
    url = f"sqlite:///{tmp_path / 'two.db'}"
    rdb = st.connect(url, create=True)
    st.create_study(rdb, "first", {})
    assert st.open_study(url).study_name == "first"  # the only study
    with pytest.raises(NasError, match="has no COMPLETE trial yet"):
        st.pick_trial(st.open_study(url, "first"))
    st.create_study(rdb, "second", {})
    before = digest(tmp_path / "two.db")
    with pytest.raises(NasError) as e:
        st.open_study(url, "third")
    assert "first" in one_line(e) and "second" in str(e.value)
    with pytest.raises(NasError, match="name one with --study-name"):
        st.open_study(url)
    assert digest(tmp_path / "two.db") == before


# ------------------------------------------------------------------------------------------ artifacts


def test_attach_png_uploads_an_artifact_only_while_the_trial_runs(rdb, tmp_path):
    from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta

    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    writer, [(trial_id, number, _)] = start_trials(rdb, load_space("darts"), 1)
    artifact_id = st.attach_png(rdb, trial_id, png, tmp_path / "artifacts")
    writer.complete(trial_id, 0.5, {})
    metas = get_all_artifact_meta(rdb.get_trial(trial_id), storage=rdb)
    assert [m.artifact_id for m in metas] == [artifact_id]
    assert metas[0].mimetype == "image/png" and metas[0].filename == f"cells-trial-{number}.png"
    out = tmp_path / "back.png"
    download_artifact(artifact_store=FileSystemArtifactStore(str(tmp_path / "artifacts")), artifact_id=artifact_id,
                      file_path=str(out))
    assert out.read_bytes() == png
    # a finished trial takes no attributes in Optuna: a clear error, not an Optuna traceback
    with pytest.raises(NasError, match="before telling"):
        st.attach_png(rdb, trial_id, png, tmp_path / "artifacts")

"""Weight-sharing searches under the engine, end to end: real `nasengine search --algo darts|enas`
processes on real Ray, each search one trial of a real Optuna study, real supernet training on digits
(small supernets, one epoch)."""

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState
from test_search import export_and_count, nasengine

from nasengine.spaces.cell import load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

SMALL = ["--epochs", "1", "--workers", "2", "--algo-setting", "C=4", "--algo-setting", "layers=3"]


def load(folder, name):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{folder / 'nasengine.db'}")


@pytest.fixture(scope="module")
def darts_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("darts")
    done = nasengine("search", "--space", "darts", "--algo", "darts", "--trials", "2", "--retrain-epochs", "1",
                     *SMALL, cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder, load(folder, "darts-darts-digits")


def test_each_search_is_one_trial_with_its_derived_genotype(darts_study):
    folder, study = darts_study
    space = load_space("darts")
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    searches = [t for t in trials if t.user_attrs["note"] == "search"]
    assert sorted(t.user_attrs["seed"] for t in searches) == [0, 1]
    for t in searches:
        g = space.parse(t.user_attrs["genotype"])
        assert t.params == space.to_params(g) and t.user_attrs["hash"] == space.hash(g)
        assert t.user_attrs["derived_genotypes"] == [t.user_attrs["genotype"]]  # one epoch: one derivation
        assert len(t.user_attrs["param_free_ops"]) == 1 and t.user_attrs["parent"] is None
        assert list(t.intermediate_values) == [1] and t.intermediate_values[1] == pytest.approx(t.value)
        files = {m.filename for m in get_all_artifact_meta(t, storage=study._storage)}
        assert {f"alphas-trial-{t.number}.png", f"cells-trial-{t.number}.png"} <= files
        assert (folder / "nasengine-artifacts").is_dir()


def test_the_best_search_is_retrained_from_scratch_as_its_child(darts_study):
    _, study = darts_study
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    searches = [t for t in trials if t.user_attrs["note"] == "search"]
    [retrain] = [t for t in trials if t.user_attrs["note"] == "retrain"]
    best = max(searches, key=lambda t: t.value)
    assert retrain.user_attrs["parent"] == best.number
    assert retrain.user_attrs["genotype"] == best.user_attrs["genotype"]
    assert retrain.user_attrs["epochs"] == 1 and retrain.user_attrs["params"] > 0


def test_the_derived_genotype_exports_and_runs_without_nasengine(darts_study, tmp_path):
    folder, study = darts_study
    search = next(t for t in study.trials if t.user_attrs.get("note") == "search")
    params = export_and_count(tmp_path, f"sqlite:///{folder / 'nasengine.db'}", study.study_name,
                              "--trial", str(search.number))
    assert params == search.user_attrs["params"]


def test_a_larger_budget_resumes_with_the_next_seed_only(darts_study):
    folder, _ = darts_study
    done = nasengine("search", "--space", "darts", "--algo", "darts", "--trials", "3", "--retrain-epochs", "1",
                     *SMALL, cwd=folder)
    assert done.returncode == 0, done.stderr
    trials = load(folder, "darts-darts-digits").get_trials(states=(TrialState.COMPLETE,))
    assert sorted(t.user_attrs["seed"] for t in trials if t.user_attrs["note"] == "search") == [0, 1, 2]
    assert len(trials) == 4  # the retraining is not repeated


def test_enas_and_nasbench201_darts_searches_complete(tmp_path):
    for space, algo, extra in (("enas", "enas", ["--algo-setting", "C=4"]), ("nasbench201", "darts", [])):
        done = nasengine("search", "--space", space, "--algo", algo, "--trials", "1", "--epochs", "1",
                         *extra, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        [t] = load(tmp_path, f"{space}-{algo}-digits").trials
        assert t.state == TrialState.COMPLETE
        load_space(space).validate(load_space(space).parse(t.user_attrs["genotype"]))


@pytest.mark.parametrize("argv, message", [
    (["--algo", "darts", "--init", "darts_v2"], "does not go with --algo darts"),
    (["--algo", "evolution", "--retrain-epochs", "2"], "goes with a weight-sharing search"),
    (["--algo", "darts", "--algo-setting", "lr=1"], "unknown setting"),
    (["--algo", "nope"], "unknown algorithm 'nope'"),
])
def test_bad_weight_sharing_input_is_one_line_and_writes_nothing(tmp_path, argv, message):
    done = nasengine("search", "--space", "darts", *argv, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "nasengine.db").exists()

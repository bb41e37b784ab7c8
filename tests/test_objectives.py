"""Objectives end to end: MnasNet's reward, multi-objective studies, latency measured once per canonical
genotype, on real Ray with real Optuna studies in SQLite files and real training on digits (NAS-Bench-201
cells in a 4-channel network, one epoch: a second or two a candidate)."""

import math
import sys

import optuna
import pytest
import ray
import ray.cloudpickle
from optuna.study import StudyDirection
from optuna.trial import TrialState

from nasengine.cli.main import main
from nasengine.core.pareto import pareto_front
from nasengine.engine import SearchConfig, run_search
from nasengine.engine.objectives import REWARD_EXPONENT, mnasnet_reward
from nasengine.errors import NasError
from nasengine.spaces import load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import test modules

TINY = {"space": "nasbench201", "network": {"C": 4}, "train": {"batch_size": 256, "threads": 1}, "epochs": 1,
        "diagrams": False, "workers": 2}
# two texts of one computed function (node 2 reaches the output only through a zero op): one canonical hash
SAME = ["|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
        "|none~0|+|nor_conv_1x1~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20)
    yield
    ray.shutdown()


def load(cfg: SearchConfig, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=cfg.storage)


def test_the_reward_is_mnasnets_formula():
    assert mnasnet_reward(0.8, 5.0, 5.0) == pytest.approx(0.8)
    assert mnasnet_reward(0.8, 10.0, 5.0) == pytest.approx(0.8 * 2 ** -0.07)  # twice as slow: -4.7%
    assert mnasnet_reward(0.8, 2.5, 5.0) == pytest.approx(0.8 * 0.5 ** -0.07)  # twice as fast: +5.0%
    assert REWARD_EXPONENT == -0.07


def test_reward_trials_keep_accuracy_and_latency_and_their_value_follows_the_formula(local_ray, tmp_path):
    cfg = SearchConfig(**TINY, algo="random", trials=2, objective="reward", target_latency_ms=0.5,
                       latency={"where": "worker"}, storage=f"sqlite:///{tmp_path / 'r.db'}")
    result = run_search(cfg, stream=None)
    assert result.n_complete == 2 and result.objectives == ("reward",)
    study = load(cfg, "nasbench201-random-digits")
    assert study.direction == StudyDirection.MAXIMIZE
    assert study.user_attrs["latency"] == {"device": "cpu", "threads": 1, "batch": 1, "resolution": 8,
                                           "mode": "measured", "where": "worker", "table": None}
    assert study.user_attrs["target_latency_ms"] == 0.5 and study.user_attrs["objectives"] == ["reward"]
    for t in study.trials:
        a = t.user_attrs
        assert a["params"] > 0 and a["flops"] > 0 and 0 < a["latency_ms"] < 1000
        assert a["accuracy"] == t.intermediate_values[1]  # the final validation accuracy
        assert t.value == pytest.approx(a["accuracy"] * (a["latency_ms"] / 0.5) ** -0.07, rel=1e-12)


def test_a_multi_objective_study_has_its_directions_values_front_and_resumes(local_ray, tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = SearchConfig(**TINY, algo="random", trials=2, objectives=["accuracy", "params"], storage=storage)
    assert run_search(cfg, stream=None).n_complete == 2
    resumed = run_search(SearchConfig(**{**cfg.to_dict(), "trials": 4}), stream=None)  # the same study, 2 more
    assert resumed.resumed and resumed.n_complete == 4 and resumed.trained_now == 2
    study = load(cfg, "nasbench201-random-digits")
    assert study.directions == [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    assert study.user_attrs["objectives"] == ["accuracy", "params"]
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 4 and len({t.user_attrs["hash"] for t in trials}) == 4
    for t in trials:
        assert t.values == [t.user_attrs["accuracy"], t.user_attrs["params"]]
        assert "latency_ms" not in t.user_attrs  # latency not asked for

    with pytest.raises(NasError, match="other settings: objectives"):
        run_search(SearchConfig(**{**cfg.to_dict(), "objectives": ["accuracy", "flops"]}), stream=None)

    assert main(["show", "--storage", storage, "--study-name", study.study_name]) == 0
    out = capsys.readouterr().out
    assert "(maximize accuracy, minimize params)" in out
    front = [trials[i] for i in pareto_front([t.values for t in trials], (True, False))]
    lines = out[out.index("Pareto front of accuracy against params"):].splitlines()
    assert lines[0] == f"Pareto front of accuracy against params: {len(front)} of 4 complete trials"
    rows = [line.split() for line in lines[3:]]
    assert [int(r[0]) for r in rows] == [t.number for t in sorted(front, key=lambda t: (t.values[1], t.number))]
    assert all(r[1] == f"{t.values[0]:.4f}" for r, t in zip(rows, sorted(front, key=lambda t: t.values[1])))
    assert main(["plot", "--storage", storage, "--study-name", study.study_name, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "accuracy_vs_params.png").stat().st_size > 10_000


def always_fails(genotype_text: str, seed: int, report) -> dict:
    raise RuntimeError("synthetic failure")


def test_latency_is_measured_once_per_canonical_genotype_also_after_resume(local_ray, tmp_path):
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    cfg = SearchConfig(**TINY, algo="random", trials=1, init=SAME, latency={"device": "cpu"}, max_failures=2,
                       storage=storage)
    # trial 0 (SAME[0]) is measured on the driver and fails; its twin SAME[1] waited, then trains as trial 1
    with pytest.raises(NasError, match="2 trials failed in a row"):
        run_search(cfg, evaluator=always_fails, stream=None)
    run_search(cfg, stream=None)  # resumed, really trained: SAME[0] again, as trial 2
    study = load(cfg, "nasbench201-random-digits")
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert len({t.user_attrs["hash"] for t in study.trials}) == 1
    latencies = {t.user_attrs["latency_ms"] for t in study.trials}
    assert len(latencies) == 1 and math.isfinite(latencies.pop())  # one measurement (a second never repeats it)
    space = load_space("nasbench201")
    assert space.hash(space.parse(SAME[1])) == study.trials[0].user_attrs["hash"]


@pytest.mark.parametrize("argv, message", [
    (["--objective", "reward"], "objective reward needs target_latency_ms"),
    (["--target-latency-ms", "5"], "target_latency_ms goes with objective reward"),
    (["--objectives", "accuracy"], "objectives takes 2 or 3 names"),
    (["--objectives", "accuracy,speed"], "unknown objective 'speed'"),
    (["--objectives", "params,accuracy"], "objectives must start with accuracy"),
    (["--objectives", "accuracy,params,flops,latency"], "objectives takes 2 or 3 names"),
    (["--objectives", "accuracy,params", "--objective", "reward", "--target-latency-ms", "5"],
     "objective reward is one objective"),
    (["--objectives", "accuracy,params", "--algo", "darts"], "--algo darts searches for accuracy alone"),
    (["--objective", "reward", "--target-latency-ms", "5", "--algo", "enas"], "--algo enas searches for accuracy"),
    (["--objectives", "accuracy,params", "--algo", "reinforce"], "reinforce takes one objective"),
    (["--latency", "predicted"], "latency predicted needs a lookup table"),
    (["--latency", "predicted", "--latency-table", "t.json"], "latency predicted sums the layers of block networks"),
    (["--latency-table", "t.json"], "a latency table goes with latency predicted"),
    (["--latency-device", "cuda"], "--latency-device cuda but this machine has no GPU"),
])
def test_bad_objective_settings_are_one_line_errors_before_anything_is_stored(argv, message, tmp_path, capsys,
                                                                                  monkeypatch):
    if "cuda" in argv:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    monkeypatch.chdir(tmp_path)
    assert main(["search", "--space", "nasbench201", "--trials", "1", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nasengine: error: ") and err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []  # no storage, no artifacts


def test_objective_settings_in_a_config_file_are_checked(tmp_path):
    bad = tmp_path / "bad.yaml"
    for text, message in (("objectives: 3", "objectives must be a list or a text"),
                          ("latency: cpu", "latency must be a mapping"),
                          ("latency: {speed: 1}", "unknown latency setting"),
                          ("latency: {threads: 0}", "latency threads must be a positive integer"),
                          ("objective: reward\ntarget_latency_ms: -1", "must be a positive number")):
        bad.write_text(text)
        with pytest.raises(NasError, match=message):
            main_config(str(bad))


def main_config(path: str) -> None:
    from nasengine.engine import config_from_mapping, load_config_file, prepare

    prepare(config_from_mapping(load_config_file(path)), check_machine=False)


@pytest.mark.parametrize("name, objective, device", [("mnasnet-digits", "reward", "cpu"),
                                                      ("mnasnet-cifar10", "reward", "cuda")])
def test_the_mnasnet_studies_are_valid(name, objective, device):
    from nasengine.engine import config_from_mapping, load_config_file, prepare

    p = prepare(config_from_mapping(load_config_file(name), name), check_machine=False)
    assert p.cfg.space == "mnasnet" and p.cfg.objective == objective and p.network["skeleton"] == "mobile"
    assert p.scoring.names == ("reward",) and p.scoring.probe.target["device"] == device
    assert p.scoring.probe.target["resolution"] == p.network["image_size"]

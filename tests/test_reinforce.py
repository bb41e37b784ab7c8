"""REINFORCE with ENAS's numpy LSTM controller: its hand-written gradient, sampling in every space,
replay of a history, and learning on the real NAS-Bench-201 table."""

import random
import statistics
from pathlib import Path

import numpy as np
import pytest

from nasengine.algorithms import Record, make_algorithm
from nasengine.algorithms.controller import PARAMS, Controller
from nasengine.bench.runner import run_once
from nasengine.errors import NasError
from nasengine.spaces.cell import load_space, space_names

TABLE = Path(__file__).resolve().parents[2] / "shared/benchmarks/nats_bench_tss_200ep.csv"


@pytest.mark.parametrize("name", ["nasbench201", "darts", "enas", "mnasnet"])
def test_backward_matches_a_numerical_gradient(name):
    """The hand-written backward pass against central differences of the loss (float64), per weight and
    along a random direction through all weights at once."""
    space = load_space(name)
    controller = Controller(space, seed=1)
    rng = random.Random(0)
    tape = controller.run(u=[rng.random() for _ in controller.choices])
    picks = controller.params_of(tape)
    advantage, entropy_weight = 0.7, 0.3

    def loss() -> float:
        t = controller.run(picks=picks)
        return -advantage * t.log_prob - entropy_weight * t.entropy

    grads = controller.backward(controller.run(picks=picks), advantage, entropy_weight)
    params = controller.params
    eps = 1e-6
    draw = np.random.default_rng(0)
    attention = ("w_attn_1", "w_attn_2", "v_attn")
    for key in PARAMS:  # a few single entries of every weight
        used = controller.pointer or key not in attention  # NAS-Bench-201's nodes choose no inputs
        assert (np.abs(grads[key]).max() > 0) == used, key
        for _ in range(3):
            idx = tuple(int(draw.integers(0, n)) for n in params[key].shape)
            old = params[key][idx]
            params[key][idx] = old + eps
            up = loss()
            params[key][idx] = old - eps
            down = loss()
            params[key][idx] = old
            assert (up - down) / (2 * eps) == pytest.approx(grads[key][idx], rel=1e-4, abs=1e-7), (key, idx)
    direction = {k: draw.normal(size=v.shape) for k, v in params.items()}
    base = {k: v.copy() for k, v in params.items()}
    values = []
    for sign in (1, -1):
        for k in PARAMS:
            params[k][...] = base[k] + sign * 1e-5 * direction[k]
        values.append(loss())
    numeric = (values[0] - values[1]) / 2e-5
    assert numeric == pytest.approx(sum(float((grads[k] * direction[k]).sum()) for k in PARAMS), rel=1e-6)


@pytest.mark.parametrize("name", [n for n in space_names() if load_space(n).kind == "cell"])
def test_samples_are_valid_in_every_space(name):
    space = load_space(name)
    algo = make_algorithm("reinforce", space, seed=3)
    seen = set()
    for i in range(20):
        g = algo.ask().genotype
        space.validate(g)  # DARTS: distinct inputs; NAS-Bench-201: no 'none'
        assert all(e.op in space.sample_ops for _, cell in g.cells for node in cell.nodes for e in node)
        seen.add(space.hash(g))
        algo.tell(Record(i, g, float(i % 7)))
    assert len(seen) == 20  # unique=100: never a cell already proposed


@pytest.mark.parametrize("batch", [1, 3])
def test_a_fresh_controller_told_the_history_is_the_same(batch):
    """Resume: the state is a function of the records told, so a fresh algorithm told the same history
    holds the same weights and makes the same next proposal; a failed trial changes nothing."""
    space = load_space("enas")
    first = make_algorithm("reinforce", space, seed=5, batch=batch)
    history = []
    for i in range(12):
        g = first.ask().genotype
        value = None if i == 4 else random.Random(i).random()
        history.append(Record(i, g, value))
        before = {k: v.copy() for k, v in first.controller.params.items()}
        first.tell(history[-1])
        changed = any(not np.array_equal(before[k], first.controller.params[k]) for k in PARAMS)
        # the first value only starts the baseline; then a step every `batch` values
        assert changed == (value is not None and i > 0 and (i - (i > 4)) % batch == 0), i
    replay = make_algorithm("reinforce", space, seed=5, batch=batch)
    for record in history:
        replay.tell(record)
    for k in PARAMS:
        np.testing.assert_array_equal(first.controller.params[k], replay.controller.params[k])
    assert first.ask().genotype == replay.ask().genotype


def test_bad_settings():
    space = load_space("nasbench201")
    with pytest.raises(NasError, match="reinforce"):
        make_algorithm("reinforce", space, lr=-1)
    with pytest.raises(NasError, match="reinforce"):
        make_algorithm("reinforce", space, momentum=0.9)


@pytest.mark.skipif(not TABLE.is_file(), reason="the shared NAS-Bench-201 table is not here")
def test_the_controller_learns_on_nas_bench_201():
    """4 seeds x 200 queries on each column: the queries' mean rises from the first 50 to the last 50 on
    every seed (it learns fast: measured +0.5 to +4 points on seeds 0-7), and the last 50 are better than
    random search's queries on the same seeds."""
    for column in ("CIFAR10TestAccuracy200Epochs", "CIFAR100TestAccuracy200Epochs", "ImageNetTestAccuracy200Epochs"):
        first, last, randoms = [], [], []
        for seed in range(4):
            run = run_once("reinforce", "nasbench201", str(TABLE), column, 200, seed, keep_queries=True)
            values = [q["value"] for q in run.queries]
            first.append(statistics.fmean(values[:50]))
            last.append(statistics.fmean(values[-50:]))
            random_run = run_once("random", "nasbench201", str(TABLE), column, 200, seed, keep_queries=True)
            randoms.append(statistics.fmean(q["value"] for q in random_run.queries))
        assert all(b > a for a, b in zip(first, last)), (column, first, last)
        assert statistics.fmean(last) > statistics.fmean(randoms) + 1.0, (column, last, randoms)

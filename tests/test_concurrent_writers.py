"""Several processes writing trials into one study at once, on a SQLite file and on a PostgreSQL server:
every trial gets its own number, the numbers are 0..n-1, and every write lands (no "database is locked")."""

import multiprocessing
import random

import optuna
from optuna.trial import TrialState

from nasengine import storage as st
from nasengine.spaces.cell import load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

PROCESSES = 4
TRIALS_EACH = 8


def write_trials(url: str, study_id: int, seed: int, fast: bool, barrier) -> list[int]:
    """One writer process: wait for the others, then start, report and end trials as fast as it can
    (the pattern of a driver, without the training)."""
    space = load_space("nasbench201")
    writer = st.TrialWriter(st.connect(url), study_id, space)
    writer.fast = fast
    rng = random.Random(seed)
    barrier.wait()
    numbers = []
    for i in range(TRIALS_EACH):
        trial_id, number = writer.start(space.sample(rng), seed=seed, note=f"writer {seed}")
        writer.report(trial_id, 1, 0.5)
        if i % 4 == 3:
            writer.fail(trial_id, {"error": "synthetic"})
        else:
            writer.complete(trial_id, rng.random(), {"params": i})
        numbers.append(number)
    return numbers


def test_concurrent_writers_number_trials_without_gaps_or_twins(storage_url):
    rdb = st.connect(storage_url, create=True)
    study_id = st.create_study(rdb, "s", {})
    rdb.engine.dispose()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(PROCESSES)
        with ctx.Pool(PROCESSES) as pool:
            jobs = [pool.apply_async(write_trials, (storage_url, study_id, seed, seed % 2 == 0, barrier))
                    for seed in range(PROCESSES)]
            returned = [job.get(timeout=120) for job in jobs]
    numbers = sorted(n for ns in returned for n in ns)
    assert numbers == list(range(PROCESSES * TRIALS_EACH))
    trials = optuna.load_study(study_name="s", storage=st.connect(storage_url)).trials
    assert sorted(t.number for t in trials) == numbers
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == PROCESSES * TRIALS_EACH * 3 // 4
    assert states.count(TrialState.FAIL) == PROCESSES * TRIALS_EACH // 4
    assert all(t.intermediate_values == {1: 0.5} for t in trials)

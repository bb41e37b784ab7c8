"""The search engine's own cost: seconds per trial when the trials do no work, and the time a resume
takes to rebuild the evolution state from a large study. Not a test; prints figures.

1. ``nasengine.engine.run.run_search`` with an evaluator that returns at once (an evolution on NASNet cells,
   real Ray Tune executor, real SQLite study): wall time of the whole call (Ray start included) divided
   by the trial count, for each ``--trials`` value, with the cell diagrams on (the default: each trial's
   diagram drawn and attached as an Optuna artifact) and off.
2. A study of ``--history`` finished trials laid out as the driver writes them (written in bulk with SQL,
   which takes seconds where Optuna's ``add_trials`` takes minutes), then the driver's resume path on it:
   mark stale RUNNING trials FAIL, read the history narrowly, tell a fresh evolution every trial in
   finishing order, and make its first proposal.

    python benchmarks/engine_overhead.py                        # 10 and 200 trials, 10,000-trial resume
    python benchmarks/engine_overhead.py --trials 10 --history 1000 --executor inprocess
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nasengine import storage as st
from nasengine.engine import SearchConfig, prepare, run_search, study_config
from nasengine.storage.internals import rdb_models


def no_work(genotype_text: str, seed: int, report) -> dict:
    """A trial that trains nothing: a value derived from the genotype, so evolution has a signal."""
    value = int(hashlib.sha256(genotype_text.encode()).hexdigest()[:8], 16) / 2**32
    report(1, value)
    return {"value": value, "curve": [value], "params": 0, "flops": 0, "train_seconds": 0.0}


def per_trial(trials: int, args, diagrams: bool, folder: Path) -> None:
    """One search of ``trials`` no-op trials. With the Ray executor the local Ray is started first, as the
    executor would start it, so its start (once per search, whatever the trial count) is shown apart."""
    cfg = SearchConfig(space=args.space, trials=trials, workers=args.workers, executor=args.executor,
                       storage=f"sqlite:///{folder / f'overhead-{trials}-{diagrams}.db'}", diagrams=diagrams,
                       max_duplicates=10_000)
    t0 = time.perf_counter()
    if args.executor == "ray":
        import ray

        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False,
                 object_store_memory=256 * 2**20, logging_level="ERROR")
    t1 = time.perf_counter()
    try:
        result = run_search(cfg, evaluator=no_work, stream=None)
    finally:
        if args.executor == "ray":
            ray.shutdown()
    t2 = time.perf_counter()
    assert result.n_complete == trials, result
    print(f"{trials:>5} trials, {args.executor} executor, {args.workers} workers, diagrams "
          f"{'on ' if diagrams else 'off'}: {t2 - t0:6.1f} s in all = {(t2 - t0) / trials:5.3f} s per trial; "
          f"Ray start {t1 - t0:4.1f} s, then {(t2 - t1) / trials:5.3f} s per trial", flush=True)


def write_history(url: str, cfg: SearchConfig, n: int, seed: int = 0) -> None:
    """A study of ``n`` COMPLETE trials as the driver lays them out, with one INSERT per table."""
    import sqlalchemy as sa
    from optuna.distributions import distribution_to_json
    from optuna.trial import TrialState

    models = rdb_models()
    p = prepare(cfg, evaluator=no_work, check_machine=False)
    rdb = st.connect(url, create=True)
    study_id = st.create_study(rdb, p.study_name, {"config": study_config(p), "space": p.space.name,
                                                  "algo": cfg.algo, "dataset": cfg.dataset, "network": {}})
    dists = {k: distribution_to_json(d) for k, d in st.distributions_for(p.space).items()}
    internal = st.distributions_for(p.space)
    rng = random.Random(seed)
    start = datetime.datetime(2024, 1, 1)
    rows: dict[str, list] = {"trials": [], "values": [], "steps": [], "params": [], "attrs": []}
    for number in range(n):
        g = p.space.sample(rng)
        text = p.space.format(g)
        value = no_work(text, 0, lambda *_: None)["value"]
        trial_id = number + 1
        when = start + datetime.timedelta(seconds=number)
        rows["trials"].append({"trial_id": trial_id, "number": number, "study_id": study_id,
                               "state": TrialState.COMPLETE, "datetime_start": when, "datetime_complete": when})
        rows["values"].append({"trial_id": trial_id, "objective": 0, "value": value, "value_type": "FINITE"})
        rows["steps"] += [{"trial_id": trial_id, "step": step, "intermediate_value": value * step / 4,
                           "intermediate_value_type": "FINITE"} for step in range(1, 5)]
        rows["params"] += [{"trial_id": trial_id, "param_name": k, "param_value": internal[k].to_internal_repr(v),
                            "distribution_json": dists[k]} for k, v in p.space.to_params(g).items()]
        attrs = {"genotype": text, "hash": p.space.hash(g), "parent": rng.randrange(number) if number > 20 else None,
                 "seed": 0, "note": "bulk", "params": 100_000, "flops": 2_000_000, "train_seconds": 15.0}
        rows["attrs"] += [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]
    tables = {"trials": models.TrialModel, "values": models.TrialValueModel,
              "steps": models.TrialIntermediateValueModel, "params": models.TrialParamModel,
              "attrs": models.TrialUserAttributeModel}
    with rdb.engine.begin() as conn:
        for key, model in tables.items():
            conn.execute(sa.insert(model.__table__), rows[key])


def resume_time(args, folder: Path) -> None:
    from nasengine.engine import Driver, search_progress

    cfg = SearchConfig(space=args.space, trials=args.history + 10, storage=f"sqlite:///{folder / 'history.db'}")
    t0 = time.perf_counter()
    write_history(cfg.storage, cfg, args.history)
    print(f"wrote a study of {args.history:,} trials in {time.perf_counter() - t0:.1f} s", flush=True)

    t0 = time.perf_counter()
    p = prepare(cfg, evaluator=no_work, check_machine=False)
    rdb = st.connect(cfg.storage, create=True)
    study_id = st.find_study_id(rdb, p.study_name)
    writer = st.TrialWriter(rdb, study_id, p.space)
    driver = Driver(p.space, p.make_algorithm(), writer, cfg.trials, cfg.seed, [],
                    search_progress(cfg.trials, None))
    t1 = time.perf_counter()
    driver.resume()
    t2 = time.perf_counter()
    driver.algorithm.ask()
    t3 = time.perf_counter()
    assert driver.n_complete == args.history
    print(f"resume from {args.history:,} trials: {t3 - t0:.2f} s in all (open {t1 - t0:.2f} s, read + replay "
          f"{t2 - t1:.2f} s, first proposal {t3 - t2:.2f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", default="10,200", help="comma-separated trial counts (default 10,200)")
    parser.add_argument("--history", type=int, default=10_000, help="trials in the resumed study (0: skip)")
    parser.add_argument("--space", default="nasnet")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executor", default="ray", choices=("ray", "inprocess"))
    parser.add_argument("--diagrams", default="on,off", help="on, off or on,off (default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nasengine-overhead-") as tmp:
        folder = Path(tmp)
        for trials in (int(t) for t in args.trials.split(",") if t):
            for diagrams in args.diagrams.split(","):
                per_trial(trials, args, diagrams == "on", folder)
        if args.history:
            resume_time(args, folder)


if __name__ == "__main__":
    main()

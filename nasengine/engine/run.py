"""``run_search``: prepare, open (or resume) the study, drive the executor, and report.

Resume: the same command finds the study by name (``{space}-{algo}-{dataset}`` unless given), refuses
a different configuration (runtime keys such as ``trials`` and ``workers`` may change), and hands the
study to the driver, which replays it."""

from __future__ import annotations

import functools
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from nasengine import storage as st
from nasengine.engine.config import SearchConfig, config_differences, plain
from nasengine.engine.driver import CellDiagrams, Driver, search_progress
from nasengine.engine.kept_weights import KeptWeights
from nasengine.engine.prepare import prepare, study_config
from nasengine.engine.weight_sharing import WeightSharingDriver
from nasengine.engine.worker import run_candidate
from nasengine.errors import NasError
from nasengine.progress import duration


@dataclass
class SearchResult:
    storage: str
    study_name: str
    n_complete: int
    n_failed: int
    trained_now: int
    best: tuple[float, int, str] | None
    seconds: float
    resumed: bool = False
    stopped: str | None = None  # why it ended early, if it did
    artifact_dir: str | None = None  # where the cell diagrams went, when not the storage's default
    objectives: tuple[str, ...] = ("accuracy",)  # the study's values


def _peek(storage: str, study_name: str):
    """``(rdb, study_id)`` of an existing study, or ``(None, None)``. Reads only."""
    state = st.storage_state(storage)
    if state in ("missing", "empty"):
        return None, None
    rdb = st.connect(storage, create=False)  # "foreign": NasError
    return rdb, st.find_study_id(rdb, study_name)


def run_search(cfg: SearchConfig, evaluator: Callable | None = None, executor=None,
               network: dict[str, Any] | None = None, stream: TextIO | None = sys.stderr) -> SearchResult:
    """Run (or resume) the search ``cfg`` describes; returns what the study holds at the end."""
    t0 = time.monotonic()
    p = prepare(cfg, evaluator, executor, network)
    config = study_config(p)
    shown = st.display_url(p.storage)
    target = cfg.trials + (p.make_algorithm is None and cfg.retrain_epochs > 0)  # a retrain after the searches

    # Read-only look at the storage first: a mismatching study must stay untouched.
    rdb, study_id = _peek(p.storage, p.study_name)
    if study_id is not None:
        stored = rdb.get_study_user_attrs(study_id).get("config")
        if isinstance(stored, dict):
            diffs = config_differences(stored, config)
            if diffs:
                raise NasError(f"study {p.study_name!r} in {shown} was made with other settings: "
                               f"{'; '.join(diffs)}. Use the same settings to resume it, or another --study-name")
        directions = st.study_directions(rdb, study_id)
        if directions != list(p.scoring.directions):
            raise NasError(f"study {p.study_name!r} in {shown} has {len(directions)} objective(s) "
                           f"({', '.join(directions)}), not {', '.join(p.scoring.names)}: use another --study-name")
        done = st.count_complete(rdb, study_id)
        if done >= target:
            rows = st.read_history(rdb, study_id, states=("COMPLETE",))
            best = max(((r.value, r.number, r.genotype) for r in rows if r.value is not None), default=None)
            failed = len(st.read_history(rdb, study_id, states=("FAIL",)))
            return SearchResult(p.storage, p.study_name, done, failed, 0, best, time.monotonic() - t0, True,
                                f"the study already has {done} COMPLETE trials (--trials {cfg.trials})",
                                objectives=p.scoring.names)

    executor = p.executor
    progress = search_progress(target, stream)
    progress.message(f"nasengine search: study {p.study_name} in {shown}; {target} trials of "
                     f"{cfg.space}/{cfg.algo} on {cfg.dataset}; {executor.describe()}")
    executor.start()  # a Ray that cannot start fails here, before the storage is written
    driver = None
    try:
        rdb = st.connect(p.storage, create=True)
        study_id = st.find_study_id(rdb, p.study_name)
        resumed = study_id is not None
        if study_id is None:
            attrs = {"config": config, "space": Path(cfg.space).stem, "algo": cfg.algo, "dataset": cfg.dataset,
                     "network": plain(p.network), "kind": "search", **plain(p.scoring.study_attrs())}
            study_id = st.create_study(rdb, p.study_name, attrs, p.scoring.directions)
        writer = st.TrialWriter(rdb, study_id, p.space)
        diagrams = CellDiagrams(rdb, p.artifact_dir, progress) if cfg.diagrams else None
        if p.make_algorithm is None:
            driver = WeightSharingDriver(p.space, writer, cfg.trials, cfg.seed, progress, cfg.retrain_epochs > 0,
                                         cfg.max_failures, diagrams, p.scoring)
        else:
            driver = Driver(p.space, p.make_algorithm(), writer, cfg.trials, cfg.seed, p.init, progress,
                            cfg.max_failures, cfg.max_duplicates, diagrams, p.scoring,
                            count_failures=cfg.count_failures)
        driver.weights = KeptWeights(writer, p.artifact_dir, cfg.keep_weights)  # for nasengine export --weights
        if resumed:
            t1 = time.monotonic()
            dead = driver.resume()
            extra = f"; {len(dead)} trial(s) it left RUNNING marked FAIL" if dead else ""
            progress.message(f"resuming: {driver.n_complete} COMPLETE and {driver.n_failed} failed trials "
                             f"replayed in {time.monotonic() - t1:.2f}s{extra}")
        driver.queue_init()
        driver.tick(force=True)
        fn = functools.partial(run_candidate, p.evaluators, latency=p.scoring.probe if p.scoring.on_worker else None)
        executor.run(fn, driver)
        stopped = driver.abort_reason or driver.finish_reason
        driver.fail_unfinished(f"the search stopped before this trial finished ({stopped or 'stopped'})")
        driver.tick()  # the count and status for the final line that closing the progress writes
    except KeyboardInterrupt:
        if driver is not None:
            driver.fail_unfinished("interrupted (Ctrl-C or SIGTERM)")
            progress.message(f"interrupted: the study keeps its {driver.n_complete} COMPLETE trial(s); "
                             "the same command resumes it")
        raise
    finally:
        progress.close()
        executor.close()
    if driver.abort_reason:
        raise NasError(f"search stopped: {driver.abort_reason}")
    custom_dir = cfg.diagrams and cfg.artifact_dir is not None
    return SearchResult(p.storage, p.study_name, driver.n_complete, driver.n_failed, driver.trained_now,
                        driver.best, time.monotonic() - t0, resumed, driver.finish_reason,
                        p.artifact_dir if custom_dir else None, p.scoring.names)


def summary(result: SearchResult) -> str:
    """The closing report: where the study is, the best genotype, and the commands to look at it."""
    storage = st.display_url(result.storage)
    lines = []
    if result.stopped:
        lines.append(f"stopped: {result.stopped}")
    lines.append(f"trained {result.trained_now} candidate(s) in {duration(result.seconds)}; the study has "
                 f"{result.n_complete} COMPLETE and {result.n_failed} failed trial(s)")
    lines.append(f"storage:   {storage}")
    lines.append(f"study:     {result.study_name}")
    q = shlex.quote
    if result.best:
        value, number, text = result.best
        what = "reward" if result.objectives == ("reward",) else "validation accuracy"
        most = " (the most accurate)" if len(result.objectives) > 1 else ""
        lines.append(f"best:      trial #{number}, {what} {value:.4f}{most}")
        lines.append(f"genotype:  {text}")
    if len(result.objectives) > 1:
        lines.append(f"front:     nasengine show --storage {q(storage)} --study-name {q(result.study_name)} "
                     f"({', '.join(result.objectives)})")
    artifacts = f" --artifact-dir {q(result.artifact_dir)}" if result.artifact_dir else ""
    lines.append(f"dashboard: nasengine dashboard --storage {q(storage)}{artifacts}")
    lines.append(f"export:    nasengine export --storage {q(storage)} --study-name {q(result.study_name)} "
                 "--out best.py")
    return "\n".join(lines)

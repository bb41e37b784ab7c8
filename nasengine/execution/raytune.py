"""Each task one Ray Tune trial, on this machine's Ray or a cluster's.

A small custom Tune ``Searcher`` asks the source for the next task (``suggest``) and hands reports
and results back (``on_trial_result``); ``reuse_actors=True`` keeps the per-trial cost near 0.1 s (a
fresh worker process per trial costs about 1.3 s). It joins an existing cluster (``address``) or
starts a quiet local Ray with only the resources the trials need, and shuts that one down at the end.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

from nasengine.errors import NasError, error_text
from nasengine.execution.base import FINISHED, Executor, TaskFn, TaskSource, raise_if_signalled, sigterm_interrupts

# Ray and Tune read these when imported / when a run starts: keep the terminal for our own progress.
_RAY_ENV = {
    "RAY_AIR_NEW_OUTPUT": "0",  # the legacy reporter honours verbose=0 (the new one prints a table)
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # no CSV/JSON/TensorBoard files per trial
    "TUNE_DISABLE_SIGINT_HANDLER": "1",  # Ctrl-C raises KeyboardInterrupt; the driver cleans up
    "TUNE_WARN_THRESHOLD_S": "30",  # no "on_step_begin took 0.6 s" warnings for SQLite writes
    "TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S": "600",
    "TUNE_MAX_PENDING_TRIALS_PG": "1",
    "RAY_DEDUP_LOGS": "1",
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DISABLE_IMPORT_WARNING": "1",
    "PYTHONWARNINGS": "ignore::DeprecationWarning",
}

_QUIET_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.air", "ray.data", "ray._private", "ray.util")


def _quiet_ray() -> None:
    for key, value in _RAY_ENV.items():
        os.environ.setdefault(key, value)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def _tune_trainable(config: dict, fn: TaskFn | None = None, memory_cap: int | None = None) -> None:
    """The Tune function trainable: runs ``fn`` on the payload, streaming reports as Tune results.

    The final result travels as JSON text so Tune's result flattening leaves it intact; an exception
    is reported as a result too (Tune never sees a failing trial, so it prints no error blocks). The
    result names the Ray node and the Tune trial (its folder under ``--results-dir``).
    """
    from ray import tune

    def report(step: int, value: float) -> None:
        tune.report({"nas_kind": "report", "nas_step": int(step), "nas_value": float(value)})

    try:
        if memory_cap:
            _cap_memory(memory_cap)
        result = fn(config["payload"], report)
        if isinstance(result, dict):
            result.setdefault("node", _node())
            result.setdefault("ray_trial", tune.get_context().get_trial_id())
        text = json.dumps(result, default=_json_default)
    except Exception as e:  # noqa: BLE001
        tune.report({"nas_kind": "error", "nas_error": error_text(e), "nas_traceback": traceback.format_exc()})
        return
    tune.report({"nas_kind": "result", "nas_result": text})


def _cap_memory(extra_bytes: int) -> None:
    """Let this worker process allocate at most ``extra_bytes`` more address space (``RLIMIT_AS``): a
    trial that needs more gets a MemoryError (torch: "can't allocate memory") and fails alone, instead
    of the machine swapping or the kernel's OOM killer picking a process. The worker's own mappings
    (Ray's object store, libraries: a few GB of address space) are not counted against the cap. Linux."""
    import resource

    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = size + int(extra_bytes)
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))


def _node() -> str:
    """The Ray node a trial ran on: ``IP/NODE_ID`` (the id tells apart nodes of one machine; ``ray status``
    and Ray's dashboard name nodes by it)."""
    import ray

    return f"{ray.util.get_node_ip_address()}/{ray.get_runtime_context().get_node_id()}"


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


class RayTuneExecutor(Executor):
    """Each task is one Ray Tune trial; ``workers`` trials at once with the given resources each."""

    name = "ray"

    def __init__(self, workers: int = 2, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                 address: str | None = None, results_dir: str | None = None, memory_cap: float | None = None) -> None:
        """``results_dir``: Ray Tune's output (a folder per trial: its results and its output) is kept
        there, under ``search-TIME/``; without it, a temporary folder is removed at the end.
        ``memory_cap``: GB each trial may allocate (:func:`_cap_memory`)."""
        if workers < 1:
            raise NasError(f"workers must be at least 1, got {workers}")
        if not cpus_per_trial > 0:
            raise NasError(f"cpus per trial must be positive, got {cpus_per_trial}")
        if gpus_per_trial < 0:
            raise NasError(f"gpus per trial must not be negative, got {gpus_per_trial}")
        if gpus_per_trial > 1 and gpus_per_trial != int(gpus_per_trial):
            raise NasError(f"gpus per trial above 1 must be a whole number, got {gpus_per_trial}")
        if memory_cap is not None and not memory_cap > 0:
            raise NasError(f"the memory cap must be positive, got {memory_cap}")
        self.workers = int(workers)
        self.cpus_per_trial = float(cpus_per_trial)
        self.gpus_per_trial = float(gpus_per_trial)
        self.address = address or None
        self.results_dir = results_dir
        self.memory_cap = None if memory_cap is None else int(float(memory_cap) * 2**30)
        self._started_ray = False
        self._tmp: str | None = None
        self.cluster: dict[str, float] = {}

    def describe(self) -> str:
        where = f"Ray cluster at {self.address}" if self.address else "local Ray"
        gpu = f", {self.gpus_per_trial:g} GPU" if self.gpus_per_trial else ""
        return f"Ray Tune on {where}: {self.workers} trials at once, {self.cpus_per_trial:g} CPU{gpu} each"

    def start(self) -> None:
        _quiet_ray()
        import ray

        if ray.is_initialized():  # someone (a test, a notebook) already set Ray up: use it as it is
            self._started_ray = False
        else:
            kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                                          configure_logging=True)
            if self.address:
                _check_reachable(self.address)
                kwargs["address"] = self.address
            else:
                cpus = max(1, math.ceil(self.workers * self.cpus_per_trial))
                # "local": a new Ray of our own, even where `ray start` left its address in
                # /tmp/ray/ray_current_cluster (ray.init() would join that cluster, or fail on a stale one)
                kwargs.update(address="local", num_cpus=cpus, num_gpus=math.ceil(self.workers * self.gpus_per_trial),
                              object_store_memory=_object_store_bytes())
            try:
                ray.init(**kwargs)
            except Exception as e:  # noqa: BLE001 - connection errors come in many types
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
                raise NasError(f"could not start {where}: {error_text(e)}") from None
            self._started_ray = True
        self.cluster = {k: float(v) for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}
        need = {"CPU": self.cpus_per_trial, "GPU": self.gpus_per_trial}
        for res, amount in need.items():
            if amount > 0 and self.cluster.get(res, 0.0) < amount:
                self.close()
                raise NasError(f"each trial asks for {amount:g} {res}, the Ray cluster has "
                               f"{self.cluster.get(res, 0.0):g}")
        if self.results_dir:
            try:
                os.makedirs(self.results_dir, exist_ok=True)
            except OSError as e:
                self.close()
                raise NasError(f"--results-dir {self.results_dir}: {e.strerror or e}") from None
            self._tmp = os.path.abspath(self.results_dir)
            os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "0"  # each trial's result.json and progress.csv
        else:
            base = os.environ.get("NASENGINE_TUNE_DIR") or None
            if base:
                os.makedirs(base, exist_ok=True)
            self._tmp = tempfile.mkdtemp(prefix="nasengine-tune-", dir=base)

    def close(self) -> None:
        if self._tmp and not self.results_dir:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False

    def run(self, fn: TaskFn, source: TaskSource) -> list:
        from ray import tune

        if self._tmp is None:
            self.start()
        bridge = _Bridge(source)
        searcher_cls, stopper_cls = _tune_classes()
        resources = {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial}
        trainable = tune.with_resources(tune.with_parameters(_tune_trainable, fn=fn, memory_cap=self.memory_cap),
                                        resources)
        kept = bool(self.results_dir)
        name = time.strftime("search-%Y%m%d-%H%M%S") if kept else "search"
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher_cls(bridge), num_samples=-1, reuse_actors=True,
                                        max_concurrent_trials=self.workers,
                                        trial_dirname_creator=lambda trial: trial.trial_id),
            run_config=tune.RunConfig(storage_path=self._tmp, name=name, verbose=0, log_to_file=kept,
                                      stop=stopper_cls(bridge),
                                      failure_config=tune.FailureConfig(max_failures=0, fail_fast=False)),
        )
        with sigterm_interrupts():
            tuner.fit()
        if bridge.error is not None:
            raise bridge.error
        return list(bridge.running.values())


class _Bridge:
    """Between Tune and a TaskSource: the Tune trials running and their task keys, and the first error
    a source callback raised (it stops the run and is re-raised once Tune has wound down)."""

    def __init__(self, source: TaskSource) -> None:
        self.source = source
        self.running: dict[str, Any] = {}  # Tune trial id -> task key
        self.error: BaseException | None = None

    def call(self, method: Callable, *args: Any) -> Any:
        if self.error is not None:
            return None
        try:
            raise_if_signalled()
            return method(*args)
        except BaseException as e:  # noqa: BLE001 - re-raised by run(), after Tune wound down
            self.error = e
            return None


def _tune_classes() -> tuple[type, type]:
    """The Tune Searcher and Stopper that serve a :class:`_Bridge` (made here: Ray is imported lazily).

    Tune pickles both into its experiment state, which is never restored: their state pickles as
    nothing, so the source (a driver with a database connection) is never pickled."""
    from ray.tune.search import Searcher
    from ray.tune.stopper import Stopper

    class _NoState:
        def __getstate__(self) -> dict:
            return {}

        def __setstate__(self, _state: dict) -> None:
            pass

    class TaskSearcher(_NoState, Searcher):
        def __init__(self, bridge: _Bridge) -> None:
            super().__init__()
            self.bridge = bridge

        def suggest(self, trial_id: str):
            b = self.bridge
            task = b.call(b.source.next_task)
            if b.error is not None or task is FINISHED:
                return Searcher.FINISHED
            if task is None:
                return None
            b.running[trial_id] = task.key
            return {"payload": task.payload}

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            b = self.bridge
            key = b.running.get(trial_id)
            if key is None:
                return
            kind = result.get("nas_kind")
            if kind == "report":
                b.call(b.source.on_report, key, int(result["nas_step"]), float(result["nas_value"]))
            elif kind == "result":
                del b.running[trial_id]
                b.call(b.source.on_result, key, json.loads(result["nas_result"]))
            elif kind == "error":
                del b.running[trial_id]
                b.call(b.source.on_error, key, result["nas_error"], result.get("nas_traceback", ""))

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            b = self.bridge
            key = b.running.pop(trial_id, None)
            if key is not None and b.error is None:  # ended without a final result
                what = ("the trial's worker died (Ray reported an error)" if error
                        else "the trial ended without a result")
                b.call(b.source.on_error, key, f"WorkerError: {what}", "")

    class TaskStopper(_NoState, Stopper):
        def __init__(self, bridge: _Bridge) -> None:
            self.bridge = bridge

        def __call__(self, trial_id, result) -> bool:
            return False

        def stop_all(self) -> bool:
            b = self.bridge
            b.call(b.source.tick)
            return b.error is not None or bool(b.call(b.source.should_stop))

    return TaskSearcher, TaskStopper


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """NasError when a ``host:port`` cluster address does not answer (Ray itself retries for minutes).
    ``auto`` and ``ray://`` addresses are left to Ray."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise NasError(f"could not reach the Ray cluster at {address}: {e.strerror or e}") from None


def _object_store_bytes() -> int:
    """A modest object store: payloads and results are small (Ray's default takes 30% of memory)."""
    return 256 * 1024 * 1024

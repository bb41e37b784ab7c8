"""Executors on a real Ray cluster (started by another process and joined by address, as
``--ray-address`` does) and in-process: reports and results stream back per task, errors come back as
one line, concurrency follows ``workers``, resources are checked, and a stop abandons what runs."""

import os
import subprocess
import sys
import time

import pytest
import ray.cloudpickle

from nasengine.errors import NasError
from nasengine.execution import FINISHED, InProcessExecutor, RayTuneExecutor, Task, make_executor

CLUSTER_CPUS = 3
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import test modules

_CLUSTER = f"""
import sys, ray
ray.init(num_cpus={CLUSTER_CPUS}, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()  # lives until the test closes stdin; exiting shuts the cluster down
"""


@pytest.fixture(scope="module")
def cluster():
    """The address of a Ray cluster that this test module did not start in its own process."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen([sys.executable, "-c", _CLUSTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    address = proc.stdout.readline().strip()
    assert address, "the Ray cluster did not start"
    yield address
    proc.stdin.close()
    proc.wait(timeout=60)


def work(payload: dict, report) -> dict:
    """A task: reports ``steps`` values, optionally sleeps, fails or returns where it ran."""
    for step in range(1, payload.get("steps", 0) + 1):
        report(step, step / 10)
    time.sleep(payload.get("sleep", 0.0))
    if payload.get("fail"):
        raise ValueError("bad candidate\nsecond line")
    return {"value": payload["x"] * 2, "pid": os.getpid()}


class Source:
    """A TaskSource over a fixed list of payloads that records everything the executor says."""

    def __init__(self, payloads, stop_after=None):
        self.todo = list(enumerate(payloads))
        self.reports, self.results, self.errors = [], {}, {}
        self.running, self.max_running = set(), 0
        self.stop_after = stop_after
        self.ticks = 0

    def next_task(self):
        if not self.todo:
            return FINISHED if not self.running else None
        key, payload = self.todo.pop(0)
        self.running.add(key)
        self.max_running = max(self.max_running, len(self.running))
        return Task(key, payload)

    def on_report(self, key, step, value):
        self.reports.append((key, step, value))

    def on_result(self, key, result):
        self.running.discard(key)
        self.results[key] = result

    def on_error(self, key, error, tb=""):
        self.running.discard(key)
        self.errors[key] = (error, tb)

    def tick(self):
        self.ticks += 1

    def should_stop(self):
        return self.stop_after is not None and len(self.results) >= self.stop_after


def test_ray_streams_reports_results_and_errors(cluster):
    payloads = [{"x": 1, "steps": 3}, {"x": 2, "fail": True}, {"x": 3, "sleep": 0.5}, {"x": 4, "sleep": 0.5}]
    source = Source(payloads)
    with RayTuneExecutor(workers=2, cpus_per_trial=1, address=cluster) as executor:
        assert executor.cluster["CPU"] == CLUSTER_CPUS  # the joined cluster, not a fresh local Ray
        assert executor.run(work, source) == []
    assert {k: r["value"] for k, r in source.results.items()} == {0: 2, 2: 6, 3: 8}
    assert all(r["pid"] != os.getpid() for r in source.results.values())  # ran in Ray workers
    assert [(k, s, v) for k, s, v in source.reports if k == 0] == [(0, 1, 0.1), (0, 2, 0.2), (0, 3, 0.3)]
    error, tb = source.errors[1]
    assert error == "ValueError: bad candidate" and "Traceback" in tb
    assert source.max_running == 2 and source.ticks > 0


def test_ray_stop_abandons_running_tasks(cluster):
    source = Source([{"x": 0}, {"x": 1, "sleep": 30}, {"x": 2, "sleep": 30}], stop_after=1)
    t0 = time.monotonic()
    with RayTuneExecutor(workers=2, address=cluster) as executor:
        left = executor.run(work, source)
    assert time.monotonic() - t0 < 25
    assert source.results.keys() == {0} and sorted(left) == sorted(source.running) and left


def test_ray_resources_are_checked_against_the_cluster(cluster):
    with pytest.raises(NasError, match="asks for 4 CPU, the Ray cluster has 3"):
        RayTuneExecutor(workers=1, cpus_per_trial=4, address=cluster).start()
    with pytest.raises(NasError, match="asks for 0.25 GPU, the Ray cluster has 0"):
        RayTuneExecutor(workers=4, gpus_per_trial=0.25, address=cluster).start()
    for bad in ({"workers": 0}, {"cpus_per_trial": 0}, {"gpus_per_trial": -1}, {"gpus_per_trial": 1.5}):
        with pytest.raises(NasError):
            RayTuneExecutor(**bad)


def test_a_cluster_that_is_not_there_is_a_one_line_error():
    with pytest.raises(NasError) as e:
        RayTuneExecutor(address="127.0.0.1:1").start()
    assert "could not reach the Ray cluster at 127.0.0.1:1" in str(e.value) and "\n" not in str(e.value)


def test_in_process_executor_serves_the_same_source():
    source = Source([{"x": 5, "steps": 2}, {"x": 6, "fail": True}])
    with make_executor("inprocess") as executor:
        assert isinstance(executor, InProcessExecutor)
        assert executor.run(work, source) == []
    assert source.results[0]["pid"] == os.getpid() and source.results[0]["value"] == 10
    assert source.reports == [(0, 1, 0.1), (0, 2, 0.2)]
    assert source.errors[1][0] == "ValueError: bad candidate"
    with pytest.raises(NasError, match="needs the ray executor"):
        make_executor("inprocess", address="127.0.0.1:1")
    with pytest.raises(NasError, match="unknown executor"):
        make_executor("dask")


def test_a_sigterm_whose_interrupt_is_lost_still_stops_the_in_process_executor():
    """Python runs the SIGTERM handler wherever the main thread is, also inside a finalizer that prints
    and drops its KeyboardInterrupt (it happened inside a SQLAlchemy weakref callback): the executor
    stops before the next task anyway."""
    import signal

    def swallowed(payload: dict, report) -> dict:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1.0)
        except KeyboardInterrupt:
            pass  # what a finalizer does with it
        return {"value": payload["x"]}

    source = Source([{"x": 1}, {"x": 2}])
    with make_executor("inprocess") as executor, pytest.raises(KeyboardInterrupt):
        executor.run(swallowed, source)
    assert list(source.results) == [0]
    with make_executor("inprocess") as executor:  # a later run starts clean
        assert executor.run(work, Source([{"x": 3}])) == []

"""Where candidates run, the only package that imports ray: :class:`RayTuneExecutor` (the default,
each task a Ray Tune trial) and :class:`InProcessExecutor` (debugging)."""

from __future__ import annotations

from nasengine.errors import NasError
from nasengine.execution.base import FINISHED, Executor, Task, TaskFn, TaskSource
from nasengine.execution.inprocess import InProcessExecutor
from nasengine.execution.raytune import RayTuneExecutor

EXECUTORS = {"ray": RayTuneExecutor, "inprocess": InProcessExecutor}


def make_executor(name: str, workers: int = 2, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                  address: str | None = None, results_dir: str | None = None,
                  memory_cap: float | None = None) -> Executor:
    """``results_dir``: keep Ray Tune's per-trial output there; ``memory_cap``: GB a trial may allocate."""
    if name == "ray":
        return RayTuneExecutor(workers, cpus_per_trial, gpus_per_trial, address, results_dir, memory_cap)
    if name == "inprocess":
        for flag, value in (("--ray-address", address), ("--results-dir", results_dir), ("--memory-cap", memory_cap)):
            if value:
                raise NasError(f"{flag} needs the ray executor")
        return InProcessExecutor()  # one trial at a time, whatever ``workers`` says: it is for debugging
    raise NasError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})")


__all__ = ["EXECUTORS", "FINISHED", "Executor", "InProcessExecutor", "RayTuneExecutor", "Task", "TaskFn", "TaskSource",
           "make_executor"]

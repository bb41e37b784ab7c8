"""The executor interface: tasks, the source that hands them out, and what an executor promises.

An executor knows nothing of what a trial computes. It runs a picklable function
``fn(payload, report) -> dict`` on payloads that a :class:`TaskSource` hands it, with the resources it
was given, and streams back what the function reports (``report(step, value)``) and what it returns
(or the error it raised, as ``on_error(key, error, traceback)`` with ``error`` a one-line
``Type: message``). The source decides what runs next; the executor only decides where and when.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

TaskFn = Callable[[dict, Callable[[int, float], None]], dict]


class _Finished:
    def __repr__(self) -> str:
        return "FINISHED"


#: returned by :meth:`TaskSource.next_task` when no task will ever come again
FINISHED = _Finished()


@dataclass(frozen=True)
class Task:
    key: Any  # the source's name for the task (the driver uses the Optuna trial id)
    payload: dict = field(default_factory=dict)


class TaskSource(Protocol):
    """What an executor serves. All calls come from the executor's loop in the calling thread."""

    def next_task(self) -> Task | None | _Finished:
        """The next task, ``None`` for "nothing right now, ask again", or ``FINISHED``."""

    def on_report(self, key: Any, step: int, value: float) -> None: ...

    def on_result(self, key: Any, result: dict) -> None: ...

    def on_error(self, key: Any, error: str, tb: str = "") -> None: ...

    def tick(self) -> None:
        """Called at least every second or so while the executor waits."""

    def should_stop(self) -> bool:
        """True: stop now, abandoning running tasks (their keys are reported by ``run``)."""


_signalled = threading.Event()  # SIGTERM arrived inside sigterm_interrupts (its KeyboardInterrupt may be lost)


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt while the block runs, as Ctrl-C does, so that a search stopped by
    ``kill`` or a scheduler cleans up like one stopped by Ctrl-C (its running trials marked, the study
    consistent) instead of dying on the spot; Ray's own driver handler (``sys.exit``) is set aside
    meanwhile. Only in the main thread, where Python runs signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, _frame) -> None:
        _signalled.set()
        raise KeyboardInterrupt(f"signal {signum}")

    _signalled.clear()
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _signalled.clear()


def raise_if_signalled() -> None:
    """KeyboardInterrupt if SIGTERM arrived inside :func:`sigterm_interrupts`. The handler's own exception
    can be lost: Python runs a handler wherever the main thread is, also inside a finalizer (a
    SQLAlchemy weakref callback), which prints and drops it; the executors call this between tasks."""
    if _signalled.is_set():
        raise KeyboardInterrupt("SIGTERM")


class Executor:
    """Runs ``fn`` on the tasks of ``source`` until it is FINISHED (and nothing runs) or asks to stop.
    ``run`` turns SIGTERM into KeyboardInterrupt (:func:`sigterm_interrupts`)."""

    name = ""
    workers = 1

    def start(self) -> None:
        """Acquire resources (start or join a cluster). Raises NasError when that fails."""

    def run(self, fn: TaskFn, source: TaskSource) -> list:
        """Serve ``source``; returns the keys of tasks still running when it stopped early."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what ``start`` acquired."""

    def describe(self) -> str:
        return self.name

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

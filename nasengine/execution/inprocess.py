"""Tasks one after another in this process, for debugging: exceptions, prints and breakpoints
behave as usual."""

from __future__ import annotations

import time
import traceback

from nasengine.errors import error_text
from nasengine.execution.base import FINISHED, Executor, TaskFn, TaskSource, raise_if_signalled, sigterm_interrupts


class InProcessExecutor(Executor):
    """One task at a time in this process: exceptions, prints and breakpoints behave as usual."""

    name = "inprocess"

    def run(self, fn: TaskFn, source: TaskSource) -> list:
        with sigterm_interrupts():
            return self._serve(fn, source)

    def _serve(self, fn: TaskFn, source: TaskSource) -> list:
        while True:
            raise_if_signalled()
            if source.should_stop():
                return []
            task = source.next_task()
            if task is FINISHED:
                return []
            if task is None:  # the source waits for nothing we run: it cannot progress
                source.tick()
                time.sleep(0.05)
                continue

            def report(step: int, value: float, _key=task.key) -> None:
                source.on_report(_key, int(step), float(value))
                source.tick()

            try:
                result = fn(task.payload, report)
            except Exception as e:  # noqa: BLE001 - a failing candidate is data, not a crash
                source.on_error(task.key, error_text(e), traceback.format_exc())
            else:
                source.on_result(task.key, result)
            source.tick()

    def describe(self) -> str:
        return "in-process (1 at a time)"

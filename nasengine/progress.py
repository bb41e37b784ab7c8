"""Progress lines for long work (a search, a benchmark, a download, drawing many diagrams), and the
compact number and duration formats they and the result tables print.

A ``Progress`` writes ``label: 3/10 | extra status | 12.3s | eta 30s`` to stderr: rewritten in place
on a terminal (when the status text changes, and for a new count at most every ``tty_every``
seconds, so a fast loop costs nothing); on a pipe or a log file, a line when the count passes
another tenth of the total, or when something changed and ``every`` seconds went by since the last
line, so logs stay short. ``message`` prints a line of its own (a new best, a warning) without
garbling the status line. ``close`` writes the final line.

    with Progress(len(trials), "diagrams") as p:
        for t in trials:
            ...
            p.update()

    for path in progress(paths, "files"):  # the same for an iterable
        ...

Counts (``update``/``set``) and the status text are all a caller gives; a search sets its count of
trained trials and a status such as ``1 running | 0 failed | best 0.9712 (#4)``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

T = TypeVar("T")


def human(n: Any) -> str:
    """A count with three significant digits and a K/M/G/T suffix: 1234567 -> 1.23M; '-' if unknown."""
    if not isinstance(n, (int, float)) or isinstance(n, bool) or (isinstance(n, float) and not math.isfinite(n)):
        return "-"
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div * 0.9995:
            x = n / div
            return f"{x:.{2 if x < 9.995 else 1 if x < 99.95 else 0}f}{unit}"
    return f"{n:.3g}" if isinstance(n, float) else str(n)


def duration(seconds: Any) -> str:
    """12.3s, 4m05s, 2h03m; '-' if unknown."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """A progress line on ``stream`` (stderr by default); see the module docstring.

    ``total`` None: an open-ended count, no tenths and no eta. ``unit`` follows the count
    (``3/20 trained``); ``scale`` prints counts as ``human`` does (bytes of a download: 12.3M/170M).
    ``enabled=False`` prints nothing (the count is still kept).
    """

    def __init__(self, total: int | None, label: str, stream: TextIO | None = None, enabled: bool = True,
                 unit: str = "", scale: bool = False, every: float = 5.0, tty_every: float = 0.1) -> None:
        self.total, self.label, self.unit, self.scale = total, label, unit, scale
        self.done = 0
        self.status = ""
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.every, self.tty_every = every, tty_every
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self._shown: tuple[int, str] | None = None  # (count, status) last written
        self._last_write = -math.inf
        self._last_tenth = -1
        self._width = 0  # characters of the line now on the terminal
        self._closed = False

    # ---- what the caller tells ----------------------------------------------------------------
    def update(self, n: int = 1, status: str | None = None) -> None:
        """``n`` more done (and a new status text, if given)."""
        self.set(self.done + n, status)

    def set(self, done: int, status: str | None = None, force: bool = False) -> None:
        """The count is now ``done`` (and the status ``status``, if given); ``force`` writes the line now."""
        self.done = done
        if status is not None:
            self.status = status
        if self.enabled and not self._closed:
            self._maybe_write(force)

    def message(self, text: str) -> None:
        """A line of its own above the status line."""
        if not self.enabled:
            return
        self._clear()
        self.stream.write(text + "\n")
        self.stream.flush()
        if self.tty and self._shown is not None and not self._closed:
            self._write()

    def close(self) -> None:
        """The final line (count, status, elapsed time); later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        if self.enabled:
            self._write(final=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- the line -------------------------------------------------------------------------------
    def _count(self, n: int) -> str:
        return human(n) if self.scale else str(n)

    def line(self, final: bool = False) -> str:
        elapsed = time.monotonic() - self.start
        count = self._count(self.done) + (f"/{self._count(self.total)}" if self.total is not None else "")
        parts = [f"{self.label}: {count}" + (f" {self.unit}" if self.unit else "")]
        if self.status:
            parts.append(self.status)
        parts.append(duration(elapsed))
        if not final and self.total and 0 < self.done < self.total:
            parts.append(f"eta {duration(elapsed / self.done * (self.total - self.done))}")
        return " | ".join(parts)

    def _maybe_write(self, force: bool) -> None:
        now = time.monotonic()
        changed = self._shown != (self.done, self.status)
        if self.tty:
            status_changed = self._shown is None or self._shown[1] != self.status
            due = status_changed or (changed and now - self._last_write >= self.tty_every)
        else:
            tenth = self.done * 10 // self.total if self.total else -1
            new_tenth = tenth != self._last_tenth and (self.total is None or self.done < self.total)
            if new_tenth:
                self._last_tenth = tenth
            due = (changed and (new_tenth or now - self._last_write >= self.every)) or (
                self._shown is not None and now - self._last_write >= 60)  # still alive, once a minute
        if force or due:
            self._write()

    def _clear(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0

    def _write(self, final: bool = False) -> None:
        text = self.line(final)
        if self.tty:
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad + ("\n" if final else ""))
            self._width = 0 if final else len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._shown = (self.done, self.status)
        self._last_write = time.monotonic()


def progress(items: Iterable[T], label: str, total: int | None = None, **options: Any) -> Iterator[T]:
    """Iterate over ``items`` with a ``Progress`` line (``options`` go to it)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, label, **options) as p:
        for item in items:
            yield item
            p.update()

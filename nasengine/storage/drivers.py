"""Who wrote a trial, and whether that writer still lives.

Several drivers may share a study (two people on one study, one driver per machine of a cluster). Each
trial records its writer in user attr ``driver`` (``host:pid:start``, :func:`this_driver`), and each
writer beats a heartbeat into the study's system attrs (``driver:ID`` -> Unix time) while it works. A
RUNNING trial belongs to a dead driver when that process is gone (same host: checked directly, which
a killed driver's successor needs at once) or, for another host, when its heartbeat is older than
:data:`GRACE_SECONDS`. Only dead drivers' trials are marked FAIL (:func:`nasengine.storage.fail_running`);
a live driver's RUNNING trials are left to it.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

HEARTBEAT_SECONDS = 10.0
#: a driver on another host whose heartbeat is older than this is taken for dead
GRACE_SECONDS = 120.0


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), None when not known;
    with the pid it names a process even after the pid is reused. A zombie counts as gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


def this_driver() -> str:
    """This process as a trial's writer: ``host:pid:start``."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or ''}"


def heartbeat_key(driver: str) -> str:
    return f"driver:{driver}"


def beat(storage, study_id: int, driver: str) -> None:
    """Record that ``driver`` is alive now (a study system attr)."""
    storage.set_study_system_attr(study_id, heartbeat_key(driver), time.time())


def is_alive(driver: str | None, heartbeats: dict, now: float | None = None) -> bool:
    """Whether the writer ``driver`` (a trial's ``driver`` attr) still lives; ``heartbeats``: the study's
    system attrs. A trial without a writer (written before writers were recorded) has none alive."""
    if not isinstance(driver, str) or driver.count(":") < 2:
        return False
    host, pid, start = driver.rsplit(":", 2)
    if host == socket.gethostname() and pid.isdigit():
        if Path("/proc").is_dir():
            ticks = _start_ticks(int(pid))
            return ticks is not None and (not start or ticks == start)
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    last = heartbeats.get(heartbeat_key(driver))
    return isinstance(last, (int, float)) and (now or time.time()) - last < GRACE_SECONDS


def trial_counts(storage, study_id: int) -> tuple[int, int]:
    """``(trials, finished trials)`` of a study in one cheap query: when neither moved, no driver
    started or finished a trial in it since the last look."""
    import sqlalchemy as sa

    from nasengine.storage.internals import rdb_models

    t = rdb_models().TrialModel.__table__
    query = sa.select(sa.func.count(), sa.func.count(t.c.datetime_complete)).where(t.c.study_id == study_id)
    with storage.engine.connect() as conn:
        total, finished = conn.execute(query).one()
    return int(total), int(finished)

"""Opening storages and studies: ``connect`` never writes unless asked to create, ``open_study`` never
creates, and every failure is one line."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from nasengine.errors import NasError, did_you_mean, first_line
from nasengine.storage.internals import study_id_of, study_storage
from nasengine.storage.urls import check_storage_url, display_url, sqlite_path, storage_state


def connect(url: str, create: bool = False):
    """An ``optuna.storages.RDBStorage`` on ``url``.

    ``create=False`` never writes: the database must exist and hold Optuna's tables. ``create=True``
    creates the tables in a new (or empty) database, but refuses a database that has other tables
    and not Optuna's.
    """
    import optuna
    import sqlalchemy.exc

    engine_url = check_storage_url(url, must_exist=not create)
    shown = display_url(url)
    path = sqlite_path(url)
    if create and path is not None and path.exists():  # SQLite writes the file and, beside it, its journal
        unwritable = next((p for p in (path, path.absolute().parent) if not os.access(p, os.W_OK)), None)
        if unwritable is not None:
            raise NasError(f"storage {shown} is read-only: {unwritable} cannot be written")
    state = storage_state(url)
    if state == "foreign":
        raise NasError(f"storage {shown} is not an Optuna storage (the database has other contents); "
                       "refusing to use it")
    if state != "optuna" and not create:
        raise NasError(f"storage {shown} is not an Optuna storage (it holds no Optuna tables)")
    try:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        for attempt in range(3):
            try:
                storage = optuna.storages.RDBStorage(engine_url, skip_table_creation=state == "optuna")
                break
            except sqlalchemy.exc.DBAPIError:
                # another process was making the tables at the same moment (drivers started together)
                if state == "optuna" or attempt == 2:
                    raise
                time.sleep(1.0)
                state = storage_state(url)
        if create and sqlite_path(url) is not None:
            _sqlite_wal(storage.engine)
        return storage
    except sqlalchemy.exc.DBAPIError as e:
        raise NasError(f"cannot open storage {shown}: {first_line(e.orig or e)}") from None
    except (sqlalchemy.exc.SQLAlchemyError, RuntimeError, OSError, ValueError) as e:
        raise NasError(f"cannot open storage {shown}: {first_line(e)}") from None


def _sqlite_wal(engine) -> None:
    """Write-ahead logging with ``synchronous=NORMAL`` for a SQLite file the driver writes.

    Measured here: a commit costs 16-19 ms in SQLite's default rollback-journal mode (an fsync each)
    and 0.03 ms in WAL mode with synchronous=NORMAL, which stays consistent across a killed process
    (only a power loss can drop the last commits). A trial makes about ten commits. Readers such as
    optuna-dashboard keep working while the driver writes.
    """
    import sqlalchemy

    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened before the listener (table checks) are dropped


def study_names(storage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]


def study_summaries(storage) -> list[tuple[str, int, dict[str, Any], bool]]:
    """``(name, study id, user attrs, maximize)`` of every study in an RDB storage."""
    from optuna.study import StudyDirection

    return [(s.study_name, storage.get_study_id_from_name(s.study_name), s.user_attrs,
             s.directions[0] == StudyDirection.MAXIMIZE) for s in storage.get_all_studies()]


def study_directions(storage, study_id: int) -> list[str]:
    """``"maximize"``/``"minimize"`` per objective of a study."""
    return [d.name.lower() for d in storage.get_study_directions(study_id)]


def find_study_id(storage, study_name: str) -> int | None:
    try:
        return storage.get_study_id_from_name(study_name)
    except KeyError:
        return None


def create_study(storage, study_name: str, attrs: dict[str, Any], directions: Sequence[str] = ("maximize",)) -> int:
    """A new study with the given user attrs and directions (``"maximize"``/``"minimize"`` per objective:
    several make a multi-objective study); returns its id."""
    from optuna.exceptions import DuplicatedStudyError
    from optuna.study import StudyDirection

    try:
        study_id = storage.create_new_study([StudyDirection[d.upper()] for d in directions], study_name)
    except DuplicatedStudyError:  # another driver created it a moment ago (started together): join it
        return storage.get_study_id_from_name(study_name)
    for key, value in attrs.items():
        storage.set_study_user_attr(study_id, key, value)
    return study_id


def open_study(storage: str, study_name: str | None = None):
    """Load an existing study (``optuna.Study``); NasError when the storage or the study is missing.

    Never creates anything. ``study_name`` None picks the storage's only study.
    """
    import optuna

    rdb = connect(storage, create=False)
    names = study_names(rdb)
    if study_name is None:
        if len(names) != 1:
            listing = ", ".join(names) if names else "none"
            raise NasError(f"storage {display_url(storage)} has {len(names)} studies ({listing}); "
                           "name one with --study-name")
        study_name = names[0]
    if study_name not in names:
        listing = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "") if names else "none"
        raise NasError(f"no study {study_name!r} in {display_url(storage)}{did_you_mean(study_name, names)} "
                       f"(studies: {listing})")
    return optuna.load_study(study_name=study_name, storage=rdb)


def pick_trial(study, number: int | None = None):
    """The best COMPLETE trial (``number`` None) or trial ``number``, as a FrozenTrial; NasError otherwise."""
    storage, study_id = study_storage(study), study_id_of(study)
    if number is None:
        try:
            return storage.get_best_trial(study_id)
        except ValueError:
            raise NasError(f"study {study.study_name!r} has no COMPLETE trial yet") from None
    try:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, int(number))
    except KeyError:
        count = storage.get_n_trials(study_id)
        what = f"trials 0..{count - 1}" if count else "no trials"
        raise NasError(f"study {study.study_name!r} has no trial {number} ({what})") from None
    return storage.get_trial(trial_id)


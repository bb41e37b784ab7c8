"""The Optuna layer: storage URLs, studies, writing trials, and reading them back narrowly.

Trial layout (one trial per trained candidate; readable by ``optuna-dashboard``):

* params: ``space.to_params(g)``, categorical distributions from ``space.param_choices()``;
* user attrs: ``genotype`` (``space.format(g)``), ``hash`` (``space.hash(g)``), ``parent`` (trial number of
  the evolution parent or None), ``seed``, ``note`` (how the candidate was made), and when trained
  ``params`` (parameter count), ``flops``, ``train_seconds``; a failed trial has ``error`` (one line)
  and ``traceback``;
* intermediate values: validation accuracy after each epoch, written as the epochs finish;
* value: the final validation accuracy (direction maximize).

Study user attrs: ``config`` (the whole search configuration), ``space``, ``algo``, ``dataset`` and
``network`` (the ``build_network`` keyword arguments, so any trial can be rebuilt and exported).

Trials are written through the storage API (``create_new_trial`` with a RUNNING template, then
intermediate values, then the final state), not through ``Study.ask``: the params are fixed by the
algorithm, not sampled. Resuming reads only what it needs (number, state, value, genotype, parent,
hash) with one SQL query over Optuna's tables: 10,000 trials in well under a second, where
``study.get_trials()`` takes about 16 s.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasengine.errors import NasError

DEFAULT_STORAGE = "sqlite:///nasengine.db"


# ------------------------------------------------------------------------------------------- storage


def _first_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


def display_url(url: str) -> str:
    """The URL with any password hidden."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for other databases)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return None
    return Path(u.database) if u.database else None


_DRIVER_PACKAGES = {"psycopg": "psycopg", "psycopg2": "psycopg2", "MySQLdb": "mysqlclient", "pymysql": "pymysql"}


def default_artifact_dir(url: str) -> Path:
    """Where trial artifacts (cell diagrams) go: ``nasengine-artifacts/`` beside a SQLite file, else in
    the working directory."""
    path = sqlite_path(url)
    return (path.parent if path is not None else Path(".")) / "nasengine-artifacts"


def check_storage_url(url: str, must_exist: bool = False) -> str:
    """Check a storage URL without connecting; returns the URL SQLAlchemy should open (a bare
    ``postgresql://`` names whichever of psycopg / psycopg2 is installed). NasError for a malformed URL,
    an unknown database kind, a missing driver, an in-memory or unreachable SQLite path, or
    (``must_exist``) a missing SQLite file."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    if not isinstance(url, str) or not url.strip():
        raise NasError("the storage URL is empty (e.g. sqlite:///nasengine.db)")
    try:
        u = make_url(url)
    except ArgumentError:
        hint = f"; for a file try sqlite:///{url}" if "://" not in url else ""
        raise NasError(f"bad storage URL {url!r}: expected e.g. sqlite:///nasengine.db or "
                       f"postgresql://user@host/db{hint}") from None
    try:
        dialect = u.get_dialect()
    except NoSuchModuleError:
        raise NasError(f"bad storage URL {display_url(url)!r}: unknown database kind {u.drivername!r} "
                       "(use sqlite, postgresql or mysql)") from None
    if u.get_backend_name() == "sqlite":
        if not u.database or u.database == ":memory:":
            raise NasError("an in-memory SQLite storage would vanish with the process; name a file, "
                           "e.g. sqlite:///nasengine.db")
        path = Path(u.database)
        if path.is_dir():
            raise NasError(f"storage {url!r} names a directory, not a database file")
        if not path.parent.is_dir():
            raise NasError(f"storage {url!r}: directory {str(path.parent)!r} does not exist")
        if must_exist and not path.is_file():
            raise NasError(f"storage {url}: database file {str(path)!r} does not exist")
        return url
    try:
        dialect.import_dbapi()
    except ImportError as e:
        if u.drivername == "postgresql":  # no driver named: take psycopg2 when psycopg (3) is missing
            try:
                import psycopg2  # noqa: F401
            except ImportError:
                pass
            else:
                return u.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
        package = _DRIVER_PACKAGES.get(e.name or "", e.name or "its driver")
        if u.drivername == "postgresql":
            package = "psycopg2 (or psycopg)"
        extra = ": pip install 'nasengine[postgres]'" if u.get_backend_name() == "postgresql" else ""
        raise NasError(f"storage {display_url(url)} needs the database driver {package}, which is not "
                       f"installed{extra}") from None
    return url


def storage_state(url: str) -> str:
    """``"missing"`` (no SQLite file yet), ``"empty"`` (a database without tables), ``"optuna"`` (Optuna's
    tables) or ``"foreign"`` (another kind of database). Reads only; NasError when it cannot be read."""
    import sqlalchemy
    import sqlalchemy.exc

    engine_url = check_storage_url(url)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return "missing"
    if path is not None and path.stat().st_size == 0:
        return "empty"
    try:
        engine = sqlalchemy.create_engine(engine_url)
        try:
            names = set(sqlalchemy.inspect(engine).get_table_names())
        finally:
            engine.dispose()
    except sqlalchemy.exc.DBAPIError as e:
        if path is not None:  # a file SQLite cannot read: not a database at all
            return "foreign"
        raise NasError(f"cannot open storage {display_url(url)}: {_first_line(e.orig or e)}") from None
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as e:
        raise NasError(f"cannot open storage {display_url(url)}: {_first_line(e)}") from None
    if {"studies", "trials", "version_info"} <= names:
        return "optuna"
    return "foreign" if names else "empty"


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
    state = storage_state(url)
    if state == "foreign":
        raise NasError(f"storage {shown} is not an Optuna storage (the database has other contents); "
                       "refusing to use it")
    if state != "optuna" and not create:
        raise NasError(f"storage {shown} is not an Optuna storage (it holds no Optuna tables)")
    try:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = optuna.storages.RDBStorage(engine_url, skip_table_creation=state == "optuna")
        if create and sqlite_path(url) is not None:
            _sqlite_wal(storage.engine)
        return storage
    except sqlalchemy.exc.DBAPIError as e:
        raise NasError(f"cannot open storage {shown}: {_first_line(e.orig or e)}") from None
    except (sqlalchemy.exc.SQLAlchemyError, RuntimeError, OSError, ValueError) as e:
        raise NasError(f"cannot open storage {shown}: {_first_line(e)}") from None


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


def find_study_id(storage, study_name: str) -> int | None:
    try:
        return storage.get_study_id_from_name(study_name)
    except KeyError:
        return None


def create_study(storage, study_name: str, attrs: dict[str, Any]) -> int:
    """A new maximize study with the given user attrs; returns its id."""
    from optuna.study import StudyDirection

    study_id = storage.create_new_study([StudyDirection.MAXIMIZE], study_name)
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
        raise NasError(f"no study {study_name!r} in {display_url(storage)} (studies: {listing})")
    return optuna.load_study(study_name=study_name, storage=rdb)


def pick_trial(study, number: int | None = None):
    """The best COMPLETE trial (``number`` None) or trial ``number``, as a FrozenTrial; NasError otherwise."""
    storage, study_id = study._storage, study._study_id
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


# -------------------------------------------------------------------------------------------- trials


def distributions_for(space) -> dict:
    """Param name -> CategoricalDistribution for every param the space's genotypes can have."""
    from optuna.distributions import CategoricalDistribution

    return {name: CategoricalDistribution(choices) for name, choices in space.param_choices().items()}


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    json.dumps(value)
    return value


class TrialWriter:
    """Writes trials of one study: RUNNING at start, intermediate values as they come, then the end."""

    def __init__(self, storage, study_id: int, distributions: dict) -> None:
        self.storage = storage
        self.study_id = study_id
        self.distributions = distributions

    fast = True  # one SQL transaction per new trial (see _start_fast); False: Optuna's storage API only

    def start(self, params: dict[str, Any], user_attrs: dict[str, Any]) -> tuple[int, int]:
        """Create a RUNNING trial; returns ``(trial_id, number)``."""
        dists = {k: self.distributions[k] for k in params}
        attrs = {k: _jsonable(v) for k, v in user_attrs.items()}
        if self.fast:
            try:
                return self._start_fast(params, dists, attrs)
            except Exception:  # noqa: BLE001 - an Optuna schema we do not know: use the API from now on
                self.fast = False
        return self._start_api(params, dists, attrs)

    def _start_fast(self, params: dict, dists: dict, attrs: dict) -> tuple[int, int]:
        """The trial row, its params and user attrs in one transaction of bulk inserts.

        ``create_new_trial(template_trial=...)`` writes the same rows but runs three ORM queries per
        param (about 0.2 s for a NASNet genotype's 40 params on this machine, 85% of the driver's cost
        per trial). The number is assigned as Optuna does (trials of the study before this one) under
        the same lock on the study row.
        """
        import sqlalchemy as sa
        from optuna.distributions import distribution_to_json
        from optuna.storages._rdb import models
        from optuna.trial import TrialState

        studies = models.StudyModel.__table__
        trials = models.TrialModel.__table__
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        with self.storage.engine.begin() as conn:
            conn.execute(sa.select(studies.c.study_id).where(studies.c.study_id == self.study_id).with_for_update())
            number = conn.execute(sa.select(sa.func.count()).select_from(trials)
                                  .where(trials.c.study_id == self.study_id)).scalar_one()
            trial_id = conn.execute(sa.insert(trials).values(
                number=number, study_id=self.study_id, state=TrialState.RUNNING, datetime_start=now,
            )).inserted_primary_key[0]
            if params:
                conn.execute(sa.insert(models.TrialParamModel.__table__), [
                    {"trial_id": trial_id, "param_name": k, "param_value": dists[k].to_internal_repr(v),
                     "distribution_json": distribution_to_json(dists[k])} for k, v in params.items()])
            if attrs:
                conn.execute(sa.insert(models.TrialUserAttributeModel.__table__), [
                    {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()])
        return trial_id, number

    def _start_api(self, params: dict, dists: dict, attrs: dict) -> tuple[int, int]:
        from optuna.trial import FrozenTrial, TrialState

        template = FrozenTrial(
            number=0, state=TrialState.RUNNING, value=None,
            datetime_start=datetime.datetime.now(), datetime_complete=None,
            params=dict(params), distributions=dists, user_attrs=attrs,
            system_attrs={}, intermediate_values={}, trial_id=0,
        )
        trial_id = self.storage.create_new_trial(self.study_id, template_trial=template)
        return trial_id, self.storage.get_trial_number_from_id(trial_id)

    def report(self, trial_id: int, step: int, value: float) -> None:
        if value is None or not math.isfinite(value):
            return
        self.storage.set_trial_intermediate_value(trial_id, int(step), float(value))

    def set_attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        for key, value in attrs.items():
            self.storage.set_trial_user_attr(trial_id, key, _jsonable(value))

    def complete(self, trial_id: int, value: float, attrs: dict[str, Any]) -> None:
        from optuna.trial import TrialState

        self.set_attrs(trial_id, attrs)
        self.storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [float(value)])

    def fail(self, trial_id: int, attrs: dict[str, Any]) -> None:
        from optuna.trial import TrialState

        self.set_attrs(trial_id, attrs)
        self.storage.set_trial_state_values(trial_id, TrialState.FAIL)


# ------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class HistoryRow:
    """A trial as a resume needs it."""

    trial_id: int
    number: int
    state: str  # "COMPLETE", "FAIL", "RUNNING", ...
    value: float | None
    genotype: str | None
    parent: int | None
    hash: str | None


def read_history(storage, study_id: int, states: tuple[str, ...] = ("COMPLETE", "FAIL")) -> list[HistoryRow]:
    """Trials of ``study_id`` in the given states, in the order they finished (then by number).

    One SQL query over Optuna's tables reading only number, state, value and the user attrs
    genotype / parent / hash. Falls back to ``get_all_trials`` should Optuna's schema ever change.
    """
    try:
        return _read_history_sql(storage, study_id, states)
    except Exception:  # noqa: BLE001 - a schema we do not know: take the slow, supported road
        return _read_history_api(storage, study_id, states)


def _read_history_sql(storage, study_id: int, states: tuple[str, ...]) -> list[HistoryRow]:
    import sqlalchemy as sa
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    t = models.TrialModel.__table__
    v = models.TrialValueModel.__table__
    ua = models.TrialUserAttributeModel.__table__
    g, p, h = ua.alias("g"), ua.alias("p"), ua.alias("h")
    query = (
        sa.select(t.c.trial_id, t.c.number, t.c.state, v.c.value, v.c.value_type, g.c.value_json,
                  p.c.value_json, h.c.value_json)
        .select_from(
            t.outerjoin(v, sa.and_(v.c.trial_id == t.c.trial_id, v.c.objective == 0))
            .outerjoin(g, sa.and_(g.c.trial_id == t.c.trial_id, g.c.key == "genotype"))
            .outerjoin(p, sa.and_(p.c.trial_id == t.c.trial_id, p.c.key == "parent"))
            .outerjoin(h, sa.and_(h.c.trial_id == t.c.trial_id, h.c.key == "hash"))
        )
        .where(t.c.study_id == study_id, t.c.state.in_([TrialState[s] for s in states]))
        .order_by(t.c.datetime_complete, t.c.number)
    )
    inf = {models.TrialValueModel.TrialValueType.INF_POS: math.inf,
           models.TrialValueModel.TrialValueType.INF_NEG: -math.inf}
    rows = []
    with storage.engine.connect() as conn:
        for trial_id, number, state, value, vtype, gj, pj, hj in conn.execute(query):
            if vtype in inf:
                value = inf[vtype]
            rows.append(HistoryRow(trial_id, number, state.name, value, _loads(gj), _loads(pj), _loads(hj)))
    return rows


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _read_history_api(storage, study_id: int, states: tuple[str, ...]) -> list[HistoryRow]:
    from optuna.trial import TrialState

    trials = storage.get_all_trials(study_id, deepcopy=False, states=tuple(TrialState[s] for s in states))
    far = datetime.datetime.max.replace(tzinfo=None)
    trials.sort(key=lambda tr: ((tr.datetime_complete.replace(tzinfo=None) if tr.datetime_complete else far),
                                tr.number))
    return [HistoryRow(tr._trial_id, tr.number, tr.state.name, tr.value, tr.user_attrs.get("genotype"),
                       tr.user_attrs.get("parent"), tr.user_attrs.get("hash")) for tr in trials]


def count_complete(storage, study_id: int) -> int:
    from optuna.trial import TrialState

    return storage.get_n_trials(study_id, TrialState.COMPLETE)


def fail_running(storage, study_id: int, error: str) -> list[int]:
    """Mark the study's RUNNING trials FAIL with user attr ``error``; returns their numbers.

    Optuna's own heartbeat does this only inside ``study.optimize``; a driver that died (SIGKILL,
    power loss) leaves its trials RUNNING, and its successor calls this before resuming.
    """
    from optuna.trial import TrialState

    numbers = []
    for row in read_history(storage, study_id, states=("RUNNING",)):
        storage.set_trial_user_attr(row.trial_id, "error", error)
        storage.set_trial_state_values(row.trial_id, TrialState.FAIL)
        numbers.append(row.number)
    return numbers

"""The one writer of trials: a search's driver, ``nasengine train`` and ``nasengine bench --storage``
all write through :class:`TrialWriter`, so every study holds the same trial layout:

* params: ``space.to_params(g)``, categorical distributions from ``space.param_choices()``;
* user attrs: ``genotype`` (``space.format(g)``), ``hash`` (``space.hash(g)``), ``parent`` (trial number of
  the evolution parent or None), ``seed``, ``note`` (how the candidate was made), ``driver`` (the process
  that wrote it, :mod:`nasengine.storage.drivers`), and when trained
  ``params`` (parameter count), ``flops``, ``train_seconds``; a failed trial has ``error`` (one line)
  and ``traceback``;
* intermediate values: validation accuracy after each epoch, written as the epochs finish;
* value: the final validation accuracy (direction maximize).

Trials are written through the storage (a RUNNING trial, then intermediate values, then the final
state), not through ``Study.ask``: the params are fixed by the algorithm, not sampled.

Several writers may share a study (two drivers, a cluster's drivers): trial numbers are assigned under
a lock on both databases (see :meth:`TrialWriter._start_fast` and :func:`one_sqlite_writer_at_a_time`);
``tests/test_concurrent_writers.py`` starts trials from several processes at once on each.
"""

from __future__ import annotations

import datetime
import json
import math
import time
from typing import Any

from nasengine.storage.drivers import HEARTBEAT_SECONDS, beat, this_driver
from nasengine.storage.internals import rdb_models


def distributions_for(space) -> dict:
    """Param name -> CategoricalDistribution for every param the space's genotypes can have."""
    from optuna.distributions import CategoricalDistribution

    return {name: CategoricalDistribution(choices) for name, choices in space.param_choices().items()}


def one_sqlite_writer_at_a_time(engine) -> None:
    """Make every transaction of a SQLite ``engine`` take the database's write lock when it begins
    (``BEGIN IMMEDIATE``; SQLAlchemy's recipe for pysqlite), waiting up to a minute for it.

    SQLite ignores ``SELECT ... FOR UPDATE``, and Python's sqlite3 begins a transaction only at its
    first write: two processes could then count the same trials and give two trials one number (seen
    here with 4 writers; ``tests/test_concurrent_writers.py``), or fail with "database is locked" when
    one's read snapshot went stale before its write (Optuna does a read, then a write, per call).
    Transactions are milliseconds long, so serialising them costs the writers nothing they notice.
    No-op for other databases, and when already done."""
    import sqlalchemy as sa

    if engine.dialect.name != "sqlite" or sa.event.contains(engine, "begin", _begin_immediate):
        return
    sa.event.listen(engine, "connect", _sqlite_manual_transactions)
    sa.event.listen(engine, "begin", _begin_immediate)
    engine.dispose()  # pooled connections made before the listeners are dropped


def _sqlite_manual_transactions(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # sqlite3 emits no BEGIN of its own: _begin_immediate does
    dbapi_connection.execute("PRAGMA busy_timeout = 60000")


def _begin_immediate(conn) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    json.dumps(value)
    return value


class TrialWriter:
    """Writes the trials of one study of genotypes from ``space``: RUNNING at start, intermediate
    values as they come, then the end."""

    def __init__(self, storage, study_id: int, space) -> None:
        self.storage = storage
        self.study_id = study_id
        self.space = space
        self.distributions = distributions_for(space)
        self.driver = this_driver()
        self._beaten = -math.inf
        one_sqlite_writer_at_a_time(storage.engine)

    fast = True  # one SQL transaction per new trial (see _start_fast); False: Optuna's storage API only

    def start(self, genotype, *, seed: int, parent: int | None = None, note: str = "", hash: str | None = None,
              unique: bool = False, limit: int | None = None, **extra: Any) -> tuple[int, int] | None:
        """Create a RUNNING trial of ``genotype`` with the standard user attrs (and ``extra`` ones);
        returns ``(trial_id, number)``. ``hash`` saves recomputing the canonical hash when known.
        ``genotype`` None: a weight-sharing search, whose genotype :meth:`set_genotype` writes when it ends.
        ``unique``: create nothing and return None when the study has a RUNNING or COMPLETE trial of the
        same hash (another driver of the study has it); ``limit``: likewise when the study has ``limit``
        RUNNING and COMPLETE trials (the budget of several drivers). Both are checked under the lock that
        numbers the trial, so two drivers cannot both pass them."""
        params = {} if genotype is None else self.space.to_params(genotype)
        dists = {k: self.distributions[k] for k in params}
        user_attrs = {"parent": parent, "seed": seed, "note": note, **extra, "driver": self.driver}
        if genotype is not None:
            user_attrs.update(genotype=self.space.format(genotype), hash=hash or self.space.hash(genotype))
        attrs = {k: _jsonable(v) for k, v in user_attrs.items()}
        guard = (attrs.get("hash") if unique else None, limit)
        self.beat()
        if self.fast:
            try:
                return self._start_fast(params, dists, attrs, guard)
            except Exception:  # noqa: BLE001 - an Optuna schema we do not know: use the API from now on
                self.fast = False
        return self._start_api(params, dists, attrs, guard)

    def beat(self, force: bool = False) -> None:
        """The writer's heartbeat in the study (at most every ``HEARTBEAT_SECONDS``): other drivers of the
        study on other hosts take it for alive while it beats (:mod:`nasengine.storage.drivers`)."""
        now = time.monotonic()
        if force or now - self._beaten >= HEARTBEAT_SECONDS:
            beat(self.storage, self.study_id, self.driver)
            self._beaten = now

    def _refused(self, conn, guard: tuple[str | None, int | None]) -> bool:
        """Whether ``guard`` = (hash, limit) refuses a new trial: the study has a RUNNING or COMPLETE trial of
        that hash, or ``limit`` RUNNING and COMPLETE trials."""
        import sqlalchemy as sa
        from optuna.trial import TrialState

        twin, limit = guard
        models = rdb_models()
        trials = models.TrialModel.__table__
        attrs = models.TrialUserAttributeModel.__table__
        live = trials.c.state.in_([TrialState.RUNNING, TrialState.COMPLETE])
        if limit is not None and conn.execute(sa.select(sa.func.count()).select_from(trials).where(
                trials.c.study_id == self.study_id, live)).scalar_one() >= limit:
            return True
        return twin is not None and conn.execute(
            sa.select(trials.c.number).select_from(trials.join(attrs, attrs.c.trial_id == trials.c.trial_id))
            .where(trials.c.study_id == self.study_id, live, attrs.c.key == "hash",
                   attrs.c.value_json == json.dumps(twin)).limit(1)).first() is not None

    def _start_fast(self, params: dict, dists: dict, attrs: dict,
                    guard: tuple[str | None, int | None] = (None, None)) -> tuple[int, int] | None:
        """The trial row, its params and user attrs in one transaction of bulk inserts.

        ``create_new_trial(template_trial=...)`` writes the same rows but runs three ORM queries per
        param (about 0.2 s for a NASNet genotype's 40 params on this machine, 85% of the driver's cost
        per trial). The number is assigned as Optuna does (trials of the study before this one) under
        a lock: on PostgreSQL (and MySQL) the study row's ``FOR UPDATE`` lock, the one Optuna takes; on
        SQLite, which ignores ``FOR UPDATE``, the write lock ``BEGIN IMMEDIATE`` takes
        (:func:`one_sqlite_writer_at_a_time`).
        """
        import sqlalchemy as sa
        from optuna.distributions import distribution_to_json
        from optuna.trial import TrialState

        models = rdb_models()
        studies = models.StudyModel.__table__
        trials = models.TrialModel.__table__
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        with self.storage.engine.begin() as conn:
            conn.execute(sa.select(studies.c.study_id).where(studies.c.study_id == self.study_id).with_for_update())
            if self._refused(conn, guard):
                return None
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

    def _start_api(self, params: dict, dists: dict, attrs: dict,
                   guard: tuple[str | None, int | None] = (None, None)) -> tuple[int, int] | None:
        """Through Optuna's API; the guard is then checked before the trial's creation, unlocked (two
        drivers may both start one candidate, or one trial past the budget, once in a long while)."""
        from optuna.trial import FrozenTrial, TrialState

        with self.storage.engine.connect() as conn:
            if self._refused(conn, guard):
                return None

        template = FrozenTrial(
            number=0, state=TrialState.RUNNING, value=None,
            datetime_start=datetime.datetime.now(), datetime_complete=None,
            params=dict(params), distributions=dists, user_attrs=attrs,
            system_attrs={}, intermediate_values={}, trial_id=0,
        )
        trial_id = self.storage.create_new_trial(self.study_id, template_trial=template)
        return trial_id, self.storage.get_trial_number_from_id(trial_id)

    def set_genotype(self, trial_id: int, genotype) -> None:
        """The params and the ``genotype`` / ``hash`` attrs of a RUNNING trial started without a genotype."""
        for name, value in self.space.to_params(genotype).items():
            dist = self.distributions[name]
            self.storage.set_trial_param(trial_id, name, dist.to_internal_repr(value), dist)
        self.set_attrs(trial_id, {"genotype": self.space.format(genotype), "hash": self.space.hash(genotype)})

    def report(self, trial_id: int, step: int, value: float) -> None:
        if value is None or not math.isfinite(value):
            return
        self.storage.set_trial_intermediate_value(trial_id, int(step), float(value))

    def set_attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        for key, value in attrs.items():
            self.storage.set_trial_user_attr(trial_id, key, _jsonable(value))

    def complete(self, trial_id: int, value: float | tuple[float, ...], attrs: dict[str, Any]) -> None:
        """``value``: the trial's value, or its values (every objective, in order) in a multi-objective study."""
        from optuna.trial import TrialState

        self.set_attrs(trial_id, attrs)
        values = [float(v) for v in value] if isinstance(value, tuple) else [float(value)]
        self.storage.set_trial_state_values(trial_id, TrialState.COMPLETE, values)

    def fail(self, trial_id: int, attrs: dict[str, Any]) -> None:
        from optuna.trial import TrialState

        self.set_attrs(trial_id, attrs)
        self.storage.set_trial_state_values(trial_id, TrialState.FAIL)


"""Reading a study's trials back narrowly: what a resume, ``show`` and the duplicate check need.

One SQL query over Optuna's tables reads number, state, value and the user attrs genotype / parent /
hash / seed of every trial: 10,000 trials in well under a second, where ``study.get_trials()`` takes about
16 s (it loads every row of every table).
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass
from typing import Any

from nasengine.storage.internals import rdb_models, trial_id_of


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
    seed: int | None = None


def read_history(storage, study_id: int, states: tuple[str, ...] = ("COMPLETE", "FAIL")) -> list[HistoryRow]:
    """Trials of ``study_id`` in the given states, in the order they finished (then by number).

    One SQL query over Optuna's tables reading only number, state, value and the user attrs
    genotype / parent / hash / seed. Falls back to ``get_all_trials`` should Optuna's schema ever change.
    """
    try:
        return _read_history_sql(storage, study_id, states)
    except Exception:  # noqa: BLE001 - a schema we do not know: take the slow, supported road
        return _read_history_api(storage, study_id, states)


def _read_history_sql(storage, study_id: int, states: tuple[str, ...]) -> list[HistoryRow]:
    import sqlalchemy as sa
    from optuna.trial import TrialState

    models = rdb_models()
    t = models.TrialModel.__table__
    v = models.TrialValueModel.__table__
    ua = models.TrialUserAttributeModel.__table__
    g, p, h, s = ua.alias("g"), ua.alias("p"), ua.alias("h"), ua.alias("s")
    query = (
        sa.select(t.c.trial_id, t.c.number, t.c.state, v.c.value, v.c.value_type, g.c.value_json,
                  p.c.value_json, h.c.value_json, s.c.value_json)
        .select_from(
            t.outerjoin(v, sa.and_(v.c.trial_id == t.c.trial_id, v.c.objective == 0))
            .outerjoin(g, sa.and_(g.c.trial_id == t.c.trial_id, g.c.key == "genotype"))
            .outerjoin(p, sa.and_(p.c.trial_id == t.c.trial_id, p.c.key == "parent"))
            .outerjoin(h, sa.and_(h.c.trial_id == t.c.trial_id, h.c.key == "hash"))
            .outerjoin(s, sa.and_(s.c.trial_id == t.c.trial_id, s.c.key == "seed"))
        )
        .where(t.c.study_id == study_id, t.c.state.in_([TrialState[s] for s in states]))
        .order_by(t.c.datetime_complete, t.c.number)
    )
    inf = {models.TrialValueModel.TrialValueType.INF_POS: math.inf,
           models.TrialValueModel.TrialValueType.INF_NEG: -math.inf}
    rows = []
    with storage.engine.connect() as conn:
        for trial_id, number, state, value, vtype, gj, pj, hj, sj in conn.execute(query):
            if vtype in inf:
                value = inf[vtype]
            rows.append(HistoryRow(trial_id, number, state.name, value, _loads(gj), _loads(pj), _loads(hj),
                                   _loads(sj)))
    return rows


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _read_history_api(storage, study_id: int, states: tuple[str, ...]) -> list[HistoryRow]:
    from optuna.trial import TrialState

    trials = storage.get_all_trials(study_id, deepcopy=False, states=tuple(TrialState[s] for s in states))
    far = datetime.datetime.max.replace(tzinfo=None)
    trials.sort(key=lambda tr: ((tr.datetime_complete.replace(tzinfo=None) if tr.datetime_complete else far),
                                tr.number))
    return [HistoryRow(trial_id_of(tr), tr.number, tr.state.name, tr.value, tr.user_attrs.get("genotype"),
                       tr.user_attrs.get("parent"), tr.user_attrs.get("hash"), tr.user_attrs.get("seed"))
            for tr in trials]


def count_complete(storage, study_id: int) -> int:
    from optuna.trial import TrialState

    return storage.get_n_trials(study_id, TrialState.COMPLETE)


def fail_running(storage, study_id: int, error: str) -> list[int]:
    """Mark the study's RUNNING trials of dead drivers FAIL with user attr ``error``; returns their numbers.

    Optuna's own heartbeat does this only inside ``study.optimize``; a driver that died (SIGKILL,
    power loss) leaves its trials RUNNING, and its successor calls this before resuming. The trials of
    drivers still alive (another search on the same study) are left alone (:mod:`nasengine.storage.drivers`).
    """
    from optuna.trial import TrialState

    from nasengine.storage.drivers import is_alive

    running = read_history(storage, study_id, states=("RUNNING",))
    writers = read_user_attrs(storage, study_id, ("driver",)) if running else {}
    heartbeats = storage.get_study_system_attrs(study_id) if running else {}
    numbers = []
    for row in running:
        if is_alive(writers.get(row.number, {}).get("driver"), heartbeats):
            continue
        storage.set_trial_user_attr(row.trial_id, "error", error)
        storage.set_trial_state_values(row.trial_id, TrialState.FAIL)
        numbers.append(row.number)
    return numbers



def read_values(storage, study_id: int) -> dict[int, tuple[float, ...]]:
    """Trial number -> its values (every objective, in order) for the study's trials that have them:
    one SQL query, for the resume of a multi-objective study and for ``show``."""
    import sqlalchemy as sa

    models = rdb_models()
    t = models.TrialModel.__table__
    v = models.TrialValueModel.__table__
    inf = {models.TrialValueModel.TrialValueType.INF_POS: math.inf,
           models.TrialValueModel.TrialValueType.INF_NEG: -math.inf}
    query = (sa.select(t.c.number, v.c.objective, v.c.value, v.c.value_type)
             .select_from(t.join(v, v.c.trial_id == t.c.trial_id))
             .where(t.c.study_id == study_id).order_by(t.c.number, v.c.objective))
    values: dict[int, list[float]] = {}
    with storage.engine.connect() as conn:
        for number, _objective, value, vtype in conn.execute(query):
            values.setdefault(number, []).append(inf.get(vtype, value))
    return {number: tuple(vs) for number, vs in values.items()}


def read_user_attrs(storage, study_id: int, keys: tuple[str, ...]) -> dict[int, dict[str, Any]]:
    """Trial number -> ``{key: value}`` of the given user attrs (only those set), for every trial of the
    study in any state: one SQL query (the latency cache by hash, ``show``'s accuracy and costs)."""
    import sqlalchemy as sa

    models = rdb_models()
    t = models.TrialModel.__table__
    ua = models.TrialUserAttributeModel.__table__
    query = (sa.select(t.c.number, ua.c.key, ua.c.value_json)
             .select_from(t.join(ua, ua.c.trial_id == t.c.trial_id))
             .where(t.c.study_id == study_id, ua.c.key.in_(list(keys))))
    out: dict[int, dict[str, Any]] = {}
    with storage.engine.connect() as conn:
        for number, key, value in conn.execute(query):
            out.setdefault(number, {})[key] = _loads(value)
    return out

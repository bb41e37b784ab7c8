"""The one place nasengine touches Optuna's private parts, each for a reason Optuna's public API
cannot serve. ``tests/test_storage_internals.py`` fails when any of them changes in a new Optuna.

* ``optuna.storages._rdb.models``: the SQLAlchemy tables. The trial writer inserts a trial's rows in
  one transaction (``create_new_trial`` runs three ORM queries per param: 85% of the driver's cost per
  trial), and a resume reads number, state, value and three user attrs of every trial in one query
  (``get_all_trials`` loads every row of every table: 16 s for 10,000 trials).
* ``Study._storage`` (and the ``_backend`` of the cache ``load_study`` wraps it in) and
  ``Study._study_id``: the storage and id behind a loaded study, which those narrow readers need.
  Optuna has no public getter for either.
* ``FrozenTrial._trial_id``: a trial's storage id, which the storage API takes where trial numbers
  would be ambiguous across studies.
"""

from __future__ import annotations

from typing import Any


def rdb_models() -> Any:
    """Optuna's table models (``optuna.storages._rdb.models``)."""
    from optuna.storages._rdb import models

    return models


def study_storage(study: Any) -> Any:
    """The RDB storage behind an ``optuna.Study`` (without the cache ``load_study`` puts around it)."""
    return getattr(study._storage, "_backend", study._storage)


def study_id_of(study: Any) -> int:
    """The storage's id of an ``optuna.Study``."""
    return study._study_id


def trial_id_of(trial: Any) -> int:
    """The storage's id of a ``FrozenTrial`` (or ``Trial``)."""
    return trial._trial_id

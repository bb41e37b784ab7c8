"""Optuna's private parts that nasengine.storage.internals uses: this fails when a new Optuna moves them."""

import optuna
import sqlalchemy as sa

from nasengine.storage import check_storage_url, internals


def test_the_table_models_have_the_columns_the_writer_and_reader_use():
    models = internals.rdb_models()
    columns = {
        models.StudyModel: {"study_id"},
        models.TrialModel: {"trial_id", "number", "study_id", "state", "datetime_start", "datetime_complete"},
        models.TrialParamModel: {"trial_id", "param_name", "param_value", "distribution_json"},
        models.TrialUserAttributeModel: {"trial_id", "key", "value_json"},
        models.TrialValueModel: {"trial_id", "objective", "value", "value_type"},
    }
    for model, names in columns.items():
        assert names <= set(model.__table__.c.keys()), model.__name__
    assert {"INF_POS", "INF_NEG", "FINITE"} <= set(models.TrialValueModel.TrialValueType.__members__)


def test_a_loaded_study_gives_its_storage_id_and_trial_ids(storage_url):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = check_storage_url(storage_url)
    optuna.create_study(study_name="s", storage=url).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    study = optuna.load_study(study_name="s", storage=url)
    storage = internals.study_storage(study)
    assert isinstance(storage, optuna.storages.RDBStorage)  # not the cache load_study wraps it in
    study_id = internals.study_id_of(study)
    assert storage.get_study_id_from_name("s") == study_id
    trial = study.trials[1]
    assert storage.get_trial(internals.trial_id_of(trial)).number == 1
    with storage.engine.connect() as conn:
        t = internals.rdb_models().TrialModel.__table__
        assert conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.study_id == study_id)).scalar_one() == 2

"""The Optuna layer, the only package that imports optuna: storage URLs, studies, the one trial
writer, narrow reads of a study's history, and artifacts. Optuna's private parts are used only in
:mod:`nasengine.storage.internals`, which says which and why."""

from nasengine.storage.artifacts import attach_png, attach_weights, serve_dashboard
from nasengine.storage.drivers import trial_counts
from nasengine.storage.history import (
                                       HistoryRow,
                                       count_complete,
                                       fail_running,
                                       read_history,
                                       read_user_attrs,
                                       read_values,
)
from nasengine.storage.internals import study_id_of, study_storage
from nasengine.storage.studies import (
                                       connect,
                                       create_study,
                                       find_study_id,
                                       open_study,
                                       pick_trial,
                                       study_directions,
                                       study_names,
                                       study_summaries,
)
from nasengine.storage.urls import (
                                       DEFAULT_STORAGE,
                                       check_storage_url,
                                       default_artifact_dir,
                                       display_url,
                                       sqlite_path,
                                       storage_state,
)
from nasengine.storage.writer import TrialWriter, distributions_for

__all__ = [
    "DEFAULT_STORAGE", "HistoryRow", "TrialWriter", "attach_png", "attach_weights", "check_storage_url", "connect",
    "count_complete",
    "create_study", "default_artifact_dir", "display_url", "distributions_for", "fail_running", "find_study_id",
    "open_study", "pick_trial", "read_history", "read_user_attrs", "read_values", "serve_dashboard", "sqlite_path",
    "storage_state", "study_directions", "study_id_of", "study_names", "study_storage", "study_summaries",
    "trial_counts",
]

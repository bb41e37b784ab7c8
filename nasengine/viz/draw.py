"""Cell diagrams attached to trials as Optuna artifacts (moving to ``nasengine.storage.artifacts``).

Drawing lives in ``nasengine.viz.cells`` (rendering) and ``nasengine.viz.layout`` (the layout).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from nasengine.errors import NasError
from nasengine.viz.cells import genotype_png


def _running_trial(study: Any, trial_id: Any) -> Any:
    """The trial (Optuna's trial id, a ``Trial`` or a ``FrozenTrial``) as stored now; NasError unless it
    can still take attributes (Optuna lets only RUNNING or WAITING trials take them)."""
    import optuna

    if isinstance(trial_id, (optuna.trial.Trial, optuna.trial.FrozenTrial)):
        trial_id = trial_id._trial_id
    try:
        frozen = study._storage.get_trial(int(trial_id))
    except KeyError:
        raise NasError(f"no trial with id {trial_id} in study {study.study_name!r}") from None
    if frozen.state.is_finished():
        raise NasError(f"trial {frozen.number} is already {frozen.state.name}: attach its diagram before telling it")
    return frozen


def _upload(study: Any, frozen: Any, png: bytes, artifact_dir: str | os.PathLike) -> str:
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    Path(artifact_dir).mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(artifact_dir))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"cells-trial-{frozen.number}.png"
        path.write_bytes(png)
        # upload_artifact needs the storage for a FrozenTrial; Optuna has no public getter
        return upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=frozen,
                               storage=study._storage, mimetype="image/png")


def attach_png(study: Any, trial_id: Any, png: bytes, artifact_dir: str | os.PathLike) -> str:
    """Attach PNG bytes to a trial as an Optuna artifact (``cells-trial-N.png``); returns its id.

    ``trial_id`` is Optuna's trial id (``trial._trial_id``, not the trial number), or a ``Trial`` /
    ``FrozenTrial``. Only a trial still RUNNING (or WAITING) takes it, so attach before ``study.tell``.
    ``optuna-dashboard STORAGE --artifact-dir DIR`` shows the image.
    """
    return _upload(study, _running_trial(study, trial_id), png, artifact_dir)


def attach_cell_diagram(study: Any, trial_id: Any, genotype: Any, artifact_dir: str | os.PathLike) -> str:
    """Render ``genotype`` and attach it to a trial (see :func:`attach_png`); returns the artifact id."""
    frozen = _running_trial(study, trial_id)
    return _upload(study, frozen, genotype_png(genotype, f"trial {frozen.number}"), artifact_dir)

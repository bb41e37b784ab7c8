"""Files attached to trials as Optuna artifacts (a trial's cell diagram, a supernet's alphas, the
trained weights), and the dashboard that shows them (``optuna-dashboard STORAGE --artifact-dir DIR``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from nasengine.errors import NasError


def attach_png(storage: Any, trial_id: int, png: bytes, artifact_dir: str | os.PathLike,
               name: str = "cells") -> str:
    """Attach PNG bytes to a RUNNING trial as ``{name}-trial-N.png``; returns the artifact id.

    ``trial_id`` is the storage's trial id (not the trial number). Optuna lets only RUNNING or WAITING
    trials take attachments, so attach before the trial is completed."""
    return _attach(storage, trial_id, png, artifact_dir, name, ".png", "image/png")


def attach_weights(storage: Any, trial_id: int, state_dict: bytes, artifact_dir: str | os.PathLike) -> str:
    """Attach a trained network's ``torch.save``d state_dict to a RUNNING trial as ``weights-trial-N.pt``;
    returns the stored file's absolute path, which the trial keeps in user attr ``weights`` (what
    ``nasengine export --weights`` loads). The file lives in the artifact store: move the folder with
    the database (docs/operations.md)."""
    artifact_id = _attach(storage, trial_id, state_dict, artifact_dir, "weights", ".pt", "application/octet-stream")
    return str((Path(artifact_dir) / artifact_id).resolve())


def _attach(storage: Any, trial_id: int, data: bytes, artifact_dir: str | os.PathLike, name: str, suffix: str,
            mimetype: str) -> str:
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    try:
        frozen = storage.get_trial(int(trial_id))
    except KeyError:
        raise NasError(f"no trial with id {trial_id} in the storage") from None
    if frozen.state.is_finished():
        raise NasError(f"trial {frozen.number} is already {frozen.state.name}: attach files before telling it")
    Path(artifact_dir).mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(artifact_dir))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}-trial-{frozen.number}{suffix}"
        path.write_bytes(data)
        return upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=frozen,
                               storage=storage, mimetype=mimetype)


def serve_dashboard(storage: Any, host: str, port: int, artifact_dir: str | os.PathLike | None) -> None:
    """Serve optuna-dashboard on an RDB storage until interrupted (with the artifacts, when there are)."""
    import optuna_dashboard
    from optuna.artifacts import FileSystemArtifactStore

    store = FileSystemArtifactStore(str(artifact_dir)) if artifact_dir is not None else None
    optuna_dashboard.run_server(storage, host=host, port=port, artifact_store=store)

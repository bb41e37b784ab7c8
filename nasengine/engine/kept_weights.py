"""Which trained weights a search keeps: every COMPLETE trial's (the default), or only the best K
(``--keep-weights K``), as Optuna artifacts of their trials (:func:`nasengine.storage.attach_weights`).

With K, a trial's weights are stored when its value ranks among the K best kept so far, and the file of
the one it displaces is deleted; that trial's user attr ``weights`` still names the deleted file, which
``nasengine export --weights`` reports as missing. A resumed search first takes in the files its study
already keeps."""

from __future__ import annotations

import base64
import math
from pathlib import Path

from nasengine.storage import attach_weights, read_history, read_user_attrs


class KeptWeights:
    def __init__(self, writer, artifact_dir: str, best: int | None = None) -> None:
        self.writer = writer
        self.artifact_dir = artifact_dir
        self.best = best
        self.kept: list[tuple[float, str]] | None = None  # (value, path) of the files kept, once loaded

    def _load(self) -> list[tuple[float, str]]:
        storage, study_id = self.writer.storage, self.writer.study_id
        paths = read_user_attrs(storage, study_id, ("weights",))
        return [(row.value, paths[row.number]["weights"]) for row in read_history(storage, study_id, ("COMPLETE",))
                if row.value is not None and isinstance(paths.get(row.number, {}).get("weights"), str)
                and Path(paths[row.number]["weights"]).is_file()]

    def keep(self, trial_id: int, value: float, weights_b64: str) -> str:
        """Store the RUNNING trial's weights when they are to be kept; the path (user attr ``weights``), or
        ``""`` when not kept. Raises what storing raised."""
        if self.best is not None:
            if self.kept is None:
                self.kept = self._load()
            self.kept.sort(reverse=True)
            if len(self.kept) >= self.best and not (math.isfinite(value) and value > self.kept[self.best - 1][0]):
                return ""
        path = attach_weights(self.writer.storage, trial_id, base64.b64decode(weights_b64), self.artifact_dir)
        if self.kept is not None:
            self.kept.append((value, path))
            self.kept.sort(reverse=True)
            for _, dropped in self.kept[self.best:]:
                Path(dropped).unlink(missing_ok=True)
            del self.kept[self.best:]
        return path

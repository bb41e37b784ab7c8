"""What :func:`nasengine.training.train` gives back: a :class:`TrainResult`, or :class:`TrainingDiverged`."""

from __future__ import annotations

from dataclasses import dataclass, field


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class TrainResult:
    """What :func:`nasengine.training.train` measured.

    ``val_acc`` is the final validation accuracy (None for ``final`` runs, which train on it);
    ``test_acc`` is set for ``final`` runs and when ``cfg.test``. ``curve`` holds the accuracy on
    ``split`` after each epoch, ``train_loss`` the mean training loss of each epoch and
    ``epoch_seconds`` the wall time of each epoch's training steps (evaluation excluded). ``flops`` is
    multiply-adds of one input and ``params`` the parameter count, both from :mod:`nasengine.models.flops`
    (eval mode, without the auxiliary head, as the papers count). ``train_seconds`` is the wall time of the
    whole call.
    """

    val_acc: float | None
    curve: list[float]
    params: int
    flops: int
    train_seconds: float
    test_acc: float | None = None
    split: str = "val"
    train_loss: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    epochs: int = 0
    device: str = "cpu"

    @property
    def value(self) -> float:
        """The final accuracy on ``split``."""
        return self.curve[-1]

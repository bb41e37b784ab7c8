"""What a training run is asked to do: :class:`TrainConfig` and the per-dataset defaults."""

from __future__ import annotations

from dataclasses import dataclass

from nasengine.errors import NasError


@dataclass
class TrainConfig:
    """Training settings. The defaults suit ``digits`` (see :func:`train_defaults` for others).

    ``crop_padding`` / ``flip`` / ``cutout`` of ``None`` take the dataset's defaults; ``augment=False``
    turns all three off. ``mixup`` / ``cutmix`` are Beta(alpha, alpha) parameters, 0 = off (with both on,
    each batch uses one of them at random). ``final=True`` is the final retraining: train on
    train + validation and evaluate on the test split. ``threads`` sets ``torch.set_num_threads`` when
    given. ``device``: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.1
    min_lr: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 3e-4
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.1
    grad_clip: float = 5.0
    aux_weight: float = 0.4
    drop_path: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    augment: bool = True
    crop_padding: int | None = None
    flip: bool | None = None
    cutout: int | None = None
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    amp: bool = True
    channels_last: bool = True
    eval_batch_size: int = 1024
    test: bool = False
    final: bool = False

    def check(self) -> None:
        if self.epochs < 1:
            raise NasError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise NasError("batch sizes must be positive")
        if not self.lr > 0:
            raise NasError(f"lr must be positive, got {self.lr}")
        if self.warmup_epochs < 0 or self.warmup_epochs > self.epochs:
            raise NasError(f"warmup_epochs must be in [0, epochs], got {self.warmup_epochs}")
        if not 0 <= self.label_smoothing < 1:
            raise NasError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.drop_path < 1:
            raise NasError(f"drop_path must be in [0, 1), got {self.drop_path}")
        if self.mixup < 0 or self.cutmix < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise NasError("mixup, cutmix, weight_decay and grad_clip must not be negative")


_TRAIN_DEFAULTS: dict[str, dict] = {
    "digits": {},
    "synthetic": {"batch_size": 128, "lr": 0.05},
    # Short search-time training on CIFAR; retraining a final model uses more epochs, drop_path, cutout.
    "cifar10": {"batch_size": 128, "lr": 0.05, "weight_decay": 5e-4},
    "cifar100": {"batch_size": 128, "lr": 0.05, "weight_decay": 5e-4},
}


def train_defaults(dataset: str) -> dict:
    """TrainConfig overrides that suit ``dataset`` (a copy; empty for unknown names)."""
    return dict(_TRAIN_DEFAULTS.get(dataset, {}))

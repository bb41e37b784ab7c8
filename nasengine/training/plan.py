"""What one training run works on, decided before its first step: the device, the data on it, the batch
size and steps per epoch, the augmentation and the CUDA-only settings."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nasengine.data import Dataset
from nasengine.errors import NasError
from nasengine.training.config import TrainConfig
from nasengine.training.device import resolve_device


@dataclass(frozen=True)
class Plan:
    """The tensors and sizes a run uses, all on ``device``.

    ``train_x`` / ``train_y`` is the training split (train + validation for a ``final`` run) and
    ``eval_x`` / ``eval_y`` the split each epoch is scored on (``split``: ``"val"``, or ``"test"`` for a
    ``final`` run); ``data`` is the whole dataset on the device. Every epoch has ``steps_per_epoch``
    full batches of ``batch_size`` (the last partial batch is dropped: no tiny batch for batch norm).
    ``autocast`` (bf16) and ``channels_last`` are used on CUDA only; there the loss is checked every
    ``check_every`` steps, because reading it (``.item()``) waits for the GPU. ``image_size`` is the
    resolution the network reads: batches of another size are resized to it after augmentation.
    """

    device: torch.device
    data: Dataset
    train_x: torch.Tensor
    train_y: torch.Tensor
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    split: str
    batch_size: int
    steps_per_epoch: int
    crop_padding: int
    flip: bool
    cutout: int
    autocast: bool
    channels_last: bool
    check_every: int
    image_size: int

    @property
    def augments(self) -> bool:
        return bool(self.crop_padding or self.flip or self.cutout)


def make_plan(dataset: Dataset, cfg: TrainConfig, image_size: int | None = None) -> Plan:
    """Resolve ``cfg.device``, move ``dataset`` there and size the run for a network that reads
    ``image_size`` x ``image_size`` inputs (default: the data's); NasError for an empty training split."""
    device = resolve_device(cfg.device)
    cuda = device.type == "cuda"
    data = dataset.to(device)
    if cfg.final:
        train_x = torch.cat([data.train_x, data.val_x])
        train_y = torch.cat([data.train_y, data.val_y])
        split = "test"
    else:
        train_x, train_y, split = data.train_x, data.train_y, "val"
    eval_x, eval_y = data.split(split)
    n = len(train_y)
    if n == 0:
        raise NasError(f"dataset {dataset.name} has no training images")
    batch_size = min(cfg.batch_size, n)
    return Plan(
        device=device, data=data, train_x=train_x, train_y=train_y, eval_x=eval_x, eval_y=eval_y, split=split,
        batch_size=batch_size, steps_per_epoch=n // batch_size,
        crop_padding=(dataset.crop_padding if cfg.crop_padding is None else cfg.crop_padding) if cfg.augment else 0,
        flip=(dataset.flip if cfg.flip is None else cfg.flip) if cfg.augment else False,
        cutout=(dataset.cutout if cfg.cutout is None else cfg.cutout) if cfg.augment else 0,
        autocast=cuda and cfg.amp, channels_last=cuda and cfg.channels_last, check_every=25 if cuda else 1,
        image_size=dataset.image_size if image_size is None else image_size,
    )

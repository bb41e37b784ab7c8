"""Train one network on a :class:`nasengine.data.datasets.Dataset` and measure it.

``train(model, dataset, cfg, report)`` runs SGD with Nesterov momentum and a cosine schedule (optional
linear warmup), label smoothing, weight decay (not on biases / norm weights), optional mixup / CutMix,
a linear drop-path schedule (models with a ``drop_path_prob`` attribute), the auxiliary-head loss
(models returning ``(logits, aux_logits)`` in training mode) and gradient clipping. On CUDA it uses
bf16 autocast, channels_last and keeps the data on the GPU. On the CPU it is deterministic for a seed.
A non-finite loss raises :class:`TrainingDiverged`.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nasengine.data.datasets import Dataset, augment, batches
from nasengine.errors import NasError
from nasengine.models.flops import count_flops, count_params

Report = Callable[[int, float], None]


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


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

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

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


@dataclass
class TrainResult:
    """What :func:`train` measured.

    ``val_acc`` is the final validation accuracy (None for ``final`` runs, which train on it);
    ``test_acc`` is set for ``final`` runs and when ``cfg.test``. ``curve`` holds the accuracy on
    ``split`` after each epoch, ``train_loss`` the mean training loss of each epoch and
    ``epoch_seconds`` the wall time of each epoch's training steps (evaluation excluded). ``flops`` is
    multiply-adds of one input and ``params`` the parameter count, both from :mod:`nasengine.models.flops`
    (eval mode, without the auxiliary head, as the papers count). ``train_seconds`` is the wall time of the whole call.
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


# --------------------------------------------------------------------------------------------- helpers


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    if isinstance(name, torch.device):
        return name
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NasError(f"unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NasError(f"device {name!r} requested but CUDA is not available")
    return device


def _split_output(out):
    if isinstance(out, (tuple, list)):
        return out[0], (out[1] if len(out) > 1 else None)
    return out, None


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024,
             amp: bool = True, channels_last: bool = True) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)`` (tensors on the model's device) in eval mode."""
    if len(y) == 0:
        return float("nan")
    cuda = x.device.type == "cuda"
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    try:
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and amp):
            for xb, yb in batches(x, y, batch_size):
                if cuda and channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                logits, _ = _split_output(model(xb))
                correct += (logits.argmax(1) == yb).sum()
    finally:
        model.train(was_training)
    return correct.item() / len(y)


def _lr_at(step: int, total: int, warmup: int, cfg: TrainConfig) -> float:
    if warmup > 0 and step < warmup:
        return cfg.lr * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def _mix(x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, rng: np.random.Generator,
         generator: torch.Generator):
    """Mixup or CutMix a batch; returns (x, y_b, lam) with y_b None when not mixed."""
    kinds = [k for k, a in (("mixup", cfg.mixup), ("cutmix", cfg.cutmix)) if a > 0]
    if not kinds:
        return x, None, 1.0
    kind = kinds[rng.integers(len(kinds))] if len(kinds) > 1 else kinds[0]
    alpha = cfg.mixup if kind == "mixup" else cfg.cutmix
    lam = float(rng.beta(alpha, alpha))
    perm = torch.randperm(x.shape[0], generator=generator, device=generator.device).to(x.device)
    if kind == "mixup":
        return x * lam + x[perm] * (1.0 - lam), y[perm], lam
    h, w = x.shape[-2:]
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch - ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw - cw // 2, w)
    x = x.clone()
    x[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
    lam = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
    return x, y[perm], lam


def _loss(logits: torch.Tensor, y: torch.Tensor, y_b, lam: float, smoothing: float) -> torch.Tensor:
    logits = logits.float()
    loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
    if y_b is not None and lam < 1.0:
        loss = lam * loss + (1.0 - lam) * F.cross_entropy(logits, y_b, label_smoothing=smoothing)
    return loss


# ----------------------------------------------------------------------------------------------- train


def train(model: nn.Module, dataset: Dataset, cfg: TrainConfig | None = None,
          report: Report | None = None) -> TrainResult:
    """Train ``model`` on ``dataset`` and return what was measured.

    ``report(epoch, accuracy)`` is called after each epoch (epochs counted from 1) with the accuracy
    on the validation split (test split for ``cfg.final``). Weight initialisation happens when the model
    is built: call :func:`seed_everything` before building it for a reproducible run.
    """
    cfg = cfg or TrainConfig()
    cfg.check()
    start = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    cuda = device.type == "cuda"
    channels_last = cuda and cfg.channels_last
    if cuda:
        torch.backends.cudnn.benchmark = True

    data = dataset.to(device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    params = count_params(model, include_aux=False)
    flops = count_flops(model, dataset.input_shape)

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
    steps_per_epoch = n // batch_size  # drop_last: no tiny batch for batch norm
    total_steps = cfg.epochs * steps_per_epoch
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))

    crop = (dataset.crop_padding if cfg.crop_padding is None else cfg.crop_padding) if cfg.augment else 0
    flip = (dataset.flip if cfg.flip is None else cfg.flip) if cfg.augment else False
    hole = (dataset.cutout if cfg.cutout is None else cfg.cutout) if cfg.augment else 0

    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    optimizer = torch.optim.SGD(_param_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum,
                                nesterov=cfg.nesterov and cfg.momentum > 0)
    has_drop_path = hasattr(model, "drop_path_prob")
    check_every = 25 if cuda else 1  # .item() syncs the GPU: check the loss in chunks there

    curve: list[float] = []
    losses: list[float] = []
    epoch_seconds: list[float] = []
    step = 0
    for epoch in range(cfg.epochs):
        if has_drop_path:
            model.drop_path_prob = cfg.drop_path * epoch / cfg.epochs
        model.train()
        epoch_start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        for i, (xb, yb) in enumerate(batches(train_x, train_y, batch_size, shuffle=True, generator=generator,
                                             drop_last=True)):
            lr = _lr_at(step, total_steps, warmup, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if crop or flip or hole:
                xb = augment(xb, crop, flip, hole, generator)
            xb, yb_b, lam = _mix(xb, yb, cfg, rng, generator)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and cfg.amp):
                logits, aux = _split_output(model(xb))
            loss = _loss(logits, yb, yb_b, lam, cfg.label_smoothing)
            if aux is not None and cfg.aux_weight > 0:
                loss = loss + cfg.aux_weight * _loss(aux, yb, yb_b, lam, cfg.label_smoothing)
            if (step + 1) % check_every == 0 or i == steps_per_epoch - 1:
                _check_finite(loss_sum + loss.detach(), epoch, i, lr)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            loss_sum += loss.detach()
            step += 1
        losses.append(loss_sum.item() / max(1, steps_per_epoch))  # .item() waits for the GPU
        epoch_seconds.append(time.perf_counter() - epoch_start)
        acc = evaluate(model, eval_x, eval_y, cfg.eval_batch_size, cfg.amp, channels_last)
        curve.append(acc)
        if report is not None:
            report(epoch + 1, acc)

    val_acc = None if cfg.final else curve[-1]
    test_acc = curve[-1] if cfg.final else None
    if cfg.test and not cfg.final:
        test_acc = evaluate(model, data.test_x, data.test_y, cfg.eval_batch_size, cfg.amp, channels_last)
    if cuda:
        torch.cuda.synchronize(device)
    return TrainResult(
        val_acc=val_acc, curve=curve, params=params, flops=flops, train_seconds=time.perf_counter() - start,
        test_acc=test_acc, split=split, train_loss=losses, epoch_seconds=epoch_seconds, epochs=cfg.epochs, device=str(device),
    )


def _check_finite(loss: torch.Tensor, epoch: int, step: int, lr: float) -> None:
    value = loss.item()
    if not math.isfinite(value):
        raise TrainingDiverged(f"training diverged: loss is {value} at epoch {epoch + 1}, step {step + 1} "
                               f"(lr {lr:.3g})")

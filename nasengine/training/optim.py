"""The optimizer and its learning-rate schedule.

SGD with Nesterov momentum, weight decay on weights only (not on biases or normalisation parameters: the
"no bias decay" of He et al. 2019, "Bag of Tricks for Image Classification"), and a per-step cosine
schedule (Loshchilov & Hutter 2017, SGDR without restarts) after an optional linear warmup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from nasengine.training.config import TrainConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters in two groups: matrices and kernels decayed, vectors (biases, norms) not."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    return torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum,
                           nesterov=cfg.nesterov and cfg.momentum > 0)


@dataclass(frozen=True)
class CosineSchedule:
    """The learning rate of each step (counted from 0 over the whole run): ``lr * (step + 1) / warmup``
    for the first ``warmup`` steps, then cosine from ``lr`` down to ``min_lr`` at step ``total``."""

    lr: float
    min_lr: float
    total: int
    warmup: int = 0

    @classmethod
    def for_run(cls, cfg: TrainConfig, steps_per_epoch: int) -> CosineSchedule:
        return cls(lr=cfg.lr, min_lr=cfg.min_lr, total=cfg.epochs * steps_per_epoch,
                   warmup=int(round(cfg.warmup_epochs * steps_per_epoch)))

    def __call__(self, step: int) -> float:
        if self.warmup > 0 and step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        t = (step - self.warmup) / max(1, self.total - self.warmup)
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))

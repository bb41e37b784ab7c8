"""One epoch: the shuffled training batches, augmented on the device and resized to the network's
resolution, each given to the training step, with the divergence check."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from nasengine.data import augment, batches
from nasengine.training.optim import CosineSchedule
from nasengine.training.plan import Plan
from nasengine.training.resize import resize_batch
from nasengine.training.result import TrainingDiverged

Step = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def run_epoch(step: Step, schedule: CosineSchedule, plan: Plan, generator: torch.Generator, epoch: int) -> float:
    """Train epoch ``epoch`` (from 0) with ``step`` (:class:`nasengine.training.steps.TrainStep`) and return
    its mean training loss.

    ``generator`` shuffles the batches and draws the augmentation. The running loss is checked every
    ``plan.check_every`` steps and at the epoch's end, after the step: :class:`TrainingDiverged` when it
    is not finite."""
    loss_sum = torch.zeros((), device=plan.device)
    first = epoch * plan.steps_per_epoch
    for i, (xb, yb) in enumerate(batches(plan.train_x, plan.train_y, plan.batch_size, shuffle=True,
                                         generator=generator, drop_last=True)):
        lr = schedule(first + i)
        if plan.augments:
            xb = augment(xb, plan.crop_padding, plan.flip, plan.cutout, generator)
        xb = resize_batch(xb, plan.image_size)
        loss_sum += step(xb, yb, lr)
        if (first + i + 1) % plan.check_every == 0 or i == plan.steps_per_epoch - 1:
            check_finite(loss_sum, epoch, i, lr)
    return loss_sum.item() / max(1, plan.steps_per_epoch)  # .item() waits for the GPU


def check_finite(loss: torch.Tensor, epoch: int, step: int, lr: float) -> None:
    """TrainingDiverged when ``loss`` (a running sum) is NaN or infinite; ``epoch`` and ``step`` count from 0."""
    value = loss.item()
    if not math.isfinite(value):
        raise TrainingDiverged(f"training diverged: loss is {value} at epoch {epoch + 1}, step {step + 1} "
                               f"(lr {lr:.3g})")

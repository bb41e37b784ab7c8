"""``train(model, dataset, cfg, report)``: train one network on a :class:`nasengine.data.Dataset` and
measure it.

SGD with Nesterov momentum and a cosine schedule (optional linear warmup), label smoothing, weight decay
(not on biases / norm weights), optional mixup / CutMix, a linear drop-path schedule (models with a
``drop_path_prob`` attribute), the auxiliary-head loss (models returning ``(logits, aux_logits)`` in
training mode) and gradient clipping. A model with an ``image_size`` attribute (the mobile networks) that
differs from the data's reads each batch resized to it. On CUDA it uses bf16 autocast, channels_last and
keeps the data on the GPU. On the CPU it is deterministic for a seed. A non-finite loss raises
:class:`nasengine.training.TrainingDiverged`.

The run is put together from parts that a faster path can replace one at a time: :func:`make_plan`
(device, data, sizes), :func:`make_optimizer` and :class:`CosineSchedule`, :class:`TrainStep` (one step),
:func:`run_epoch` (one epoch) and :func:`evaluate`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn

from nasengine.data import Dataset
from nasengine.models.flops import count_flops, count_params
from nasengine.training.config import TrainConfig
from nasengine.training.device import seed_everything
from nasengine.training.epoch import run_epoch
from nasengine.training.evaluation import evaluate
from nasengine.training.optim import CosineSchedule, make_optimizer
from nasengine.training.plan import make_plan
from nasengine.training.result import TrainResult
from nasengine.training.steps import TrainStep

Report = Callable[[int, float], None]


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
    # a network built for another resolution than the data's (``image_size``) reads resized batches
    plan = make_plan(dataset, cfg, getattr(model, "image_size", None))
    if plan.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model.to(plan.device)
    if plan.channels_last:
        model.to(memory_format=torch.channels_last)
    params = count_params(model, include_aux=False)
    flops = count_flops(model, (dataset.in_channels, plan.image_size, plan.image_size))

    generator = torch.Generator(device=plan.device).manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    step = TrainStep(model, make_optimizer(model, cfg), cfg, rng, generator, plan.autocast, plan.channels_last)
    schedule = CosineSchedule.for_run(cfg, plan.steps_per_epoch)
    has_drop_path = hasattr(model, "drop_path_prob")

    curve: list[float] = []
    losses: list[float] = []
    epoch_seconds: list[float] = []
    for epoch in range(cfg.epochs):
        if has_drop_path:
            model.drop_path_prob = cfg.drop_path * epoch / cfg.epochs
        model.train()
        epoch_start = time.perf_counter()
        losses.append(run_epoch(step, schedule, plan, generator, epoch))
        epoch_seconds.append(time.perf_counter() - epoch_start)
        acc = evaluate(model, plan.eval_x, plan.eval_y, cfg.eval_batch_size, cfg.amp, plan.channels_last,
                       plan.image_size)
        curve.append(acc)
        if report is not None:
            report(epoch + 1, acc)

    val_acc = None if cfg.final else curve[-1]
    test_acc = curve[-1] if cfg.final else None
    if cfg.test and not cfg.final:
        test_acc = evaluate(model, plan.data.test_x, plan.data.test_y, cfg.eval_batch_size, cfg.amp,
                            plan.channels_last, plan.image_size)
    if plan.device.type == "cuda":
        torch.cuda.synchronize(plan.device)
    return TrainResult(
        val_acc=val_acc, curve=curve, params=params, flops=flops, train_seconds=time.perf_counter() - start,
        test_acc=test_acc, split=plan.split, train_loss=losses, epoch_seconds=epoch_seconds, epochs=cfg.epochs,
        device=str(plan.device),
    )

"""One optimisation step: mixup / CutMix, the forward pass under autocast, the label-smoothed loss (with
the auxiliary head's), backward, gradient clipping and the optimizer step.

:class:`TrainStep` is the part a GPU fast path (CUDA graphs, ``torch.compile``, a fused optimizer)
replaces: anything called as ``step(x, y, lr)`` that returns the step's loss as a detached tensor on the
device fits :func:`nasengine.training.epoch.run_epoch`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nasengine.training.config import TrainConfig


def split_output(out) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(logits, aux_logits or None)`` of a model's output: networks with an auxiliary head return
    ``(logits, aux_logits)`` in training mode, the logits alone otherwise."""
    if isinstance(out, (tuple, list)):
        return out[0], (out[1] if len(out) > 1 else None)
    return out, None


def mix(x: torch.Tensor, y: torch.Tensor, mixup: float, cutmix: float, rng: np.random.Generator,
        generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """Mixup (Zhang et al. 2018) or CutMix (Yun et al. 2019) a batch with a permutation of itself.

    ``mixup`` / ``cutmix`` are the Beta(alpha, alpha) parameters, 0 = off; with both on, ``rng`` picks
    one per batch. Returns ``(x, y_b, lam)``: the loss is ``lam * loss(y) + (1 - lam) * loss(y_b)``;
    ``y_b`` is None when nothing was mixed. ``lam`` of CutMix is the share of the image that was kept."""
    kinds = [k for k, a in (("mixup", mixup), ("cutmix", cutmix)) if a > 0]
    if not kinds:
        return x, None, 1.0
    kind = kinds[rng.integers(len(kinds))] if len(kinds) > 1 else kinds[0]
    alpha = mixup if kind == "mixup" else cutmix
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


def smoothed_loss(logits: torch.Tensor, y: torch.Tensor, y_b: torch.Tensor | None, lam: float,
                  smoothing: float) -> torch.Tensor:
    """Label-smoothed cross entropy in float32, mixed between ``y`` and ``y_b`` by ``lam`` (see :func:`mix`)."""
    logits = logits.float()
    loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
    if y_b is not None and lam < 1.0:
        loss = lam * loss + (1.0 - lam) * F.cross_entropy(logits, y_b, label_smoothing=smoothing)
    return loss


class TrainStep:
    """``step(x, y, lr)``: one SGD step of ``model`` on an (already augmented) batch at learning rate ``lr``;
    returns the loss, detached, on the device.

    Mixing draws from ``rng`` (which kind, lambda, the CutMix box) and ``generator`` (the permutation).
    ``autocast`` runs the forward pass in bf16 (CUDA); ``channels_last`` converts the batch to that
    layout first (the model must be in it too)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                 rng: np.random.Generator, generator: torch.Generator, autocast: bool = False,
                 channels_last: bool = False):
        self.model = model
        self.optimizer = optimizer
        self.cfg = cfg
        self.rng = rng
        self.generator = generator
        self.autocast = autocast
        self.channels_last = channels_last

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> torch.Tensor:
        cfg = self.cfg
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y_b, lam = mix(x, y, cfg.mixup, cfg.cutmix, self.rng, self.generator)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            logits, aux = split_output(self.model(x))
        loss = smoothed_loss(logits, y, y_b, lam, cfg.label_smoothing)
        if aux is not None and cfg.aux_weight > 0:
            loss = loss + cfg.aux_weight * smoothed_loss(aux, y, y_b, lam, cfg.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        return loss.detach()

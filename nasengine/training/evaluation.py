"""Top-1 accuracy of a model on a split of tensors that sit on its device."""

from __future__ import annotations

import torch
import torch.nn as nn

from nasengine.data import batches
from nasengine.training.resize import resize_batch
from nasengine.training.steps import split_output


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024,
             amp: bool = True, channels_last: bool = True, image_size: int | None = None) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)`` (tensors on the model's device) in eval mode; NaN for an
    empty split. ``amp`` (bf16 autocast) and ``channels_last`` apply on CUDA only. ``image_size``: the
    resolution the model reads (batches are resized to it; default: as they are)."""
    if len(y) == 0:
        return float("nan")
    cuda = x.device.type == "cuda"
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    try:
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and amp):
            for xb, yb in batches(x, y, batch_size):
                if image_size is not None:
                    xb = resize_batch(xb, image_size)
                if cuda and channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                logits, _ = split_output(model(xb))
                correct += (logits.argmax(1) == yb).sum()
    finally:
        model.train(was_training)
    return correct.item() / len(y)

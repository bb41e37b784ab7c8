"""Batches resized to the network's resolution: a network built for another ``image_size`` than the
data's (``--resolution``, EfficientNet's compound scaling, digits upsampled to a base resolution)
reads each batch resized on the device, so the dataset stays stored once at its own size."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` (N, C, H, W) resized to ``size`` x ``size`` (bilinear, antialiased when shrinking); ``x``
    itself when it has that size already."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < max(x.shape[-2:])
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)

"""Which device a run uses, and seeding every random number generator a run draws from."""

from __future__ import annotations

import random

import numpy as np
import torch

from nasengine.errors import NasError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` (or empty): CUDA when available, else the CPU; otherwise the named device. NasError for
    a name torch does not know, or CUDA asked for where there is none."""
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

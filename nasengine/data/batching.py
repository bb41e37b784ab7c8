"""Mini-batches as index slices of tensors that already sit on the training device."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False,
            generator: torch.Generator | None = None, drop_last: bool = False
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches as index slices of device tensors (shuffled with ``generator``)."""
    n = len(y)
    if shuffle:
        gdev = generator.device if generator is not None else x.device
        order = torch.randperm(n, generator=generator, device=gdev).to(x.device)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for i in range(0, stop, batch_size):
        if shuffle:
            idx = order[i:i + batch_size]
            yield x[idx], y[idx]
        else:
            yield x[i:i + batch_size], y[i:i + batch_size]

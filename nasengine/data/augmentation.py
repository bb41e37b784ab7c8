"""Batched image augmentation on tensors, on whatever device the batch is on: random crop with padding,
horizontal flip and cutout (DeVries & Taylor 2017), each image drawing its own offsets from one
generator, so no DataLoader workers are needed and a seeded generator gives the same batch every time."""

from __future__ import annotations

import torch


def _rand(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    gdev = generator.device if generator is not None else device
    return torch.rand(n, generator=generator, device=gdev).to(device)


def _randint(high: int, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    gdev = generator.device if generator is not None else device
    return torch.randint(high, (n,), generator=generator, device=gdev).to(device)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad each image by ``padding`` and crop back to its size at a random offset per image.

    On normalised data a zero pad is the dataset mean."""
    if padding <= 0:
        return x
    b, _, h, w = x.shape
    p = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    oy = _randint(2 * padding + 1, b, generator, x.device)
    ox = _randint(2 * padding + 1, b, generator, x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device)[None, :])  # b, h
    cols = (ox[:, None] + torch.arange(w, device=x.device)[None, :])  # b, w
    bi = torch.arange(b, device=x.device)[:, None, None]
    out = p.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # b, h, w, c
    return out.permute(0, 3, 1, 2).contiguous()


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image horizontally with probability 1/2."""
    mask = _rand(x.shape[0], generator, x.device) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square (clipped at the border) at a random centre in each image."""
    if size <= 0:
        return x
    b, _, h, w = x.shape
    cy = _randint(h, b, generator, x.device)
    cx = _randint(w, b, generator, x.device)
    y0 = (cy - size // 2)[:, None]
    x0 = (cx - size // 2)[:, None]
    ar_h = torch.arange(h, device=x.device)[None, :]
    ar_w = torch.arange(w, device=x.device)[None, :]
    in_y = (ar_h >= y0) & (ar_h < y0 + size)  # b, h
    in_x = (ar_w >= x0) & (ar_w < x0 + size)  # b, w
    hole = in_y[:, :, None] & in_x[:, None, :]  # b, h, w
    return x.masked_fill(hole[:, None, :, :], 0.0)


def augment(x: torch.Tensor, crop_padding: int = 0, flip: bool = False, cutout_size: int = 0,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop with padding, horizontal flip and cutout on a batch ``(B, C, H, W)``, on its device.

    Deterministic for a seeded ``generator`` (which may live on the CPU or on the batch's device)."""
    if crop_padding > 0:
        x = random_crop(x, crop_padding, generator)
    if flip:
        x = random_flip(x, generator)
    if cutout_size > 0:
        x = cutout(x, cutout_size, generator)
    return x

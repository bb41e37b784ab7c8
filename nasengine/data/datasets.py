"""Datasets as tensors with fixed splits: the :class:`Dataset` container and loading one by name.

Every dataset is a :class:`Dataset` holding normalised ``float32`` images ``(N, C, H, W)`` and ``int64``
labels for three fixed splits (train / validation / test). The splits never depend on the search seed:
``digits`` uses a stratified 60/20/20 split with a fixed seed, CIFAR carves the validation set from the
end of the official training set. Small datasets are moved to the accelerator whole
(:meth:`Dataset.to`); batches are index slices of those tensors (:func:`nasengine.data.batches`) and
augmentation (:func:`nasengine.data.augment`) runs on whatever device the batch is on, so no DataLoader
workers are needed.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from typing import TextIO

import numpy as np
import torch

from nasengine.data.cifar import CIFAR, ensure_cifar, read_cifar
from nasengine.data.download import data_root
from nasengine.errors import NasError, did_you_mean

DATASETS = ("digits", "cifar10", "cifar100", "synthetic")

DIGITS_SPLIT_SEED = 0
CIFAR_VAL_SIZE = 5000
SYNTHETIC_VAL_SIZE = 256


@dataclass
class Dataset:
    """Normalised image tensors for fixed train / validation / test splits.

    ``crop_padding``, ``flip`` and ``cutout`` are the dataset's default augmentation (see
    :func:`nasengine.data.augment`); ``mean`` / ``std`` are the per-channel statistics the raw images were
    normalised with.
    """

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...] = ()
    crop_padding: int = 0
    flip: bool = False
    cutout: int = 0

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return (self.in_channels, self.image_size, self.image_size)

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of ``"train"``, ``"val"`` or ``"test"``."""
        if name not in ("train", "val", "test"):
            raise NasError(f"unknown split {name!r}; expected train, val or test")
        return getattr(self, f"{name}_x"), getattr(self, f"{name}_y")

    def to(self, device: torch.device | str) -> Dataset:
        """A copy with every tensor on ``device`` (self when already there)."""
        device = torch.device(device)
        if self.train_x.device == device:
            return self
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return dataclasses.replace(self, **moved)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}


# --------------------------------------------------------------------------------------------- by name


def _key(name: str) -> str:
    return str(name).lower().replace("-", "").replace("_", "")


def _unknown(name: str) -> NasError:
    return NasError(f"unknown dataset {name!r}{did_you_mean(str(name), DATASETS)}; choose one of {', '.join(DATASETS)}")


def load_dataset(name: str = "digits", data_dir: str | os.PathLike | None = None, download: bool = False,
                 **kw) -> Dataset:
    """Load dataset ``name`` (``digits``, ``cifar10``, ``cifar100``, ``synthetic``) on the CPU.

    ``data_dir`` is where CIFAR files live (the folder holding ``cifar-10-batches-py`` or that folder
    itself); it defaults to ``$NASENGINE_DATA_DIR`` or ``~/.cache/nasengine/data``. ``download=True``
    fetches a missing CIFAR archive from the official URL. Extra keywords go to the loader
    (``val_size`` for CIFAR; ``num_classes``, ``in_channels``, ``image_size``, ``n_train``, ``n_val``,
    ``n_test``, ``seed`` for synthetic).
    """
    key = _key(name)
    if key == "digits":
        return _load_digits(**kw)
    if key in CIFAR:
        return _load_cifar(key, data_dir, download, **kw)
    if key == "synthetic":
        return _load_synthetic(**kw)
    raise _unknown(name)


def dataset_shape(name: str, **kw) -> dict[str, int]:
    """``num_classes`` / ``in_channels`` / ``image_size`` of dataset ``name`` without reading any file
    (``kw``: the synthetic dataset's options)."""
    key = _key(name)
    if key == "digits":
        return {"num_classes": 10, "in_channels": 1, "image_size": 8}
    if key in CIFAR:
        return {"num_classes": CIFAR[key]["num_classes"], "in_channels": 3, "image_size": 32}
    if key == "synthetic":
        d = _load_synthetic(**{**kw, "n_train": 2, "n_val": 0, "n_test": 0})
        return {"num_classes": d.num_classes, "in_channels": d.in_channels, "image_size": d.image_size}
    raise _unknown(name)


def validation_size(name: str) -> int:
    """How many images the validation split of dataset ``name`` holds (with its default options), without
    reading CIFAR's files: what a validation accuracy's noise depends on."""
    key = _key(name)
    if key == "digits":
        from sklearn.datasets import load_digits

        return len(digits_split(load_digits().target)[1])
    if key in CIFAR:
        return CIFAR_VAL_SIZE
    if key == "synthetic":
        return SYNTHETIC_VAL_SIZE
    raise _unknown(name)


def prepare_dataset(name: str, data_dir: str | os.PathLike | None = None, download: bool = False,
                    stream: TextIO | None = sys.stderr, **kw) -> dict[str, int]:
    """Make sure dataset ``name`` can be loaded, downloading CIFAR when asked (progress on ``stream``);
    returns :func:`dataset_shape`. NasError when it is unknown, missing, or its files are corrupt or
    truncated: CIFAR's batch files are read once here, so a bad file stops a search before it starts
    rather than failing every trial."""
    shape = dataset_shape(name, **kw)
    key = _key(name)
    if key in CIFAR:
        read_cifar(key, ensure_cifar(key, data_root(data_dir), download, stream))
    return shape


# ------------------------------------------------------------------------------------------- loaders


def _normalise(train_x: torch.Tensor, *others: torch.Tensor):
    """Standardise every split with the per-channel mean/std of ``train_x`` (float tensors N,C,H,W)."""
    mean = train_x.mean(dim=(0, 2, 3), dtype=torch.float64)
    std = train_x.std(dim=(0, 2, 3)).double().clamp_min(1e-6)
    m = mean.float().view(1, -1, 1, 1)
    s = std.float().view(1, -1, 1, 1)
    out = [((t - m) / s).contiguous() for t in (train_x, *others)]
    return out, tuple(float(v) for v in mean), tuple(float(v) for v in std)


def digits_split(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of the fixed, stratified 60/20/20 train/val/test split of ``load_digits`` (labels
    ``y``); independent of any search seed."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    train_idx, rest = train_test_split(idx, test_size=0.4, stratify=y, random_state=DIGITS_SPLIT_SEED)
    val_idx, test_idx = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=DIGITS_SPLIT_SEED)
    return train_idx, val_idx, test_idx


def _load_digits(**kw) -> Dataset:
    if kw:
        raise NasError(f"digits takes no options (got {', '.join(sorted(kw))})")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.asarray(bunch.images, dtype=np.float32) / 16.0  # (1797, 8, 8) in [0, 1]
    y = np.asarray(bunch.target, dtype=np.int64)
    train_idx, val_idx, test_idx = digits_split(y)
    xt = torch.from_numpy(x).unsqueeze(1)
    yt = torch.from_numpy(y)
    (tx, vx, sx), mean, std = _normalise(xt[train_idx], xt[val_idx], xt[test_idx])
    return Dataset(
        name="digits", num_classes=10, in_channels=1, image_size=8,
        train_x=tx, train_y=yt[train_idx].clone(), val_x=vx, val_y=yt[val_idx].clone(),
        test_x=sx, test_y=yt[test_idx].clone(), mean=mean, std=std,
        classes=tuple(str(c) for c in range(10)),
        crop_padding=1, flip=False, cutout=0,  # digits are not flip-invariant
    )


def _load_synthetic(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, n_train: int = 1024,
                    n_val: int = SYNTHETIC_VAL_SIZE, n_test: int = 256, seed: int = 0) -> Dataset:
    """Random images of any shape (for benchmarks): Gaussian noise plus a per-class pattern and
    per-class channel offsets, so it is learnable. Deterministic for a given ``seed``."""
    if min(num_classes, in_channels, image_size, n_train) < 1 or min(n_val, n_test) < 0:
        raise NasError("synthetic dataset sizes must be positive")
    g = torch.Generator().manual_seed(seed)
    protos = 0.5 * torch.randn(num_classes, in_channels, image_size, image_size, generator=g)
    protos += torch.randn(num_classes, in_channels, 1, 1, generator=g)

    def make(n):
        y = torch.randint(num_classes, (n,), generator=g)
        x = torch.randn(n, in_channels, image_size, image_size, generator=g) + protos[y]
        return x, y

    (tx, ty), (vx, vy), (sx, sy) = make(n_train), make(n_val), make(n_test)
    (tx, vx, sx), mean, std = _normalise(tx, vx, sx)
    return Dataset(
        name="synthetic", num_classes=num_classes, in_channels=in_channels, image_size=image_size,
        train_x=tx, train_y=ty, val_x=vx, val_y=vy, test_x=sx, test_y=sy, mean=mean, std=std,
        classes=tuple(str(c) for c in range(num_classes)),
        crop_padding=max(1, image_size // 8), flip=True, cutout=0,
    )


def _load_cifar(key: str, data_dir: str | os.PathLike | None, download: bool,
                val_size: int = CIFAR_VAL_SIZE) -> Dataset:
    """CIFAR-10/100 with a fixed split: the last ``val_size`` official training images are the
    validation set."""
    spec = CIFAR[key]
    arrays = read_cifar(key, ensure_cifar(key, data_root(data_dir), download))
    if not 0 <= val_size < len(arrays.train_y):
        raise NasError(f"val_size must be in [0, {len(arrays.train_y)}) for {spec['title']}, got {val_size}")
    n_tr = len(arrays.train_y) - val_size
    xt = torch.from_numpy(arrays.train_x).float().div_(255.0)
    xs = torch.from_numpy(arrays.test_x).float().div_(255.0)
    (tx, vx, sx), mean, std = _normalise(xt[:n_tr], xt[n_tr:], xs)
    yt = torch.from_numpy(arrays.train_y)
    return Dataset(
        name=key, num_classes=spec["num_classes"], in_channels=3, image_size=32,
        train_x=tx, train_y=yt[:n_tr].clone(), val_x=vx, val_y=yt[n_tr:].clone(),
        test_x=sx, test_y=torch.from_numpy(arrays.test_y), mean=mean, std=std,
        classes=arrays.classes, crop_padding=4, flip=True, cutout=0,
    )

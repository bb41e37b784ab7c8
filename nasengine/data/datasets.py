"""Datasets as tensors with fixed splits, and batched augmentation on tensors.

Every dataset is a :class:`Dataset` holding normalised ``float32`` images ``(N, C, H, W)`` and ``int64``
labels for three fixed splits (train / validation / test). The splits never depend on the search seed:
``digits`` uses a stratified 60/20/20 split with a fixed seed, CIFAR carves the validation set from the
end of the official training set. Small datasets are moved to the accelerator whole
(:meth:`Dataset.to`); batches are index slices of those tensors (:func:`batches`) and augmentation
(:func:`augment`) runs on whatever device the batch is on, so no DataLoader workers are needed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, TextIO

import numpy as np
import torch

from nasengine.errors import NasError
from nasengine.progress import Progress

DATASETS = ("digits", "cifar10", "cifar100", "synthetic")

DIGITS_SPLIT_SEED = 0
CIFAR_VAL_SIZE = 5000

_CIFAR = {
    "cifar10": {
        "title": "CIFAR-10",
        "folder": "cifar-10-batches-py",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "md5": "c58f30108f718f92721af3b95e74349a",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "label_key": b"labels",
        "names_key": b"label_names",
        "num_classes": 10,
    },
    "cifar100": {
        "title": "CIFAR-100",
        "folder": "cifar-100-python",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "md5": "eb9058c3a382ffc7106e4002c42a8d85",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "label_key": b"fine_labels",
        "names_key": b"fine_label_names",
        "num_classes": 100,
    },
}


@dataclass
class Dataset:
    """Normalised image tensors for fixed train / validation / test splits.

    ``crop_padding``, ``flip`` and ``cutout`` are the dataset's default augmentation (see :func:`augment`);
    ``mean`` / ``std`` are the per-channel statistics the raw images were normalised with.
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

    @property
    def device(self) -> torch.device:
        return self.train_x.device

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


# --------------------------------------------------------------------------------------------- loading


def load_dataset(name: str = "digits", data_dir: str | os.PathLike | None = None, download: bool = False,
                 **kw) -> Dataset:
    """Load dataset ``name`` (``digits``, ``cifar10``, ``cifar100``, ``synthetic``) on the CPU.

    ``data_dir`` is where CIFAR files live (the folder holding ``cifar-10-batches-py`` or that folder
    itself); it defaults to ``$NASENGINE_DATA_DIR`` or ``~/.cache/nasengine/data``. ``download=True``
    fetches a missing CIFAR archive from the official URL. Extra keywords go to the loader
    (``val_size`` for CIFAR; ``num_classes``, ``in_channels``, ``image_size``, ``n_train``, ``n_val``,
    ``n_test``, ``seed`` for synthetic).
    """
    key = str(name).lower().replace("-", "").replace("_", "")
    if key == "digits":
        return _load_digits(**kw)
    if key in _CIFAR:
        return _load_cifar(key, data_dir, download, **kw)
    if key == "synthetic":
        return synthetic(**kw)
    raise NasError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def dataset_shape(name: str, **kw) -> dict[str, int]:
    """``num_classes`` / ``in_channels`` / ``image_size`` of dataset ``name`` without reading any file
    (``kw``: the synthetic dataset's options)."""
    key = str(name).lower().replace("-", "").replace("_", "")
    if key == "digits":
        return {"num_classes": 10, "in_channels": 1, "image_size": 8}
    if key in _CIFAR:
        return {"num_classes": _CIFAR[key]["num_classes"], "in_channels": 3, "image_size": 32}
    if key == "synthetic":
        d = synthetic(**{**kw, "n_train": 2, "n_val": 0, "n_test": 0})
        return {"num_classes": d.num_classes, "in_channels": d.in_channels, "image_size": d.image_size}
    raise NasError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def prepare_dataset(name: str, data_dir: str | os.PathLike | None = None, download: bool = False,
                    stream: TextIO | None = sys.stderr, **kw) -> dict[str, int]:
    """Make sure dataset ``name`` can be loaded, downloading CIFAR when asked (progress on ``stream``),
    without reading it; returns :func:`dataset_shape`. NasError when it is unknown or missing."""
    shape = dataset_shape(name, **kw)
    key = str(name).lower().replace("-", "").replace("_", "")
    if key in _CIFAR:
        spec = _CIFAR[key]
        root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        if _cifar_folder(spec, root) is None:
            if not download:
                raise NasError(f"{spec['title']} batch files not found in {root}; pass --download or place "
                               f"{spec['folder']} there (from https://www.cs.toronto.edu/~kriz/cifar.html)")
            download_cifar(key, root, stream)
    return shape


def default_data_dir() -> Path:
    env = os.environ.get("NASENGINE_DATA_DIR")
    return Path(env).expanduser() if env else Path("~/.cache/nasengine/data").expanduser()


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


def synthetic(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, n_train: int = 1024,
              n_val: int = 256, n_test: int = 256, seed: int = 0) -> Dataset:
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


# ---------------------------------------------------------------------------------------------- CIFAR


def _cifar_folder(spec: dict, data_dir: Path) -> Path | None:
    """The folder holding the batch files: ``data_dir/<folder>`` or ``data_dir`` itself."""
    for cand in (data_dir / spec["folder"], data_dir):
        if all((cand / f).is_file() for f in spec["train"] + spec["test"]):
            return cand
    return None


def _read_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        data = np.asarray(d[b"data"], dtype=np.uint8)
        labels = np.asarray(d[label_key], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, KeyError, EOFError, ValueError, TypeError) as e:
        raise NasError(f"cannot read CIFAR batch file {path}: {type(e).__name__}: {e}") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise NasError(f"CIFAR batch file {path} has data of shape {data.shape} and {len(labels)} labels; "
                       "expected N x 3072 and N labels")
    return data.reshape(-1, 3, 32, 32), labels


def _read_names(path: Path, key: bytes) -> tuple[str, ...]:
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in d[key])
    except (OSError, pickle.UnpicklingError, KeyError, EOFError, TypeError, AttributeError):
        return ()


def _load_cifar(key: str, data_dir, download: bool, val_size: int = CIFAR_VAL_SIZE) -> Dataset:
    spec = _CIFAR[key]
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    prepare_dataset(key, root, download)
    folder = _cifar_folder(spec, root)
    parts = [_read_batch(folder / f, spec["label_key"]) for f in spec["train"]]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    test_x, test_y = _read_batch(folder / spec["test"][0], spec["label_key"])
    if not 0 <= val_size < len(train_y):
        raise NasError(f"val_size must be in [0, {len(train_y)}) for {spec['title']}, got {val_size}")
    n_tr = len(train_y) - val_size
    all_y = np.concatenate([train_y, test_y])
    bad = all_y[(all_y < 0) | (all_y >= spec["num_classes"])]
    if len(bad):
        raise NasError(f"{spec['title']} labels out of range in {folder}: {bad[:3].tolist()}")
    xt = torch.from_numpy(train_x).float().div_(255.0)
    xs = torch.from_numpy(test_x).float().div_(255.0)
    # Fixed split: the last val_size training images are the validation set.
    (tx, vx, sx), mean, std = _normalise(xt[:n_tr], xt[n_tr:], xs)
    yt = torch.from_numpy(train_y)
    return Dataset(
        name=key, num_classes=spec["num_classes"], in_channels=3, image_size=32,
        train_x=tx, train_y=yt[:n_tr].clone(), val_x=vx, val_y=yt[n_tr:].clone(),
        test_x=sx, test_y=torch.from_numpy(test_y), mean=mean, std=std,
        classes=_read_names(folder / spec["meta"], spec["names_key"]),
        crop_padding=4, flip=True, cutout=0,
    )


def download_cifar(name: str, data_dir: str | os.PathLike | None = None, stream: TextIO | None = sys.stderr) -> Path:
    """Download and unpack the official CIFAR archive into ``data_dir``; returns the batch folder.

    Progress goes to ``stream`` (None: silent)."""
    spec = _CIFAR[name]
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    root.mkdir(parents=True, exist_ok=True)
    archive = root / spec["url"].rsplit("/", 1)[1]
    if not archive.is_file() or _md5(archive) != spec["md5"]:
        fetch(spec["url"], archive, spec["md5"], spec["title"], stream)
    unpack(archive, root, spec["title"], stream)
    return root / spec["folder"]


def fetch(url: str, path: Path, md5: str, title: str, stream: TextIO | None = sys.stderr) -> None:
    """Download ``url`` to ``path`` (through ``path.part``), showing progress; NasError on a network error
    or a wrong MD5 checksum."""
    progress = Progress(None, f"downloading {title}", stream=stream, enabled=stream is not None, unit="bytes",
                        scale=True)

    def hook(blocks: int, block_size: int, total: int) -> None:
        progress.total = total if total > 0 else None
        progress.set(min(blocks * block_size, total) if total > 0 else blocks * block_size)

    tmp = path.with_name(path.name + ".part")
    try:
        urllib.request.urlretrieve(url, tmp, reporthook=hook)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise NasError(f"cannot download {url}: {e}") from None
    finally:
        progress.close()
    if _md5(tmp) != md5:
        tmp.unlink(missing_ok=True)
        raise NasError(f"the downloaded {title} archive has the wrong checksum; try again")
    tmp.replace(path)


def unpack(archive: Path, root: Path, title: str, stream: TextIO | None = sys.stderr) -> None:
    """Extract a ``.tar.gz`` into ``root``, one progress line per member."""
    with tarfile.open(archive, "r:gz") as tar:
        members = tar.getmembers()
        with Progress(len(members), f"unpacking {title}", stream=stream, enabled=stream is not None,
                      unit="files") as progress:
            for member in members:
                tar.extract(member, root, filter="data")
                progress.update()


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------- batching


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


# --------------------------------------------------------------------------------------- augmentation


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

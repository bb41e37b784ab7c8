"""The real CIFAR-10 / CIFAR-100 files: the official python-pickle batches, found, downloaded and read.

The archives (https://www.cs.toronto.edu/~kriz/cifar.html) unpack to a folder of pickled dicts with
byte-string keys: ``b"data"`` is ``N x 3072`` uint8 rows (the R, G and B planes of a 32x32 image, row
major) and the labels sit under ``b"labels"`` (CIFAR-10) or ``b"fine_labels"`` (CIFAR-100). This module
returns the raw arrays; :func:`nasengine.data.load_dataset` splits and normalises them.
"""

from __future__ import annotations

import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from nasengine.data.download import fetch, md5sum, unpack
from nasengine.errors import NasError

CIFAR: dict[str, dict] = {
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
class CifarArrays:
    """The official splits as read: uint8 images ``(N, 3, 32, 32)``, int64 labels, the class names."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]


def _cifar_folder(name: str, root: Path) -> Path | None:
    """The folder holding the batch files: ``root/<folder>`` or ``root`` itself; None when missing."""
    spec = CIFAR[name]
    for cand in (root / spec["folder"], root):
        if all((cand / f).is_file() for f in spec["train"] + spec["test"]):
            return cand
    return None


def ensure_cifar(name: str, root: Path, download: bool, stream: TextIO | None = sys.stderr) -> Path:
    """The batch folder of ``name`` under ``root``, downloaded first when missing and ``download``;
    NasError when missing and not ``download``."""
    folder = _cifar_folder(name, root)
    if folder is not None:
        return folder
    spec = CIFAR[name]
    if not download:
        raise NasError(f"{spec['title']} batch files not found in {root}; pass --download or place "
                       f"{spec['folder']} there (from https://www.cs.toronto.edu/~kriz/cifar.html)")
    root.mkdir(parents=True, exist_ok=True)
    archive = root / spec["url"].rsplit("/", 1)[1]
    if not archive.is_file() or md5sum(archive) != spec["md5"]:
        fetch(spec["url"], archive, spec["md5"], spec["title"], stream)
    unpack(archive, root, spec["title"], stream)
    return root / spec["folder"]


def read_cifar(name: str, folder: Path) -> CifarArrays:
    """Read every batch file of ``name`` in ``folder``; NasError for an unreadable file or a bad label."""
    spec = CIFAR[name]
    parts = [_read_batch(folder / f, spec["label_key"]) for f in spec["train"]]
    test_x, test_y = _read_batch(folder / spec["test"][0], spec["label_key"])
    train_y = np.concatenate([p[1] for p in parts])
    all_y = np.concatenate([train_y, test_y])
    bad = all_y[(all_y < 0) | (all_y >= spec["num_classes"])]
    if len(bad):
        raise NasError(f"{spec['title']} labels out of range in {folder}: {bad[:3].tolist()}")
    return CifarArrays(train_x=np.concatenate([p[0] for p in parts]), train_y=train_y, test_x=test_x,
                       test_y=test_y, classes=_read_names(folder / spec["meta"], spec["names_key"]))


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
    """The class names in the meta file; () when it is missing or unreadable (the images still load)."""
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in d[key])
    except (OSError, pickle.UnpicklingError, KeyError, EOFError, TypeError, AttributeError):
        return ()

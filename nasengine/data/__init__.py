"""Datasets as tensors with fixed splits (``datasets``), the real CIFAR-10/100 files (``cifar``,
``download``), mini-batches (``batching``) and augmentation (``augmentation``) on the training device."""

from nasengine.data.augmentation import augment, cutout, random_crop, random_flip
from nasengine.data.batching import batches
from nasengine.data.datasets import (
    DATASETS,
    Dataset,
    dataset_shape,
    digits_split,
    load_dataset,
    prepare_dataset,
    validation_size,
)
from nasengine.data.download import fetch, unpack

__all__ = [
    "DATASETS", "Dataset", "augment", "batches", "cutout", "dataset_shape", "digits_split", "fetch", "load_dataset",
    "prepare_dataset", "random_crop", "random_flip", "unpack", "validation_size",
]

"""How a candidate is scored: picklable callables ``evaluator(genotype_text, seed, report) -> dict``.

The returned dict has ``value`` (final validation accuracy, a fraction in [0, 1]), ``curve`` (accuracy
after each epoch), ``params``, ``flops`` (multiply-adds of one input) and ``train_seconds``; more keys are
allowed. ``report(epoch, accuracy)`` is called after each epoch, epochs counted from 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from nasengine.data import Dataset, load_dataset
from nasengine.errors import NasError, check_keys
from nasengine.training import TrainConfig, resolve_device, seed_everything, train, train_defaults

Report = Callable[[int, float], None]

# Per-process cache: a Ray worker loads (and moves to its device) each dataset once.
_DATASETS: dict[tuple, Dataset] = {}


def cached_dataset(name: str, data_dir: str | None = None, download: bool = False, device: str = "cpu",
                   **options) -> Dataset:
    """``load_dataset`` memoised per process and device."""
    key = (name, None if data_dir is None else os.fspath(data_dir), tuple(sorted(options.items())))
    cpu_key = key + ("cpu",)
    if cpu_key not in _DATASETS:
        _DATASETS[cpu_key] = load_dataset(name, data_dir=data_dir, download=download, **options)
    device_key = key + (str(device),)
    if device_key not in _DATASETS:
        _DATASETS[device_key] = _DATASETS[cpu_key].to(device)
    return _DATASETS[device_key]


class TrainEvaluator:
    """Train each candidate from scratch and score it by its final validation accuracy.

    Holds only plain values so it pickles to Ray workers. ``network`` overrides the space's default macro
    settings (``space.network``, including ``skeleton``); ``train`` overrides :class:`TrainConfig`
    fields on top of the dataset's defaults (:func:`nasengine.training.train_defaults`).
    ``final=True`` is the final retraining: train on train + validation, ``value`` = test accuracy.
    """

    def __init__(self, space: str = "nasnet", dataset: str = "digits", data_dir: str | None = None,
                 epochs: int = 10, network: dict[str, Any] | None = None, train: dict[str, Any] | None = None,
                 dataset_options: dict[str, Any] | None = None, download: bool = False, final: bool = False,
                 device: str = "auto", threads: int | None = None):
        self.space = str(space)
        self.dataset = str(dataset)
        self.data_dir = None if data_dir is None else os.fspath(data_dir)
        self.epochs = int(epochs)
        self.network = dict(network or {})
        self.train = dict(train or {})
        self.dataset_options = dict(dataset_options or {})
        self.download = bool(download)
        self.final = bool(final)
        self.device = str(device)
        self.threads = threads
        check_keys(self.train, TrainConfig.__dataclass_fields__, "training setting")

    def __repr__(self) -> str:
        return (f"TrainEvaluator(space={self.space!r}, dataset={self.dataset!r}, epochs={self.epochs}, "
                f"network={self.network!r}, train={self.train!r}, final={self.final})")

    def config(self, seed: int = 0) -> TrainConfig:
        """The TrainConfig a candidate trains with."""
        settings = {**train_defaults(self.dataset), **self.train}
        settings.update(epochs=self.epochs, seed=int(seed), final=self.final, device=self.device)
        if self.threads is not None:
            settings["threads"] = self.threads
        cfg = TrainConfig(**settings)
        cfg.check()
        return cfg

    def macro(self, space=None) -> tuple[str, dict[str, Any]]:
        """``(skeleton, macro settings)`` the network is built with."""
        if space is None:
            from nasengine.spaces.cell import load_space
            space = load_space(self.space)
        macro = {**dict(space.network), **self.network}
        skeleton = macro.pop("skeleton", None)
        if skeleton is None:
            raise NasError(f"space {self.space} names no network skeleton; pass network={{'skeleton': ...}}")
        return skeleton, macro

    def build(self, genotype_text: str, dataset: Dataset):
        """Parse ``genotype_text`` in the space and build its network for ``dataset`` (at the network
        setting ``image_size`` when given: the trainer resizes the inputs to it)."""
        from nasengine.models.network import build_network
        from nasengine.spaces.cell import load_space

        space = load_space(self.space)
        g = space.parse(genotype_text)
        skeleton, macro = self.macro(space)
        image_size = macro.pop("image_size", dataset.image_size)
        return build_network(g.to_data(), skeleton, dataset.num_classes, dataset.in_channels, image_size, **macro)

    def load(self) -> Dataset:
        device = resolve_device(self.device)
        return cached_dataset(self.dataset, self.data_dir, self.download, str(device), **self.dataset_options)

    def __call__(self, genotype_text: str, seed: int, report: Report | None = None) -> dict[str, Any]:
        cfg = self.config(seed)
        if cfg.threads:
            import torch
            torch.set_num_threads(cfg.threads)
        data = self.load()
        seed_everything(cfg.seed)  # weight initialisation happens in the builder
        model = self.build(genotype_text, data)
        result = train(model, data, cfg, report)
        import base64
        import io

        import torch

        weights = io.BytesIO()  # the trained state_dict, kept as an artifact of the trial (nasengine export --weights)
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)
        return {
            "value": result.value,
            "curve": list(result.curve),
            "params": int(result.params),
            "flops": int(result.flops),
            "train_seconds": float(result.train_seconds),
            "val_acc": result.val_acc,
            "test_acc": result.test_acc,
            "split": result.split,
            "train_loss": list(result.train_loss),
            "epochs": result.epochs,
            "device": result.device,
            "weights_pt": base64.b64encode(weights.getvalue()).decode("ascii"),
        }


"""A scaling study's configuration (``nasengine scale``): what ``studies/scale-*.yaml`` files and the
command line set, checked once with one-line errors, and which of it may change on resume."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from nasengine.engine.config import config_differences, plain, read_config_file
from nasengine.errors import NasError, check_keys
from nasengine.storage import DEFAULT_STORAGE


@dataclass
class ScaleConfig:
    """Everything that defines a scaling study. ``studies/scale-*.yaml`` files hold these keys."""

    base: str | None = None  # a built-in name or a block genotype text
    base_study: str | None = None  # ... or trial ``base_trial`` of this study
    base_trial: int | None = None
    space: str | None = None  # the space the base is read in (default: the one it resolves to)
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    preset: str | None = None
    network: dict[str, Any] = field(default_factory=dict)  # the base network's settings over the preset's
    resolution: int | None = None  # the base resolution (default: the preset's / dataset's image size)
    train: dict[str, Any] = field(default_factory=dict)
    epochs: int = 2
    seed: int = 0
    grid_step: float = 0.05
    tolerance: float = 0.1
    phis: int = 3  # compound scaling for phi = 1..phis
    baselines: bool = False  # the single-dimension baselines (depth, width, resolution alone) too
    latency: bool = False  # measure each network's CPU latency (nasengine.profiler)
    workers: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    ray_address: str | None = None
    executor: str = "ray"
    storage: str = DEFAULT_STORAGE
    study_name: str | None = None
    max_failures: int = 10
    report_dir: str = "."

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Keys that may differ when a study is resumed: how much (phis, baselines), where and with what it runs.
RUNTIME_KEYS = frozenset({"phis", "baselines", "latency", "workers", "cpus_per_trial", "gpus_per_trial",
                          "ray_address", "executor", "storage", "study_name", "data_dir", "download",
                          "max_failures", "report_dir"})

_NUMBER = (int, float)
_TYPES: dict[str, tuple[type, ...]] = {
    "base": (str,), "base_study": (str,), "base_trial": (int,), "space": (str,), "dataset": (str,),
    "data_dir": (str,), "download": (bool,), "preset": (str,), "network": (dict,), "resolution": (int,),
    "train": (dict,), "epochs": (int,), "seed": (int,), "grid_step": _NUMBER, "tolerance": _NUMBER,
    "phis": (int,), "baselines": (bool,), "latency": (bool,), "workers": (int,), "cpus_per_trial": _NUMBER,
    "gpus_per_trial": _NUMBER, "ray_address": (str,), "executor": (str,), "storage": (str,),
    "study_name": (str,), "max_failures": (int,), "report_dir": (str,),
}
_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a text", dict: "a mapping"}
_OPTIONAL = {"base", "base_study", "base_trial", "space", "data_dir", "preset", "resolution", "ray_address",
             "study_name"}


def scale_config(values: dict[str, Any], source: str = "configuration",
                 base: ScaleConfig | None = None) -> ScaleConfig:
    """``base`` (or the defaults) updated with ``values``; NasError for unknown keys, wrong types or
    values out of range, naming ``source``."""
    if not isinstance(values, dict):
        raise NasError(f"{source}: expected a mapping of settings")
    check_keys(values, _TYPES, "setting", source)
    cfg = dataclasses.replace(base) if base is not None else ScaleConfig()
    for key, value in values.items():
        if value is None and key in _OPTIONAL:
            setattr(cfg, key, None)
            continue
        types = _TYPES[key]
        if isinstance(value, bool) != (bool in types) or not isinstance(value, types):
            want = " or ".join(dict.fromkeys(_WORDS[t] for t in types))
            raise NasError(f"{source}: {key} must be {want}, got {value!r}")
        setattr(cfg, key, float(value) if types is _NUMBER else dict(value) if types == (dict,) else value)
    for key in ("epochs", "phis", "workers", "max_failures"):
        if getattr(cfg, key) < 1:
            raise NasError(f"{source}: {key} must be a positive integer, got {getattr(cfg, key)}")
    if cfg.resolution is not None and cfg.resolution < 1:
        raise NasError(f"{source}: resolution must be a positive integer, got {cfg.resolution}")
    if not cfg.grid_step > 0 or not cfg.tolerance >= 0:
        raise NasError(f"{source}: grid_step must be positive and tolerance not negative "
                       f"(got {cfg.grid_step:g}, {cfg.tolerance:g})")
    return cfg


def load_scale_file(path: str) -> dict[str, Any]:
    """The settings of a scaling configuration file (``studies/NAME.yaml``, a NAME, or a path), checked."""
    values, source = read_config_file(path, "scaling", "scale-*.yaml")
    scale_config(values, source)
    return values


def scale_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key stored (now current)`` for each setting that defines the study and differs."""
    keep = set(stored) & set(current) - RUNTIME_KEYS
    return config_differences({k: stored[k] for k in keep}, {k: plain(current[k]) for k in keep})

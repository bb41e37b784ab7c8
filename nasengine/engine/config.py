"""A search's configuration: what ``studies/*.yaml`` files and the command line set, checked once,
and which of it may change when a study is resumed."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasengine.engine.objectives import parse_objectives
from nasengine.errors import NasError, check_keys, first_line
from nasengine.resources import resource_dir
from nasengine.storage import DEFAULT_STORAGE

# Defaults for a real small search on digits (studies/quick.yaml holds the same): one candidate is about 15 s
# of one core for 4 epochs of the space's N=1, F=16 network (3 epochs leave random cells near 0.9), two at
# a time; measured 1m50s-4m15s on 2 cores of which another process kept one busy. Best accuracy ~0.97.
DEFAULT_TRIALS = 16
DEFAULT_EPOCHS = 4
DEFAULT_WORKERS = 2
STUDIES_DIR = resource_dir("studies")


@dataclass
class SearchConfig:
    """Everything that defines a search. ``studies/*.yaml`` files hold these keys."""

    space: str = "nasnet"
    algo: str = "evolution"
    algo_settings: dict[str, Any] = field(default_factory=dict)
    dataset: str = "digits"
    data_dir: str | None = None
    trials: int = DEFAULT_TRIALS
    epochs: int = DEFAULT_EPOCHS
    retrain_epochs: int = 0  # weight sharing: train the best derived genotype from scratch for this many epochs
    seed: int = 0
    init: list[str] = field(default_factory=list)
    preset: str | None = None
    network: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    workers: int = DEFAULT_WORKERS
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    ray_address: str | None = None
    executor: str = "ray"
    storage: str = DEFAULT_STORAGE
    study_name: str | None = None
    max_failures: int = 10
    count_failures: bool = False  # failed trials spend the budget too
    max_duplicates: int = 200
    download: bool = False
    diagrams: bool = True
    artifact_dir: str | None = None
    results_dir: str | None = None  # Ray Tune's per-trial output, kept there (None: a temporary folder, removed)
    memory_cap: float | None = None  # GB a trial may allocate on top of its worker's own memory (Ray executor)
    keep_weights: int | None = None  # keep the trained weights of the best K trials only (None: of every trial)
    # what the search optimises (engine/objectives.py): one objective (accuracy, or MnasNet's reward with
    # a target latency), or 2-3 objectives (accuracy first) for a multi-objective study; latency settings
    objective: str = "accuracy"
    target_latency_ms: float | None = None
    objectives: list[str] = field(default_factory=list)
    latency: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def default_study_name(self) -> str:
        return f"{Path(self.space).stem}-{self.algo}-{self.dataset}"


# Keys that may differ when a study is resumed: how much, where and with what it runs.
RUNTIME_KEYS = frozenset({"trials", "workers", "cpus_per_trial", "gpus_per_trial", "ray_address", "executor",
                          "storage", "study_name", "data_dir", "max_failures", "count_failures",
                          "max_duplicates", "download", "diagrams", "artifact_dir", "results_dir", "memory_cap",
                          "keep_weights"})


_TYPES: dict[str, tuple[type, ...]] = {
    "space": (str,), "algo": (str,), "algo_settings": (dict,), "dataset": (str,), "data_dir": (str,),
    "trials": (int,), "epochs": (int,), "retrain_epochs": (int,), "seed": (int,), "init": (list, str), "preset": (str,),
    "network": (dict,), "train": (dict,), "workers": (int,), "cpus_per_trial": (int, float),
    "gpus_per_trial": (int, float), "ray_address": (str,), "executor": (str,), "storage": (str,),
    "study_name": (str,), "max_failures": (int,), "count_failures": (bool,), "max_duplicates": (int,),
    "download": (bool,), "diagrams": (bool,), "artifact_dir": (str,), "objective": (str,),
    "target_latency_ms": (int, float), "objectives": (list, str), "latency": (dict,), "results_dir": (str,),
    "memory_cap": (int, float), "keep_weights": (int,),
}


def config_from_mapping(values: dict[str, Any], source: str = "configuration",
                        base: SearchConfig | None = None) -> SearchConfig:
    """``base`` (or the defaults) updated with ``values``; NasError for unknown keys or wrong types."""
    if not isinstance(values, dict):
        raise NasError(f"{source}: expected a mapping of settings")
    check_keys(values, _TYPES, "setting", source)
    cfg = dataclasses.replace(base) if base is not None else SearchConfig()
    for key, value in values.items():
        if value is None and key in ("data_dir", "preset", "ray_address", "study_name", "artifact_dir",
                                     "target_latency_ms", "results_dir", "memory_cap", "keep_weights"):
            setattr(cfg, key, None)
            continue
        types = _TYPES[key]
        if isinstance(value, bool) != (bool in types) or not isinstance(value, types):
            words = {int: "an integer", float: "a number", bool: "true or false", str: "a text", list: "a list",
                     dict: "a mapping"}
            want = " or ".join(dict.fromkeys(words[t] for t in types))
            raise NasError(f"{source}: {key} must be {want}, got {value!r}")
        if key == "init":
            value = split_init(value) if isinstance(value, str) else [str(v) for v in value]
        elif key == "objectives":
            value = parse_objectives(value)
        elif key in ("algo_settings", "network", "train", "latency"):
            value = dict(value)
        elif key in ("cpus_per_trial", "gpus_per_trial", "target_latency_ms", "memory_cap"):
            value = float(value)
        setattr(cfg, key, value)
    return cfg


def read_config_file(path: str, what: str = "study", pattern: str = "*.yaml") -> tuple[dict[str, Any], str]:
    """``(settings, the file's path)`` of a configuration file: ``path`` itself, or a NAME looked up
    as ``studies/NAME.yaml`` here, then among the shipped studies (``pattern``: the names listed when
    none is found); NasError for a missing file, bad YAML or anything but a mapping."""
    import yaml

    p = Path(path)
    if not p.is_file() and not path.endswith((".yaml", ".yml")):
        candidates = [Path.cwd() / "studies" / f"{path}.yaml", STUDIES_DIR / f"{path}.yaml"]
        p = next((c for c in candidates if c.is_file()), p)
    if not p.is_file():
        known = ", ".join(sorted(q.stem for q in STUDIES_DIR.glob(pattern))) if STUDIES_DIR.is_dir() else ""
        raise NasError(f"no {what} configuration {path!r}" + (f" (known: {known})" if known else ""))
    try:
        values = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise NasError(f"{p}: not valid YAML ({first_line(e)})") from None
    if not isinstance(values, dict):
        raise NasError(f"{p}: a {what} configuration must be a mapping of settings")
    return values, str(p)


def load_config_file(path: str) -> dict[str, Any]:
    """The settings of a study configuration file (``studies/NAME.yaml``, a NAME, or a path), checked."""
    values, source = read_config_file(path)
    config_from_mapping(values, source)  # check keys and types now, with the file's name
    return values


def split_init(text: str) -> list[str]:
    """``--init`` value: a comma-separated list of names, or one genotype text (which may hold commas)."""
    text = text.strip()
    if ":" in text or "|" in text:
        return [text]
    return [part.strip() for part in text.split(",") if part.strip()]


def plain(value: Any) -> Any:
    return json.loads(json.dumps(value))


def config_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key stored (now current)`` for each identity setting that differs."""
    diffs = []
    for key in sorted((set(stored) & set(current)) - RUNTIME_KEYS):
        a, b = plain(stored[key]), plain(current[key])
        if a != b:
            diffs.append(f"{key} {json.dumps(a)} (now {json.dumps(b)})")
    return diffs

"""Preparing a search: every input checked, and the algorithm, evaluator and executor made, before
any storage is touched."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nasengine.engine.config import SearchConfig, plain
from nasengine.engine.objectives import Costs, LatencyProbe, Scoring, check_objectives
from nasengine.errors import NasError, did_you_mean
from nasengine.storage import display_url

_DATA_KEYS = ("num_classes", "in_channels", "image_size")


def resolve_init(space, entries: list[str]) -> list[tuple[str, Any]]:
    """``(label, genotype)`` for each ``--init`` entry (a published name or a genotype text), checked
    against the search's space."""
    from nasengine.zoo.resolve import resolve_text

    out = []
    for entry in entries:
        label = entry if ":" not in entry and "|" not in entry else "genotype"
        try:
            g = space.parse(entry) if label == "genotype" else resolve_text(entry).genotype
            space.to_params(space.validate(g))
        except NasError as e:
            raise NasError(f"--init {label}: not in space {space.name}: {e}") from None
        out.append((label, g))
    return out


@dataclass
class Prepared:
    cfg: SearchConfig
    space: Any
    make_algorithm: Callable[[], Any] | None  # None: a weight-sharing search
    init: list[tuple[str, Any]]
    evaluators: dict[str, Callable]  # by a task's role: "train" a candidate, "search" with a supernet
    network: dict[str, Any]
    executor: Any
    study_name: str
    storage: str
    artifact_dir: str
    scoring: Scoring = Scoring()


def prepare(cfg: SearchConfig, evaluator: Callable | None = None, executor=None,
            network: dict[str, Any] | None = None, check_machine: bool = True) -> Prepared:
    """Check everything a search needs, touching no storage. NasError for any bad input.

    ``check_machine=False`` leaves out what depends on this machine (dataset files, a GPU), so a
    configuration meant for another machine can be validated here."""
    from nasengine.algorithms import ALGORITHMS, make_algorithm
    from nasengine.data import dataset_shape, prepare_dataset
    from nasengine.engine.weight_sharing import WEIGHT_SHARING, make_search
    from nasengine.execution import make_executor
    from nasengine.spaces import load_space
    from nasengine.storage import check_storage_url, default_artifact_dir
    from nasengine.zoo.presets import network_settings

    for key in ("trials", "epochs", "workers", "max_failures", "max_duplicates"):
        if getattr(cfg, key) < 1:
            raise NasError(f"{key} must be a positive integer, got {getattr(cfg, key)}")
    if cfg.retrain_epochs < 0:
        raise NasError(f"retrain_epochs must not be negative, got {cfg.retrain_epochs}")
    if cfg.keep_weights is not None and cfg.keep_weights < 1:
        raise NasError(f"keep_weights must be a positive integer, got {cfg.keep_weights}")
    names, latency = check_objectives(cfg.objective, cfg.target_latency_ms, cfg.objectives, cfg.latency)
    cfg = dataclasses.replace(cfg, objectives=list(names) if len(names) > 1 else [], latency=latency)
    space = load_space(cfg.space)
    settings = dict(cfg.algo_settings)  # over the algorithm's own defaults
    weight_sharing = cfg.algo in WEIGHT_SHARING
    objectives = {"objectives": names, "directions": Scoring(names).directions} if len(names) > 1 else {}
    if weight_sharing:
        if cfg.init:
            raise NasError(f"--init does not go with --algo {cfg.algo}: a weight-sharing search derives its genotypes")
        if cfg.count_failures:
            raise NasError(f"--count-failures does not go with --algo {cfg.algo}: a weight-sharing search reruns a "
                           "failed seed")
        if names != ("accuracy",):
            raise NasError(f"--algo {cfg.algo} searches for accuracy alone: it takes neither several objectives "
                           "nor the reward")
    elif cfg.algo in ALGORITHMS:
        make_algorithm(cfg.algo, space, cfg.seed, **objectives, **settings)  # unknown settings: NasError now
        if cfg.retrain_epochs:
            raise NasError(f"--retrain-epochs goes with a weight-sharing search ({', '.join(WEIGHT_SHARING)})")
    else:
        known = sorted([*ALGORITHMS, *WEIGHT_SHARING])
        raise NasError(f"unknown algorithm {cfg.algo!r}{did_you_mean(cfg.algo, known)} (known: {', '.join(known)})")
    init = resolve_init(space, cfg.init)
    check_storage_url(cfg.storage)
    if executor is None:
        executor = make_executor(cfg.executor, cfg.workers, cfg.cpus_per_trial, cfg.gpus_per_trial, cfg.ray_address,
                                 results_dir=cfg.results_dir, memory_cap=cfg.memory_cap)
        if check_machine and cfg.executor == "ray" and not cfg.ray_address and cfg.gpus_per_trial > 0:
            import torch

            if not torch.cuda.is_available():
                raise NasError(f"--gpus-per-trial {cfg.gpus_per_trial:g} but this machine has no GPU "
                               "(and no --ray-address was given)")
    threads = max(1, int(cfg.cpus_per_trial))  # torch's threads follow the trial's CPUs, wherever it runs
    if evaluator is None:
        from nasengine.engine.evaluators import TrainEvaluator

        shape = dataset_shape(cfg.dataset)
        if check_machine:
            prepare_dataset(cfg.dataset, data_dir=cfg.data_dir, download=cfg.download, stream=sys.stderr)
        network = network_settings(space, cfg.preset or "digits", dataset_shape=shape, **cfg.network)
        macro = {k: v for k, v in network.items() if k not in _DATA_KEYS}
        epochs = (cfg.retrain_epochs or cfg.epochs) if weight_sharing else cfg.epochs
        evaluator = TrainEvaluator(space=cfg.space, dataset=cfg.dataset, data_dir=cfg.data_dir, epochs=epochs,
                                   network=macro, train=cfg.train, threads=threads)
        evaluator.config(cfg.seed)  # bad training settings: NasError now
    elif network is None and (latency or len(names) > 1):  # the probe and the costs build networks
        network = network_settings(space, cfg.preset or "digits", dataset_shape=dataset_shape(cfg.dataset),
                                   **cfg.network)
    scoring = make_scoring(cfg, names, latency, network, check_machine)
    evaluators = {"train": evaluator}
    if weight_sharing:
        try:
            evaluators["search"] = make_search(cfg.algo, space=cfg.space, dataset=cfg.dataset, data_dir=cfg.data_dir,
                                               epochs=cfg.epochs, threads=threads, **settings)
        except TypeError as e:
            raise NasError(f"algorithm {cfg.algo}: {e}") from None
    if objectives:
        costs = Costs(space, dict(network), scoring.cheap(), scoring.probe) if scoring.cheap() else None
        objectives["costs"] = costs
    return Prepared(cfg=cfg, space=space,
                    make_algorithm=None if weight_sharing
                    else lambda: make_algorithm(cfg.algo, space, cfg.seed, **objectives, **settings),
                    init=init, evaluators=evaluators, network=dict(network or {}), executor=executor,
                    study_name=cfg.study_name or cfg.default_study_name(), storage=cfg.storage,
                    artifact_dir=cfg.artifact_dir or str(default_artifact_dir(cfg.storage)), scoring=scoring)


def make_scoring(cfg: SearchConfig, names: tuple[str, ...], latency: dict[str, Any], network: dict[str, Any],
                 check_machine: bool) -> Scoring:
    """The search's Scoring; with latency, its probe checked now (a table for the target that prices
    this space's networks; a CUDA target where it is measured)."""
    if not latency:
        return Scoring(names, cfg.target_latency_ms)
    from nasengine.profiler.target import Target

    target = Target(latency["device"], latency["threads"], latency["batch"], int(network["image_size"]))
    probe = LatencyProbe(cfg.space, dict(network), target.to_data(), latency["mode"], latency["table"])
    probe.check(files=check_machine)
    if check_machine:
        on_driver = latency["where"] == "driver" or latency["mode"] == "predicted"
        if target.device == "cuda" and (on_driver or cfg.executor != "ray" or not cfg.ray_address):
            import torch

            if not torch.cuda.is_available():
                raise NasError("--latency-device cuda but this machine has no GPU"
                               + ("" if on_driver else " (and no --ray-address was given)"))
    return Scoring(names, cfg.target_latency_ms, probe, latency["where"])


def study_config(p: Prepared) -> dict[str, Any]:
    """The configuration stored with the study (with its resolved name and a password-free storage URL)."""
    d = p.cfg.to_dict()
    d["storage"] = display_url(p.cfg.storage)
    d["study_name"] = p.study_name
    return plain(d)

"""What a search optimises, and how a candidate's latency is found.

Objectives (search config keys and flags):

- ``objective: accuracy`` (the default): a trial's value is its final validation accuracy.
- ``objective: reward`` with ``target_latency_ms: T``: MnasNet's reward, the trial's value (Tan et al.
  2019, "MnasNet: Platform-Aware Neural Architecture Search for Mobile", eq. 2 and section 3.1, the soft
  constraint alpha = beta = w = -0.07): ``ACC * (LAT / T) ** w``. A network at the target keeps its
  accuracy; one twice as slow loses 4.7% of it, one twice as fast gains 5.0%.
- ``objectives: [accuracy, latency|params|flops, ...]``: 2 or 3 objectives, accuracy first (maximised),
  the others minimised. The study is an Optuna multi-objective study with these directions, its
  values the objectives in this order, so optuna-dashboard draws its front.

Every trial keeps the user attrs ``accuracy``, ``params`` and ``flops`` and, when latency is asked for
(the reward, a ``latency`` objective, or any ``latency:`` setting), ``latency_ms``; its values are
computed from those attrs (:meth:`Scoring.values`).

Latency (config key ``latency: {device, threads, batch, where, mode, table}``): the target is
``nasengine.profiler.Target(device, threads, batch, resolution)`` with the resolution of the searched
network's input; it is stored with the study (user attr ``latency``). ``mode: measured`` builds the
network and times it (``nasengine.profiler.measure_latency``: warm-up, then the median of repeated
runs in inference mode), on the driver's machine (``where: driver``, the default: one machine times
every candidate, so the figures compare even when workers differ) before the candidate's trial is
trained, or inside the trial after training (``where: worker``: the worker's device, e.g. its GPU).
``mode: predicted`` sums a per-layer lookup table (``nasengine.profiler.LatencyTable``, file ``table``,
made by ``nasengine latency``) on the driver, and needs the block networks' layer specs (the mobile
skeleton). One latency per canonical genotype: the driver reads the ``latency_ms`` of the study's
trials (any state) by their ``hash`` when it starts or resumes and never measures a hash again (the
study's target is part of its identity, so every trial of a study has the same one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nasengine.errors import NasError, check_keys

REWARD_EXPONENT = -0.07  # MnasNet's w (alpha = beta), section 3.1
OBJECTIVES = ("accuracy", "latency", "params", "flops")
ATTR = {"accuracy": "accuracy", "latency": "latency_ms", "params": "params", "flops": "flops"}
LATENCY_DEFAULTS: dict[str, Any] = {"device": "cpu", "threads": 1, "batch": 1, "where": "driver",
                                    "mode": "measured", "table": None}
_CHOICES = {"device": ("cpu", "cuda"), "where": ("driver", "worker"), "mode": ("measured", "predicted")}


def mnasnet_reward(accuracy: float, latency_ms: float, target_ms: float, w: float = REWARD_EXPONENT) -> float:
    """``accuracy * (latency_ms / target_ms) ** w`` (MnasNet, eq. 2 with alpha = beta = w)."""
    return float(accuracy) * (float(latency_ms) / float(target_ms)) ** w


def parse_objectives(value: Any) -> list[str]:
    """``objectives`` as a list of names: a list, or one comma-separated text (``accuracy,latency``)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(v).strip() for v in value]


def check_objectives(objective: str, target_ms: float | None, objectives: Sequence[str],
                     latency: dict[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The study's objective names (``("accuracy",)``, ``("reward",)`` or 2-3 of ``OBJECTIVES``, accuracy
    first) and the latency settings with defaults filled in (``{}`` when latency is not asked for);
    NasError with one line for any bad setting."""
    if objective not in ("accuracy", "reward"):
        raise NasError(f"objective must be accuracy or reward, got {objective!r}")
    if objectives:
        names = tuple(objectives)
        if objective != "accuracy":
            raise NasError("objective reward is one objective; objectives lists several: give one of them")
        unknown = [n for n in names if n not in OBJECTIVES]
        if unknown:
            raise NasError(f"unknown objective {unknown[0]!r} (known: {', '.join(OBJECTIVES)})")
        if not 2 <= len(names) <= 3:
            raise NasError(f"objectives takes 2 or 3 names, got {len(names)}: {', '.join(names)}")
        if names[0] != "accuracy" or len(set(names)) != len(names):
            raise NasError(f"objectives must start with accuracy and not repeat, got {', '.join(names)}")
    else:
        names = (objective,)
    if objective == "reward":
        if target_ms is None:
            raise NasError("objective reward needs target_latency_ms (--target-latency-ms T)")
    elif target_ms is not None:
        raise NasError("target_latency_ms goes with objective reward (--objective reward)")
    if target_ms is not None and not (math.isfinite(target_ms) and target_ms > 0):
        raise NasError(f"target_latency_ms must be a positive number, got {target_ms!r}")
    check_keys(latency, LATENCY_DEFAULTS, "latency setting")
    if not latency and objective != "reward" and "latency" not in names:
        return names, {}
    settings = {**LATENCY_DEFAULTS, **{k: v for k, v in latency.items() if v is not None}}
    for key, choices in _CHOICES.items():
        if settings[key] not in choices:
            raise NasError(f"latency {key} must be {' or '.join(choices)}, got {settings[key]!r}")
    for key in ("threads", "batch"):
        value = settings[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise NasError(f"latency {key} must be a positive integer, got {value!r}")
    if settings["mode"] == "predicted" and not settings["table"]:
        raise NasError("latency predicted needs a lookup table (--latency-table FILE, made by nasengine latency)")
    if settings["table"] is not None and not isinstance(settings["table"], str):
        raise NasError(f"latency table must be a file path, got {settings['table']!r}")
    if settings["mode"] == "measured" and settings["table"]:
        raise NasError("a latency table goes with latency predicted (--latency predicted)")
    return names, settings


@dataclass(frozen=True)
class LatencyProbe:
    """A candidate's latency in ms on the search's target; plain values only, so it pickles to workers.

    ``network``: the ``build_network`` keyword arguments (skeleton, dataset shape, macro settings)."""

    space: str
    network: dict[str, Any]
    target: dict[str, Any]  # nasengine.profiler.Target.to_data()
    mode: str = "measured"
    table: str | None = None

    def check(self, files: bool = True) -> None:
        """NasError now for a predicted latency of a network that has no layer specs (not the mobile
        skeleton) and (``files``) a table that is missing or for another target."""
        if self.mode == "predicted":
            if self.network.get("skeleton") != "mobile":
                raise NasError(f"latency predicted sums the layers of block networks (the mobile skeleton); "
                               f"space {self.space} builds {self.network.get('skeleton')} networks: use measured")
            if files:
                self._table()

    def _table(self):
        from nasengine.profiler.table import LatencyTable
        from nasengine.profiler.target import Target

        key = (self.table, tuple(sorted(self.target.items())))
        if key not in _TABLES:
            _TABLES[key] = LatencyTable.load(self.table, Target.from_data(self.target))
        return _TABLES[key]

    def of(self, genotype) -> float:
        """The latency of ``genotype`` (a genotype of the space)."""
        from nasengine.models import build_network
        from nasengine.profiler.measure import measure_latency
        from nasengine.profiler.target import Target

        if self.mode == "predicted":
            return float(self._table().predict(genotype.to_data(), dict(self.network)))
        settings = dict(self.network)
        model = build_network(genotype.to_data(), **settings)
        return float(measure_latency(model, Target.from_data(self.target), in_channels=settings["in_channels"]))

    def __call__(self, genotype_text: str) -> float:
        """The latency of a genotype given as text (what a worker has)."""
        from nasengine.spaces import load_space

        return self.of(load_space(self.space).parse(genotype_text))


_TABLES: dict[tuple, Any] = {}  # per process: each latency table is read once


@dataclass
class Costs:
    """The cheap objectives of any candidate, without training it (the ``costs`` of
    ``nasengine.algorithms``): ``params`` and ``flops`` of its network as the trainer counts them, and
    ``latency`` when predicted from a table. Cached by canonical hash."""

    space: Any
    network: dict[str, Any]
    names: tuple[str, ...]  # which of params, flops, latency
    probe: LatencyProbe | None = None
    _cache: dict[str, dict[str, float]] = field(default_factory=dict)

    def __call__(self, genotype) -> dict[str, float]:
        h = self.space.hash(genotype)
        if h not in self._cache:
            out: dict[str, float] = {}
            if "params" in self.names or "flops" in self.names:
                from nasengine.models import build_network, count_flops, count_params

                model = build_network(genotype.to_data(), **self.network)
                shape = (self.network["in_channels"], self.network["image_size"], self.network["image_size"])
                if "params" in self.names:
                    out["params"] = float(count_params(model))
                if "flops" in self.names:
                    out["flops"] = float(count_flops(model, shape))
            if "latency" in self.names and self.probe is not None:
                out["latency"] = self.probe.of(genotype)
            self._cache[h] = out
        return dict(self._cache[h])


@dataclass(frozen=True)
class Scoring:
    """How a search scores a trained candidate: the study's objectives and directions, the reward's
    target, and the latency probe (None: latency not asked for) with where it runs."""

    names: tuple[str, ...] = ("accuracy",)
    target_latency_ms: float | None = None
    probe: LatencyProbe | None = None
    where: str = "driver"

    @property
    def directions(self) -> tuple[str, ...]:
        return tuple("maximize" if n in ("accuracy", "reward") else "minimize" for n in self.names)

    @property
    def multi(self) -> bool:
        return len(self.names) > 1

    @property
    def on_worker(self) -> bool:
        """Whether the worker measures (after training) rather than the driver (before)."""
        return self.probe is not None and self.probe.mode == "measured" and self.where == "worker"

    def cheap(self) -> tuple[str, ...]:
        """The objectives ``Costs`` can give without training."""
        latency = self.probe is not None and self.probe.mode == "predicted"
        return tuple(n for n in self.names if n in ("params", "flops") or (n == "latency" and latency))

    def values(self, attrs: dict[str, Any]) -> tuple[float, ...]:
        """The trial's values from its attrs (``accuracy``, ``params``, ``flops``, ``latency_ms``);
        NasError naming a missing one."""
        def attr(name: str) -> float:
            value = attrs.get(name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise NasError(f"the trial has no {name} (got {value!r})")
            return float(value)

        if self.names == ("reward",):
            return (mnasnet_reward(attr("accuracy"), attr("latency_ms"), self.target_latency_ms),)
        return tuple(attr(ATTR[n]) for n in self.names)

    def study_attrs(self) -> dict[str, Any]:
        """What the study records about its objectives (user attrs ``objectives``, ``latency``)."""
        out: dict[str, Any] = {"objectives": list(self.names)}
        if self.target_latency_ms is not None:
            out["target_latency_ms"] = self.target_latency_ms
            out["reward_exponent"] = REWARD_EXPONENT
        if self.probe is not None:
            out["latency"] = {**self.probe.target, "mode": self.probe.mode, "where": self.where,
                              "table": self.probe.table}
        return out

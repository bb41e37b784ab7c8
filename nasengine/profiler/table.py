"""A per-layer latency lookup table for one target, as FBNet (Wu et al. 2019, section 3.2: "we build a
latency lookup table model ... by benchmarking the latency of each operator") and ProxylessNAS (Cai et
al. 2019, section 3.3) predict a network's latency without building it: each distinct layer (a
``nasengine.models.blocks.layer_specs`` entry: stem, one block layer, head) is built alone with
``build_layer`` and timed once on a random input of its shape; a network's predicted latency is the sum
of its layers' times, optionally scaled and offset by a line fitted on a few measured networks
(``calibrate``; off unless asked for).

Why the layers' plain sum: measured as ``measure`` measures (one thread's CPU time, glibc kept from
returning buffers, the median of interleaved rounds), 50 random 224x224 ``mnasnet`` networks on the
project's 2-core CPU took 1.03x the sum of their layers (median; 0.86-1.31x), and the sum predicted them
to 5% median error (Spearman 0.98). In an earlier run, a line fitted on 10 other measured networks did
worse than the sum of the same table (9% against 7%): its fit is as noisy as the measurements on a
shared machine. Timing each layer's median over rounds matters: a run that kept each layer's fastest
round instead (at another load) measured networks at 1.46x their sums. Figures: ``benchmarks/RESULTS.md``.

The table is saved as JSON (the target, the torch version and the CPU it was timed on, the calibration, and
one ``{"spec", "ms"}`` row per layer) so that a user reuses it; loading it for another target is refused.
Prediction does no torch work: a spec is looked up by its key in a dict, so 1,000 candidates take a few
tenths of a second, most of it in ``layer_specs`` itself.
"""

from __future__ import annotations

import json
import platform
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from nasengine.errors import NasError
from nasengine.models.blocks import build_layer, layer_specs
from nasengine.profiler.measure import WARMUP, check_device, check_runs, run_times, steady_allocator, target_threads
from nasengine.profiler.target import Target

FORMAT = "nasengine-latency-table"
VERSION = 1

SpecKey = tuple[tuple[str, Any], ...]


def spec_key(spec: dict[str, Any]) -> SpecKey:
    """A layer spec as a hashable, order-free key (specs are flat dicts of plain values)."""
    return tuple(sorted(spec.items()))


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class LatencyTable:
    """Milliseconds per distinct layer spec on one :class:`Target`; a network's prediction is
    ``scale * (sum of its layers) + overhead_ms``."""

    def __init__(self, target: Target, times: dict[SpecKey, float] | None = None, scale: float = 1.0,
                 overhead_ms: float = 0.0, calibrated_on: int = 0, machine: dict[str, str] | None = None) -> None:
        self.target = target
        self.times: dict[SpecKey, float] = dict(times or {})
        self.scale = scale
        self.overhead_ms = overhead_ms
        self.calibrated_on = calibrated_on  # how many measured networks the scale and overhead were fitted on
        self.machine = machine or {"torch": torch.__version__, "cpu": _cpu_name()}
        self._specs_cache: dict[str, list[SpecKey]] = {}

    def __len__(self) -> int:
        return len(self.times)

    # ------------------------------------------------------------------------------------ specs

    def _settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        size = settings.get("image_size", self.target.resolution)
        if size != self.target.resolution:
            raise NasError(f"the network's resolution {size} is not the latency target's {self.target.resolution}")
        return {**settings, "image_size": self.target.resolution}

    def specs(self, genotype_data: dict, settings: dict[str, Any]) -> list[dict[str, Any]]:
        """The network's layer specs at the target's resolution."""
        try:
            return layer_specs(genotype_data, **self._settings(settings))
        except ValueError as e:
            raise NasError(f"cannot lay out the network: {e}") from None

    def _keys(self, genotype_data: dict, settings: dict[str, Any]) -> list[SpecKey]:
        cache_key = json.dumps([genotype_data, settings], sort_keys=True, default=str)
        keys = self._specs_cache.get(cache_key)
        if keys is None:
            keys = [spec_key(s) for s in self.specs(genotype_data, settings)]
            self._specs_cache[cache_key] = keys
        return keys

    def missing(self, specs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The distinct specs of ``specs`` the table has no time for, in first-seen order."""
        seen: dict[SpecKey, dict[str, Any]] = {}
        for s in specs:
            k = spec_key(s)
            if k not in self.times and k not in seen:
                seen[k] = s
        return list(seen.values())

    # ------------------------------------------------------------------------------------ timing

    def fill(self, specs: Iterable[dict[str, Any]], *, warmup: int = WARMUP, repeats: int = 5,
             rounds: int = 3, progress: Any = None) -> int:
        """Time every spec the table lacks; returns how many were timed. Each spec is timed in
        ``rounds`` interleaved rounds (every spec once per round) and keeps the median of its rounds'
        medians of ``repeats`` runs, so a burst of load from other processes during one round does not
        stick to the layers timed then. ``progress(done, total)`` is called after each timing."""
        check_runs(warmup, repeats)
        todo = self.missing(specs)
        device = check_device(self.target)
        steady_allocator()
        runs: list[list[float]] = [[] for _ in todo]
        b, gen = self.target.batch, torch.Generator().manual_seed(0)
        with target_threads(self.target), torch.inference_mode():
            for r in range(rounds):
                for i, spec in enumerate(todo):
                    layer = build_layer(spec).to(device).eval()
                    x = torch.randn(b, spec["in_ch"], spec["size"], spec["size"], generator=gen).to(device)
                    runs[i].append(statistics.median(run_times(layer, x, self.target, warmup, repeats)))
                    if progress:
                        progress(r * len(todo) + i + 1, rounds * len(todo))
        for spec, medians in zip(todo, runs):
            self.times[spec_key(spec)] = statistics.median(medians)
        return len(todo)

    def fill_for(self, networks: Iterable[tuple[dict, dict[str, Any]]], **timing: Any) -> int:
        """:meth:`fill` with the layers of ``(genotype_data, settings)`` networks."""
        return self.fill([s for g, settings in networks for s in self.specs(g, settings)], **timing)

    def calibrate(self, networks: Sequence[tuple[dict, dict[str, Any]]],
                  measured_ms: Sequence[float]) -> tuple[float, float]:
        """Fit ``scale`` and ``overhead_ms`` to the measured latencies of ``(genotype_data, settings)``
        networks against their layer sums (see the module docstring for why), robustly (Theil-Sen: the
        median of the pairwise slopes, then the median intercept), since a few of a handful of
        measurements on a busy machine are off by tens of percent. With one network, or no rising
        slope, the scale stays 1 and the overhead is the median gap. Returns ``(scale, overhead_ms)``."""
        if not networks or len(networks) != len(measured_ms):
            raise NasError("calibration needs as many measured latencies as networks, at least one")
        sums = [self.layer_sum(g, s) for g, s in networks]
        pairs = list(zip(sums, measured_ms))
        slopes = [(y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(pairs) for x2, y2 in pairs[i + 1:] if x2 != x1]
        scale = statistics.median(slopes) if slopes else 1.0
        if scale <= 0:
            scale = 1.0
        self.scale = scale
        self.overhead_ms = statistics.median(y - scale * x for x, y in pairs)
        self.calibrated_on = len(networks)
        return self.scale, self.overhead_ms

    # ------------------------------------------------------------------------------------ prediction

    def layer_sum(self, genotype_data: dict, settings: dict[str, Any]) -> float:
        """The sum of the network's layer times (no overhead)."""
        total = 0.0
        for k in self._keys(genotype_data, settings):
            ms = self.times.get(k)
            if ms is None:
                raise NasError(f"the latency table for {self.target.key} has no time for layer {dict(k)}; "
                               "extend it (nasengine latency --table FILE with --genotype or --sample; --build-table)")
            total += ms
        return total

    def predict(self, genotype_data: dict, settings: dict[str, Any]) -> float:
        """Predicted latency in ms of the network ``build_network(genotype_data, **settings)``."""
        return self.scale * self.layer_sum(genotype_data, settings) + self.overhead_ms

    # ------------------------------------------------------------------------------------ files

    def to_data(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "target": self.target.to_data(), "machine": self.machine,
                "scale": self.scale, "overhead_ms": self.overhead_ms, "calibrated_on": self.calibrated_on,
                "layers": [{"spec": dict(k), "ms": ms} for k, ms in self.times.items()]}

    def save(self, path: str | Path) -> None:
        path = Path(path)
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_data(), indent=1) + "\n")
        tmp.replace(path)

    @classmethod
    def from_data(cls, data: Any, source: str = "latency table") -> LatencyTable:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise NasError(f"{source} is not a nasengine latency table")
        if data.get("version") != VERSION:
            raise NasError(f"{source} has table version {data.get('version')!r}; this nasengine reads {VERSION}")
        try:
            target = Target.from_data(data["target"])
            times = {spec_key(row["spec"]): float(row["ms"]) for row in data["layers"]}
            return cls(target, times, float(data["scale"]), float(data["overhead_ms"]), int(data["calibrated_on"]),
                       data["machine"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise NasError(f"{source} is malformed: {e!r}") from None

    @classmethod
    def load(cls, path: str | Path, target: Target | None = None) -> LatencyTable:
        """Read a table; with ``target``, refuse a table timed for another one."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise NasError(f"latency table {str(path)!r} does not exist") from None
        except (OSError, ValueError) as e:
            raise NasError(f"cannot read latency table {str(path)!r}: {e}") from None
        table = cls.from_data(data, f"latency table {str(path)!r}")
        if target is not None and table.target != target:
            raise NasError(f"latency table {str(path)!r} is for {table.target.key}, not {target.key}")
        return table

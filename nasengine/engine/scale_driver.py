"""``run_scale``: a compound-scaling study (EfficientNet's two steps, see ``engine/scale.py``) trained
through the engine's executor and recorded in one Optuna study, then reported.

Why a task source of its own rather than the search :class:`~nasengine.engine.driver.Driver` with a
"scaling plan" algorithm: the Driver's identity of a trial is its genotype's canonical hash, its
task payload carries only the genotype and seed, and its budget is a count of COMPLETE trials; every
trial of a scaling study has the *same* genotype and differs in network settings (width, depth,
resolution), and its plan is a fixed list in two phases (the grid, then the networks the best grid
coefficients give). Teaching the Driver that would change all three; :class:`ScaleSource` is the
executor's ``TaskSource`` interface (about 100 lines) over the same executor, TrialWriter,
TrainEvaluator and progress line.

Resume: the same command finds the study by name, refuses other settings (``phis``, ``baselines`` and
the runtime keys may change), marks trials a dead run left RUNNING as FAIL, and trains only the plan's
trials (identified by method, phi and coefficients) the study does not hold COMPLETE. Failed trials
are retried by the next run; ``max_failures`` failures in a row stop this one.
"""

from __future__ import annotations

import collections
import copy
import functools
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from nasengine import storage as st
from nasengine.engine.driver import fail_running_trials
from nasengine.engine.scale import (
    Planned,
    base_plan,
    baseline_plan,
    compound_plan,
    grid,
    grid_plan,
    plan_key,
)
from nasengine.engine.scale_config import ScaleConfig, scale_differences
from nasengine.errors import NasError
from nasengine.execution import FINISHED, Task
from nasengine.progress import Progress, duration

_DATA_KEYS = ("num_classes", "in_channels", "image_size")
_RESULT_KEYS = ("params", "flops", "train_seconds", "val_acc", "test_acc", "epochs", "device", "latency_ms")


def run_scaled(evaluator, payload: dict, report) -> dict:
    """What one trial runs on a worker: ``evaluator`` (a TrainEvaluator) with the payload's network
    settings over its own, then, if asked, the network's CPU latency (1 thread, batch 1)."""
    ev = copy.copy(evaluator)
    ev.network = {**evaluator.network, **payload["network"]}
    result = ev(payload["genotype"], payload["seed"], report)
    if payload.get("latency"):
        from nasengine.profiler import Target, measure_latency

        data = ev.load()
        model = ev.build(payload["genotype"], data)
        target = Target(device="cpu", threads=1, batch=1, resolution=int(payload["network"]["image_size"]))
        result["latency_ms"] = measure_latency(model, target, in_channels=data.in_channels)
    return result


def network_flops(genotype_data: dict, settings: dict[str, Any]):
    """``flops(scaled) -> int``: the multiply-adds of the network ``settings`` (``build_network``'s
    kwargs) with the ``scaled`` width, depth and image_size, counted on the meta device (no weights).

    Cached by the network's layers (``layer_specs``), not by the coefficients: the matched-FLOPs
    bisection asks for many coefficients that round to the same layers (0.17 s a count: planning the
    nine baselines of scale-digits took 32 s, now 8 s, both with another job on the two cores)."""
    import torch

    from nasengine.models.blocks import layer_specs
    from nasengine.models.flops import count_flops
    from nasengine.models.network import build_network

    cache: dict[tuple, int] = {}

    def flops(scaled: dict[str, Any]) -> int:
        kwargs = {**settings, **scaled}
        key = tuple(tuple(sorted(spec.items())) for spec in layer_specs(genotype_data, **kwargs))
        if key not in cache:
            with torch.device("meta"):
                model = build_network(genotype_data, **kwargs)
            size = kwargs["image_size"]
            cache[key] = count_flops(model, (kwargs["in_channels"], size, size))
        return cache[key]

    return flops


@dataclass
class ScaleResult:
    storage: str
    study_name: str
    n_complete: int
    n_failed: int
    trained_now: int
    seconds: float
    best: tuple[float, float, float] | None  # the best grid coefficients
    resumed: bool = False
    report: str = ""
    most_accurate: int | None = None  # the number of the most accurate trial


class ScaleSource:
    """The executor's task source for a scaling plan: the base and the grid first; when all of them
    have finished, the compound networks and the baselines for the best grid coefficients. Trials whose
    key the study holds COMPLETE are skipped."""

    def __init__(self, writer, genotype, base: dict[str, Any], cfg: ScaleConfig, flops, done: dict[tuple, float],
                 progress: Progress) -> None:
        self.writer = writer
        self.genotype = genotype
        self.text, self.hash = writer.space.format(genotype), writer.space.hash(genotype)
        self.base = base
        self.cfg = cfg
        self.flops = flops
        self.done = dict(done)  # key -> accuracy of COMPLETE trials
        self.progress = progress
        first = [base_plan(base), *grid_plan(grid(cfg.grid_step, cfg.tolerance), base)]
        self.queue = collections.deque(p for p in first if p.key not in self.done)
        self.phase = 1
        self.running: dict[int, tuple[int, Planned]] = {}
        self.best: tuple[float, float, float] | None = None
        self.n_failed = self.trained_now = self.consecutive_failures = 0
        self.abort_reason: str | None = None
        progress.total = len(self.queue) + self._second_size()

    def _second_size(self) -> int:
        return (self.cfg.phis - 1) + 3 * self.cfg.phis * self.cfg.baselines

    def _second_phase(self) -> None:
        grid_done = {k[2:5]: acc for k, acc in self.done.items() if k[0] == "grid"}
        if not grid_done:
            self.abort_reason = "no grid candidate finished training, so there are no coefficients to scale with"
            return
        self.best = max(grid_done, key=lambda c: (grid_done[c], [-x for x in c]))  # ties: the smaller coefficients
        planned = compound_plan(self.best, self.cfg.phis, self.base)
        if self.cfg.baselines:
            planned += baseline_plan(self.best, self.cfg.phis, self.base, self.flops)
        self.progress.message(f"best grid coefficients alpha={self.best[0]:g} beta={self.best[1]:g} "
                              f"gamma={self.best[2]:g} (accuracy {grid_done[self.best]:.4f}); "
                              f"{len(planned)} scaled network(s) to train")
        todo = [p for p in planned if p.key not in self.done]
        self.progress.total = self.trained_now + self.n_failed + len(todo)
        self.queue.extend(todo)

    # ---- TaskSource ---------------------------------------------------------------------------
    def next_task(self):
        if self.abort_reason:
            return FINISHED
        if not self.queue:
            if self.running:
                return None
            if self.phase == 2:
                return FINISHED
            self.phase = 2
            self._second_phase()
            if self.abort_reason or not self.queue:
                return FINISHED
        p = self.queue.popleft()
        trial_id, number = self.writer.start(self.genotype, seed=self.cfg.seed, note=p.label(), hash=self.hash,
                                             **p.attrs())
        self.running[trial_id] = (number, p)
        self.tick()
        payload = {"role": "train", "genotype": self.text, "seed": self.cfg.seed, "network": dict(p.settings),
                   "latency": self.cfg.latency}
        return Task(trial_id, payload)

    def on_report(self, key: int, step: int, value: float) -> None:
        if key in self.running:
            self.writer.report(key, step, value)

    def on_result(self, key: int, result: dict) -> None:
        if key not in self.running:
            return
        value = result.get("value") if isinstance(result, dict) else None
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            self.on_error(key, f"EvaluatorError: the evaluator returned value {value!r}")
            return
        number, p = self.running.pop(key)
        for step, acc in enumerate(result.get("curve") or [], start=1):
            self.writer.report(key, step, acc)
        attrs = {k: result[k] for k in _RESULT_KEYS if result.get(k) is not None}
        self.writer.complete(key, float(value), {**attrs, "accuracy": float(value)})
        self.done[p.key] = float(value)
        self.trained_now += 1
        self.consecutive_failures = 0
        self.progress.message(f"trial #{number} {p.label()}: accuracy {value:.4f}, "
                              f"{result.get('flops', 0):,} FLOPs")
        self.tick()

    def on_error(self, key: int, error: str, tb: str = "") -> None:
        if key not in self.running:
            return
        number, p = self.running.pop(key)
        self.writer.fail(key, {"error": error, **({"traceback": tb[-8000:]} if tb else {})})
        self.n_failed += 1
        self.consecutive_failures += 1
        self.progress.message(f"trial #{number} {p.label()} failed: {error}")
        if self.consecutive_failures >= self.cfg.max_failures:
            self.abort_reason = f"{self.consecutive_failures} trials failed in a row; the last: {error}"
        self.tick()

    def tick(self) -> None:
        self.progress.set(self.trained_now + self.n_failed,
                          status=f"{len(self.running)} running | {self.n_failed} failed | phase {self.phase}")

    def should_stop(self) -> bool:
        return self.abort_reason is not None

    def fail_unfinished(self, error: str) -> None:
        self.n_failed += fail_running_trials(self.writer, self.running, error)


def stored_results(rdb, study_id: int) -> dict[tuple, float]:
    """Plan key -> accuracy of the study's COMPLETE scaling trials."""
    out = {}
    for t in rdb.get_all_trials(study_id, deepcopy=False):
        ua = t.user_attrs
        if t.state.name == "COMPLETE" and ua.get("method") and t.value is not None:
            out[plan_key(ua["method"], ua["phi"], ua.get("alpha"), ua.get("beta"), ua.get("gamma"),
                         ua.get("coefficient"))] = float(t.value)
    return out


def _resolve_base(cfg: ScaleConfig):
    from nasengine.zoo.resolve import resolve_text, resolve_trial

    if (cfg.base is None) == (cfg.base_study is None):
        raise NasError("name the base network: --base G (a built-in name or a block genotype text), or "
                       "--study-name S --trial N")
    if cfg.base is not None:
        return resolve_text(cfg.base, cfg.space)
    if cfg.base_trial is None:
        raise NasError(f"--trial N: which trial of study {cfg.base_study!r} to scale (-1: the best)")
    return resolve_trial(cfg.storage, cfg.base_study, None if cfg.base_trial < 0 else cfg.base_trial, cfg.space)


@dataclass
class _Prepared:
    genotype: Any
    space: Any
    settings: dict[str, Any]  # build_network kwargs of the base network (incl. skeleton and shape)
    base: dict[str, Any]  # its width, depth, image_size
    evaluator: Any
    executor: Any
    study_name: str


def prepare_scale(cfg: ScaleConfig) -> _Prepared:
    """Every input checked, the evaluator and executor made; no storage touched."""
    from nasengine.data import dataset_shape, prepare_dataset
    from nasengine.engine.evaluators import TrainEvaluator
    from nasengine.execution import make_executor
    from nasengine.spaces import load_space
    from nasengine.zoo.presets import network_settings
    from nasengine.zoo.resolve import trial_network

    st.check_storage_url(cfg.storage)
    resolved = _resolve_base(cfg)
    if resolved.space is None:
        raise NasError(f"{resolved.label}: no search space fits it; name one with space:")
    space = load_space(resolved.space)
    g = resolved.genotype
    if getattr(space, "kind", "cell") != "blocks":
        raise NasError(f"{resolved.label} is a cell genotype; scaling needs a block network (width, depth, resolution)")
    network = (trial_network(resolved.study_attrs, resolved.trial) if resolved.trial else None) or {}
    shape = dataset_shape(cfg.dataset)
    if network and cfg.preset is None:  # a searched trial: its own network, on this dataset
        settings = {**network, **shape, **cfg.network}
    else:
        settings = network_settings(space, cfg.preset or "digits", dataset_shape=shape, **cfg.network)
    settings["image_size"] = cfg.resolution or settings["image_size"]
    base = {"width": float(settings.get("width", 1.0)), "depth": float(settings.get("depth", 1.0)),
            "image_size": int(settings["image_size"])}
    prepare_dataset(cfg.dataset, data_dir=cfg.data_dir, download=cfg.download, stream=sys.stderr)
    macro = {k: v for k, v in settings.items() if k not in _DATA_KEYS}
    evaluator = TrainEvaluator(space=resolved.space, dataset=cfg.dataset, data_dir=cfg.data_dir, epochs=cfg.epochs,
                               network=macro, train=cfg.train, threads=max(1, int(cfg.cpus_per_trial)))
    evaluator.config(cfg.seed)  # bad training settings: NasError now
    if cfg.latency:
        try:
            import nasengine.profiler  # noqa: F401 - present?
        except ImportError:
            raise NasError("--latency needs nasengine.profiler, which this installation lacks") from None
    executor = make_executor(cfg.executor, cfg.workers, cfg.cpus_per_trial, cfg.gpus_per_trial, cfg.ray_address)
    return _Prepared(g, space, settings, base, evaluator, executor, study_name(cfg))


def study_name(cfg: ScaleConfig) -> str:
    """The study's name: ``study_name``, else ``STUDY-scale`` for a stored trial's base, ``scale-NAME-DATASET``
    for a built-in one and ``scale-DATASET`` for a genotype text."""
    if cfg.study_name:
        return cfg.study_name
    if cfg.base_study:
        return f"{cfg.base_study}-scale"
    named = cfg.base is not None and "|" not in cfg.base and " " not in cfg.base.strip()
    return f"scale-{cfg.base.strip()}-{cfg.dataset}" if named else f"scale-{cfg.dataset}"


def run_scale(cfg: ScaleConfig, stream: TextIO | None = sys.stderr) -> ScaleResult:
    """Run (or resume) the scaling study ``cfg`` describes, then write its report."""
    from nasengine.data import validation_size
    from nasengine.engine.config import plain

    t0 = time.monotonic()
    p = prepare_scale(cfg)
    config = plain({**cfg.to_dict(), "storage": st.display_url(cfg.storage), "study_name": p.study_name})
    shown = st.display_url(cfg.storage)
    if st.storage_state(cfg.storage) not in ("missing", "empty"):
        rdb = st.connect(cfg.storage, create=False)
        study_id = st.find_study_id(rdb, p.study_name)
        if study_id is not None:
            attrs = rdb.get_study_user_attrs(study_id)
            if attrs.get("kind") != "scale":
                raise NasError(f"study {p.study_name!r} in {shown} is not a scaling study; use another --study-name")
            diffs = scale_differences(attrs.get("config") or {}, config)
            if diffs:
                raise NasError(f"study {p.study_name!r} in {shown} was made with other settings: {'; '.join(diffs)}. "
                               "Use the same settings to resume it, or another --study-name")
    flops = network_flops(p.genotype.to_data(), p.settings)
    progress = Progress(None, "scale", stream=stream, enabled=stream is not None, unit="trained")
    progress.message(f"nasengine scale: study {p.study_name} in {shown}; {p.space.format(p.genotype)} at width "
                     f"{p.base['width']:g}, "
                     f"depth {p.base['depth']:g}, resolution {p.base['image_size']} on {cfg.dataset}; "
                     f"{p.executor.describe()}")
    p.executor.start()
    source = None
    try:
        rdb = st.connect(cfg.storage, create=True)
        study_id = st.find_study_id(rdb, p.study_name)
        resumed = study_id is not None
        if study_id is None:
            study_id = st.create_study(rdb, p.study_name, {
                "config": config, "space": p.space.name, "dataset": cfg.dataset, "network": plain(p.settings),
                "kind": "scale", "algo": "scale", "val_size": validation_size(cfg.dataset)})
        dead = st.fail_running(rdb, study_id, "left RUNNING by a scaling run that stopped (marked FAIL on resume)")
        done = stored_results(rdb, study_id)
        if resumed:
            progress.message(f"resuming: {len(done)} COMPLETE scaling trial(s)"
                             + (f"; {len(dead)} left RUNNING marked FAIL" if dead else ""))
        writer = st.TrialWriter(rdb, study_id, p.space)
        source = ScaleSource(writer, p.genotype, p.base, cfg, flops, done, progress)
        source.tick()
        p.executor.run(functools.partial(run_scaled, p.evaluator), source)
        why = source.abort_reason or "stopped"
        source.fail_unfinished(f"the scaling run stopped before this trial finished ({why})")
    except KeyboardInterrupt:
        if source is not None:
            source.fail_unfinished("interrupted (Ctrl-C)")
        raise
    finally:
        progress.close()
        p.executor.close()
    if source.abort_reason:
        raise NasError(f"scaling stopped: {source.abort_reason}")
    text, most_accurate = scale_report(cfg.storage, p.study_name, cfg.report_dir)
    complete = len(stored_results(rdb, study_id))
    return ScaleResult(cfg.storage, p.study_name, complete, source.n_failed, source.trained_now,
                       time.monotonic() - t0, source.best, resumed, text, most_accurate)


def scale_report(storage: str, study_name: str, out_dir: str | Path = ".") -> tuple[str, int]:
    """Write the report of a stored scaling study (``STUDY.csv``, ``STUDY.png`` in ``out_dir``); returns
    the text to print and the number of the most accurate trial (the first of equals)."""
    from nasengine.engine.scale_report import rows_from_trials, write_report

    study = st.open_study(storage, study_name)
    if study.user_attrs.get("kind") != "scale":
        raise NasError(f"study {study_name!r} is not a scaling study (made by nasengine scale)")
    rows = rows_from_trials(study.get_trials(deepcopy=False))
    text, _, _ = write_report(rows, out_dir, study_name, study.user_attrs.get("val_size"))
    return text, max(rows, key=lambda r: r["accuracy"])["trial"]


def summary(result: ScaleResult) -> str:
    lines = [result.report, "",
             f"trained {result.trained_now} network(s) in {duration(result.seconds)}; the study has "
             f"{result.n_complete} COMPLETE and {result.n_failed} failed trial(s) from this run",
             f"storage:   {st.display_url(result.storage)}", f"study:     {result.study_name}"]
    if result.best:
        lines.append("best grid coefficients: alpha={:g} beta={:g} gamma={:g}".format(*result.best))
    if result.most_accurate is not None:
        lines.append(f"export:    nasengine export --storage {st.display_url(result.storage)} --study-name "
                     f"{result.study_name} --trial {result.most_accurate} --out scaled.py (the most accurate)")
    return "\n".join(lines)

"""The search driver: study + algorithm + executor + evaluator. Only the driver writes the study.

The loop: the algorithm proposes (``ask``); a candidate whose canonical hash was already trained
(COMPLETE) in the study is not trained again: its stored result is told to the algorithm at once.
A candidate identical to one still training waits for that one's result. Anything else becomes a
RUNNING trial in the study and a task for the executor; its epochs arrive as intermediate values, its
result completes the trial (or fails it, with the error text in user attr ``error``) and is told to
the algorithm.

Budget: ``trials`` is the number of COMPLETE (trained) trials the study ends with. Failed trials and
duplicates do not count, so a search that is killed and run again with the same command ends with
exactly ``trials`` COMPLETE trials. Two guards stop a search that cannot get there: ``max_failures``
failures in a row (a broken evaluator) and ``max_duplicates`` already-trained proposals in a row (an
exhausted space or a stuck algorithm).

Resume: the same command finds the study by name (``{space}-{algo}-{dataset}`` unless given), refuses
a different configuration (runtime keys such as ``trials`` and ``workers`` may change), marks the
trials a dead driver left RUNNING as FAIL, and rebuilds the algorithm by telling a fresh one the
study's finished trials in the order they finished. Trials run under this driver keep their parents
across the restart because parents are trial numbers.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import functools
import json
import math
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from nasengine.errors import NasError, error_text
from nasengine.resources import resource_dir
from nasengine.progress import Progress, duration
from nasengine.storage.study import DEFAULT_STORAGE, display_url

# ------------------------------------------------------------------------------------------- config

# Defaults for a real small search on digits (studies/quick.yaml holds the same): one candidate is about 15 s
# of one core for 4 epochs of the space's N=1, F=16 network (3 epochs leave random cells near 0.9), two at
# a time; measured 1m50s-4m15s on 2 cores of which another process kept one busy. Best accuracy ~0.97.
DEFAULT_TRIALS = 16
DEFAULT_EPOCHS = 4
DEFAULT_WORKERS = 2

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
    max_duplicates: int = 200
    download: bool = False
    diagrams: bool = True
    artifact_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def default_study_name(self) -> str:
        return f"{Path(self.space).stem}-{self.algo}-{self.dataset}"


# Keys that may differ when a study is resumed: how much, where and with what it runs.
RUNTIME_KEYS = frozenset({"trials", "workers", "cpus_per_trial", "gpus_per_trial", "ray_address", "executor",
                          "storage", "study_name", "data_dir", "max_failures", "max_duplicates", "download",
                          "diagrams", "artifact_dir"})

_TYPES: dict[str, tuple[type, ...]] = {
    "space": (str,), "algo": (str,), "algo_settings": (dict,), "dataset": (str,), "data_dir": (str,),
    "trials": (int,), "epochs": (int,), "seed": (int,), "init": (list, str), "preset": (str,),
    "network": (dict,), "train": (dict,), "workers": (int,), "cpus_per_trial": (int, float),
    "gpus_per_trial": (int, float), "ray_address": (str,), "executor": (str,), "storage": (str,),
    "study_name": (str,), "max_failures": (int,), "max_duplicates": (int,), "download": (bool,),
    "diagrams": (bool,), "artifact_dir": (str,),
}


def config_from_mapping(values: dict[str, Any], source: str = "configuration",
                        base: SearchConfig | None = None) -> SearchConfig:
    """``base`` (or the defaults) updated with ``values``; NasError for unknown keys or wrong types."""
    if not isinstance(values, dict):
        raise NasError(f"{source}: expected a mapping of settings")
    unknown = sorted(set(values) - set(_TYPES))
    if unknown:
        raise NasError(f"{source}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(_TYPES))})")
    cfg = dataclasses.replace(base) if base is not None else SearchConfig()
    for key, value in values.items():
        if value is None and key in ("data_dir", "preset", "ray_address", "study_name", "artifact_dir"):
            setattr(cfg, key, None)
            continue
        types = _TYPES[key]
        if isinstance(value, bool) != (bool in types) or not isinstance(value, types):
            want = " or ".join({float: "number", bool: "true or false"}.get(t, t.__name__) for t in types)
            raise NasError(f"{source}: {key} must be a {want}, got {value!r}")
        if key == "init":
            value = split_init(value) if isinstance(value, str) else [str(v) for v in value]
        elif key in ("algo_settings", "network", "train"):
            value = dict(value)
        elif key in ("cpus_per_trial", "gpus_per_trial"):
            value = float(value)
        setattr(cfg, key, value)
    return cfg


def load_config_file(path: str) -> dict[str, Any]:
    """The settings of a study configuration file (``studies/NAME.yaml``, a NAME, or a path)."""
    import yaml

    p = Path(path)
    if not p.is_file() and not path.endswith((".yaml", ".yml")):
        candidates = [Path.cwd() / "studies" / f"{path}.yaml", STUDIES_DIR / f"{path}.yaml"]
        p = next((c for c in candidates if c.is_file()), p)
    if not p.is_file():
        known = ", ".join(sorted(q.stem for q in STUDIES_DIR.glob("*.yaml"))) if STUDIES_DIR.is_dir() else ""
        raise NasError(f"no study configuration {path!r}" + (f" (known: {known})" if known else ""))
    try:
        values = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise NasError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise NasError(f"{p}: a study configuration must be a mapping of settings")
    config_from_mapping(values, str(p))  # check keys and types now, with the file's name
    return values


STUDIES_DIR = resource_dir("studies")


def split_init(text: str) -> list[str]:
    """``--init`` value: a comma-separated list of names, or one genotype text (which may hold commas)."""
    text = text.strip()
    if ":" in text or "|" in text:
        return [text]
    return [part.strip() for part in text.split(",") if part.strip()]


def _normalise(value: Any) -> Any:
    return json.loads(json.dumps(value))


def config_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key stored (now current)`` for each identity setting that differs."""
    diffs = []
    for key in sorted((set(stored) & set(current)) - RUNTIME_KEYS):
        a, b = _normalise(stored[key]), _normalise(current[key])
        if a != b:
            diffs.append(f"{key} {json.dumps(a)} (now {json.dumps(b)})")
    return diffs


# ------------------------------------------------------------------------------------------ prepare


def resolve_init(space, names: list[str]) -> list[tuple[str, Any]]:
    """``(label, genotype)`` for each ``--init`` entry: a published name or a genotype text."""
    from nasengine.zoo.published import PUBLISHED, get_published

    out = []
    for entry in names:
        if entry in PUBLISHED:
            g, label = get_published(entry), entry
        elif ":" in entry or "|" in entry:
            g, label = space.parse(entry), "genotype"
        else:
            raise NasError(f"--init {entry!r} is neither a published genotype ({', '.join(sorted(PUBLISHED))}) "
                           "nor a genotype text")
        try:
            space.validate(g)
            space.to_params(g)
        except NasError as e:
            raise NasError(f"--init {label}: not in space {space.name}: {e}") from None
        out.append((label, g))
    return out


def network_settings(cfg: SearchConfig, space, data) -> dict[str, Any]:
    """The ``build_network`` keyword arguments every candidate is built with (study attr ``network``):
    the preset (default ``digits``: the space's own small search network) at the dataset's shape,
    with ``cfg.network`` overrides."""
    from nasengine.zoo.presets import network_settings as preset_settings

    return dict(preset_settings(space, cfg.preset or "digits", dataset_shape=data, **cfg.network))


_DATA_KEYS = ("num_classes", "in_channels", "image_size")


@dataclass
class Prepared:
    cfg: SearchConfig
    space: Any
    make_algorithm: Callable[[], Any]
    init: list[tuple[str, Any]]
    evaluator: Callable
    network: dict[str, Any]
    executor: Any
    study_name: str
    storage: str
    artifact_dir: str


def prepare(cfg: SearchConfig, evaluator: Callable | None = None, executor=None,
            network: dict[str, Any] | None = None, check_machine: bool = True) -> Prepared:
    """Check everything a search needs, touching no storage. NasError for any bad input.

    ``check_machine=False`` leaves out what depends on this machine (dataset files, a GPU), so a
    configuration meant for another machine can be validated here."""
    from nasengine.algorithms import make_algorithm
    from nasengine.data.datasets import dataset_shape, prepare_dataset
    from nasengine.execution.executors import make_executor
    from nasengine.spaces.cell import load_space
    from nasengine.storage.study import check_storage_url, default_artifact_dir

    for key in ("trials", "epochs", "workers", "max_failures", "max_duplicates"):
        if getattr(cfg, key) < 1:
            raise NasError(f"{key} must be a positive integer, got {getattr(cfg, key)}")
    space = load_space(cfg.space)
    settings = dict(cfg.algo_settings)  # over the algorithm's own defaults
    make_algorithm(cfg.algo, space, cfg.seed, **settings)  # unknown name or settings: NasError now
    init = resolve_init(space, cfg.init)
    check_storage_url(cfg.storage)
    if executor is None:
        executor = make_executor(cfg.executor, cfg.workers, cfg.cpus_per_trial, cfg.gpus_per_trial, cfg.ray_address)
        if check_machine and cfg.executor == "ray" and not cfg.ray_address and cfg.gpus_per_trial > 0:
            import torch

            if not torch.cuda.is_available():
                raise NasError(f"--gpus-per-trial {cfg.gpus_per_trial:g} but this machine has no GPU "
                               "(and no --ray-address was given)")
    if evaluator is None:
        from nasengine.engine.evaluators import TrainEvaluator

        shape = dataset_shape(cfg.dataset)
        if check_machine:
            prepare_dataset(cfg.dataset, data_dir=cfg.data_dir, download=cfg.download, stream=sys.stderr)
        network = network_settings(cfg, space, shape)
        macro = {k: v for k, v in network.items() if k not in _DATA_KEYS}
        threads = max(1, int(cfg.cpus_per_trial))  # torch's threads follow the trial's CPUs, wherever it runs
        evaluator = TrainEvaluator(space=cfg.space, dataset=cfg.dataset, data_dir=cfg.data_dir, epochs=cfg.epochs,
                                   network=macro, train=cfg.train, threads=threads)
        evaluator.config(cfg.seed)  # bad training settings: NasError now
    return Prepared(cfg=cfg, space=space, make_algorithm=lambda: make_algorithm(cfg.algo, space, cfg.seed, **settings),
                    init=init, evaluator=evaluator, network=dict(network or {}), executor=executor,
                    study_name=cfg.study_name or cfg.default_study_name(), storage=cfg.storage,
                    artifact_dir=cfg.artifact_dir or str(default_artifact_dir(cfg.storage)))


def study_config(p: Prepared) -> dict[str, Any]:
    """The configuration stored with the study (with its resolved name and a password-free storage URL)."""
    d = p.cfg.to_dict()
    d["storage"] = display_url(p.cfg.storage)
    d["study_name"] = p.study_name
    return _normalise(d)


# ------------------------------------------------------------------------------------------- driver


def search_progress(total: int, stream: TextIO | None) -> Progress:
    """The search's live line: ``search: 3/16 trained | 1 running | 0 failed | best 0.9712 (#4) | 41.0s``
    (``stream`` None: silent)."""
    return Progress(total, "search", stream=stream, enabled=stream is not None, unit="trained")


class CellDiagrams:
    """Attaches each trial's cell diagram (a PNG) as an Optuna artifact while the trial is RUNNING.

    The worker draws it after training (``run_candidate``: matplotlib costs about 0.4 s a diagram, which
    the one driver would otherwise spend per trial) and sends the bytes back with the result; the driver
    draws only for trials that failed. Drawing never stops a search: the first failure is reported in one
    line, later ones silently."""

    def __init__(self, storage, study_name: str, artifact_dir: str, progress: Progress) -> None:
        import optuna

        self.study = optuna.Study(study_name, storage=storage)
        self.artifact_dir = artifact_dir
        self.progress = progress
        self.failures = 0

    def attach(self, trial_id: int, genotype=None, result: dict | None = None) -> None:
        """Attach the PNG a worker sent in ``result`` (base64 under ``diagram_png``), else draw ``genotype``."""
        from nasengine.viz import draw

        try:
            if result is not None and result.get("diagram_error"):
                raise NasError(result["diagram_error"])
            if result is not None and result.get("diagram_png"):
                draw.attach_png(self.study, trial_id, base64.b64decode(result["diagram_png"]), self.artifact_dir)
            elif genotype is not None:
                draw.attach_cell_diagram(self.study, trial_id, genotype, self.artifact_dir)
        except Exception as e:  # noqa: BLE001 - a diagram is a convenience, never a reason to stop
            if not self.failures:
                self.progress.message(f"warning: no cell diagram for the trials ({error_text(e)}); the search goes on")
            self.failures += 1


def run_candidate(evaluator: Callable, payload: dict, report: Callable[[int, float], None]) -> dict:
    """What one trial runs on a worker: the evaluator on the payload's genotype text and seed, then (when
    the payload asks, as ``diagram: (genotype, title)``) the cell diagram, as base64 PNG in the result."""
    result = evaluator(payload["genotype"], payload["seed"], report)
    diagram = payload.get("diagram")
    if diagram is not None and isinstance(result, dict):
        try:
            from nasengine.viz.draw import genotype_png

            result["diagram_png"] = base64.b64encode(genotype_png(*diagram)).decode("ascii")
        except Exception as e:  # noqa: BLE001 - the driver reports it once; the trial stands
            result["diagram_error"] = error_text(e)
    return result


@dataclass
class _Running:
    trial_id: int
    number: int
    genotype: Any
    hash: str
    parent: int | None
    steps: set = field(default_factory=set)


_STANDARD_RESULT_KEYS = ("params", "flops", "train_seconds")
_EXTRA_RESULT_KEYS = ("val_acc", "test_acc", "epochs", "device")


class Driver:
    """The executor's task source: proposes, dedups, records, tells. See the module docstring."""

    def __init__(self, space, algorithm, writer, target: int, seed: int, init: list[tuple[str, Any]],
                 progress: Progress, max_failures: int = 10, max_duplicates: int = 200,
                 diagrams: CellDiagrams | None = None) -> None:
        self.space = space
        self.algorithm = algorithm
        self.writer = writer
        self.target = target
        self.seed = seed
        self.progress = progress
        self.max_failures = max_failures
        self.max_duplicates = max_duplicates
        self.complete: dict[str, tuple[int, float]] = {}  # hash -> (number, value) of COMPLETE trials
        self.running: dict[int, _Running] = {}
        self.parked: dict[str, list] = collections.defaultdict(list)
        self.ready: collections.deque = collections.deque()
        self.n_complete = 0
        self.n_failed = 0
        self.n_duplicates = 0
        self.trained_now = 0
        self.best: tuple[float, int, str] | None = None  # (value, number, genotype text)
        self.consecutive_failures = 0
        self.consecutive_duplicates = 0
        self.finish_reason: str | None = None  # stop asking, let running trials end
        self.abort_reason: str | None = None  # stop now
        self._init = list(init)
        self.diagrams = diagrams

    # ---- resume -------------------------------------------------------------------------------
    def resume(self) -> list[int]:
        """Take over the writer's study: mark the trials a dead driver left RUNNING as FAIL (their
        numbers are returned), then replay the finished trials."""
        from nasengine.storage.study import fail_running, read_history

        storage, study_id = self.writer.storage, self.writer.study_id
        dead = fail_running(storage, study_id, "left RUNNING by a search that stopped (marked FAIL on resume)")
        self.replay(read_history(storage, study_id))
        return dead

    def replay(self, rows) -> None:
        """Tell the algorithm the study's finished trials (HistoryRow, in finishing order)."""
        from nasengine.algorithms import Record

        for row in rows:
            if row.genotype is None:
                continue
            try:
                g = self.space.parse(row.genotype)
            except NasError:
                continue
            h = row.hash or self.space.hash(g)
            if row.state == "COMPLETE" and row.value is not None and math.isfinite(row.value):
                self.algorithm.tell(Record(row.number, g, float(row.value), row.parent, h))
                self.complete.setdefault(h, (row.number, float(row.value)))
                self.n_complete += 1
                if self.best is None or row.value > self.best[0]:
                    self.best = (float(row.value), row.number, row.genotype)
            else:
                self.algorithm.tell(Record(row.number, g, None, row.parent, h))
                self.n_failed += 1

    def queue_init(self) -> None:
        """Put the ``--init`` genotypes first in line (those already trained in the study are skipped)."""
        from nasengine.algorithms import Proposal

        for label, g in self._init:
            if self.space.hash(g) not in self.complete:
                self.ready.append(Proposal(g, None, f"init:{label}"))

    # ---- TaskSource ---------------------------------------------------------------------------
    def next_task(self):
        from nasengine.execution.executors import FINISHED, Task

        if self.abort_reason or self.finish_reason or self.n_complete >= self.target:
            return FINISHED
        if self.n_complete + len(self.running) >= self.target:
            return None
        for _ in range(50):  # at most this many proposals per call; the executor asks again
            proposal = self.ready.popleft() if self.ready else self.algorithm.ask()
            g = proposal.genotype
            h = self.space.hash(g)
            if h in self.complete or any(r.hash == h for r in self.running.values()):
                self.consecutive_duplicates += 1
                if h in self.complete:
                    self._tell_duplicate(proposal, *self.complete[h])
                else:
                    self.parked[h].append(proposal)
                if self.consecutive_duplicates >= self.max_duplicates:
                    self.finish_reason = (f"the algorithm proposed {self.consecutive_duplicates} already-trained "
                                          "candidates in a row (is the space exhausted?)")
                    return FINISHED
                continue
            self.consecutive_duplicates = 0
            trial_id = self._launch(proposal, h)
            payload = {"genotype": self.space.format(g), "seed": self.seed}
            if self.diagrams is not None:
                payload["diagram"] = (g, f"trial {self.running[trial_id].number}")
            return Task(trial_id, payload)
        return None

    def _launch(self, proposal, h: str) -> int:
        g = proposal.genotype
        attrs = {"genotype": self.space.format(g), "hash": h, "parent": proposal.parent, "seed": self.seed,
                 "note": proposal.note}
        trial_id, number = self.writer.start(self.space.to_params(g), attrs)
        self.running[trial_id] = _Running(trial_id, number, g, h, proposal.parent)
        self.tick()
        return trial_id

    def _tell_duplicate(self, proposal, number: int, value: float) -> None:
        from nasengine.algorithms import Record

        self.n_duplicates += 1
        self.algorithm.tell(Record(number, proposal.genotype, value, proposal.parent))

    def on_report(self, key: int, step: int, value: float) -> None:
        r = self.running.get(key)
        if r is None or step in r.steps:
            return
        self.writer.report(key, step, value)
        r.steps.add(step)

    def on_result(self, key: int, result: dict) -> None:
        r = self.running.get(key)
        if r is None:
            return
        value = result.get("value") if isinstance(result, dict) else None
        try:
            value = float(value)
        except (TypeError, ValueError):
            value = None
        if value is None or not math.isfinite(value):
            self.on_error(key, f"EvaluatorError: the evaluator returned value {result.get('value')!r}"
                          if isinstance(result, dict) else "EvaluatorError: the evaluator returned no dict")
            return
        from nasengine.algorithms import Record

        del self.running[key]
        for step, acc in enumerate(result.get("curve") or [], start=1):
            if step not in r.steps:
                self.writer.report(key, step, acc)
        attrs = {k: result[k] for k in _STANDARD_RESULT_KEYS + _EXTRA_RESULT_KEYS if result.get(k) is not None}
        if self.diagrams is not None:
            self.diagrams.attach(key, r.genotype, result)
        self.writer.complete(key, value, attrs)
        self.n_complete += 1
        self.trained_now += 1
        self.consecutive_failures = 0
        self.complete.setdefault(r.hash, (r.number, value))
        text = self.space.format(r.genotype)
        if self.best is None or value > self.best[0]:
            if self.best is not None:
                self.progress.message(f"new best: trial #{r.number} {value:.4f}")
            self.best = (value, r.number, text)
        self.algorithm.tell(Record(r.number, r.genotype, value, r.parent, r.hash))
        for proposal in self.parked.pop(r.hash, []):
            self._tell_duplicate(proposal, r.number, value)
        self.tick()

    def on_error(self, key: int, error: str, tb: str = "") -> None:
        r = self.running.pop(key, None)
        if r is None:
            return
        from nasengine.algorithms import Record

        attrs = {"error": error}
        if tb:
            attrs["traceback"] = tb[-8000:]
        if self.diagrams is not None:
            self.diagrams.attach(key, r.genotype)
        self.writer.fail(key, attrs)
        self.n_failed += 1
        self.consecutive_failures += 1
        self.progress.message(f"trial #{r.number} failed: {error}")
        self.algorithm.tell(Record(r.number, r.genotype, None, r.parent, r.hash))
        self.ready.extendleft(reversed(self.parked.pop(r.hash, [])))  # the waiting twins get trained instead
        if self.consecutive_failures >= self.max_failures:
            self.abort_reason = f"{self.consecutive_failures} trials failed in a row; the last: {error}"
        self.tick()

    def status(self) -> str:
        """The progress line's status: ``1 running | 0 failed | best 0.9712 (#4)``."""
        best = f"best {self.best[0]:.4f} (#{self.best[1]})" if self.best else "best -"
        return f"{len(self.running)} running | {self.n_failed} failed | {best}"

    def tick(self, force: bool = False) -> None:
        self.progress.set(self.n_complete, status=self.status(), force=force)

    def should_stop(self) -> bool:
        return self.abort_reason is not None

    def fail_unfinished(self, error: str) -> None:
        """Mark the trials still running FAIL (the search stopped before they finished)."""
        for key in list(self.running):
            del self.running[key]
            try:
                self.writer.fail(key, {"error": error})
            except Exception:  # noqa: BLE001 - best effort: a resume marks them FAIL anyway
                pass
            self.n_failed += 1


# -------------------------------------------------------------------------------------------- search


@dataclass
class SearchResult:
    storage: str
    study_name: str
    n_complete: int
    n_failed: int
    trained_now: int
    best: tuple[float, int, str] | None
    seconds: float
    resumed: bool = False
    stopped: str | None = None  # why it ended early, if it did
    artifact_dir: str | None = None  # where the cell diagrams went, when not the storage's default


def _peek(storage: str, study_name: str):
    """``(rdb, study_id)`` of an existing study, or ``(None, None)``. Reads only."""
    from nasengine.storage.study import connect, find_study_id, storage_state

    state = storage_state(storage)
    if state in ("missing", "empty"):
        return None, None
    rdb = connect(storage, create=False)  # "foreign": NasError
    return rdb, find_study_id(rdb, study_name)


def run_search(cfg: SearchConfig, evaluator: Callable | None = None, executor=None,
               network: dict[str, Any] | None = None, stream: TextIO | None = sys.stderr) -> SearchResult:
    """Run (or resume) the search ``cfg`` describes; returns what the study holds at the end."""
    from nasengine.storage import study as st

    t0 = time.monotonic()
    p = prepare(cfg, evaluator, executor, network)
    config = study_config(p)
    shown = display_url(p.storage)

    # Read-only look at the storage first: a mismatching study must stay untouched.
    rdb, study_id = _peek(p.storage, p.study_name)
    if study_id is not None:
        stored = rdb.get_study_user_attrs(study_id).get("config")
        if isinstance(stored, dict):
            diffs = config_differences(stored, config)
            if diffs:
                raise NasError(f"study {p.study_name!r} in {shown} was made with other settings: "
                               f"{'; '.join(diffs)}. Use the same settings to resume it, or another --study-name")
        done = st.count_complete(rdb, study_id)
        if done >= cfg.trials:
            rows = st.read_history(rdb, study_id, states=("COMPLETE",))
            best = max(((r.value, r.number, r.genotype) for r in rows if r.value is not None), default=None)
            failed = len(st.read_history(rdb, study_id, states=("FAIL",)))
            return SearchResult(p.storage, p.study_name, done, failed, 0, best, time.monotonic() - t0, True,
                                f"the study already has {done} COMPLETE trials (--trials {cfg.trials})")

    executor = p.executor
    progress = search_progress(cfg.trials, stream)
    progress.message(f"nasengine search: study {p.study_name} in {shown}; {cfg.trials} trials of "
                     f"{cfg.space}/{cfg.algo} on {cfg.dataset}; {executor.describe()}")
    executor.start()  # a Ray that cannot start fails here, before the storage is written
    driver = None
    try:
        rdb = st.connect(p.storage, create=True)
        study_id = st.find_study_id(rdb, p.study_name)
        resumed = study_id is not None
        if study_id is None:
            attrs = {"config": config, "space": Path(cfg.space).stem, "algo": cfg.algo, "dataset": cfg.dataset,
                     "network": _normalise(p.network), "kind": "search"}
            study_id = st.create_study(rdb, p.study_name, attrs)
        writer = st.TrialWriter(rdb, study_id, st.distributions_for(p.space))
        diagrams = CellDiagrams(rdb, p.study_name, p.artifact_dir, progress) if cfg.diagrams else None
        driver = Driver(p.space, p.make_algorithm(), writer, cfg.trials, cfg.seed, p.init, progress,
                        cfg.max_failures, cfg.max_duplicates, diagrams)
        if resumed:
            t1 = time.monotonic()
            dead = driver.resume()
            extra = f"; {len(dead)} trial(s) it left RUNNING marked FAIL" if dead else ""
            progress.message(f"resuming: {driver.n_complete} COMPLETE and {driver.n_failed} failed trials "
                             f"replayed in {time.monotonic() - t1:.2f}s{extra}")
        driver.queue_init()
        driver.tick(force=True)
        fn = functools.partial(run_candidate, p.evaluator)
        executor.run(fn, driver)
        stopped = driver.abort_reason or driver.finish_reason
        driver.fail_unfinished(f"the search stopped before this trial finished ({stopped or 'stopped'})")
        driver.tick()  # the count and status for the final line that closing the progress writes
    except KeyboardInterrupt:
        if driver is not None:
            driver.fail_unfinished("interrupted (Ctrl-C)")
        raise
    finally:
        progress.close()
        executor.close()
    if driver.abort_reason:
        raise NasError(f"search stopped: {driver.abort_reason}")
    custom_dir = cfg.diagrams and cfg.artifact_dir is not None
    return SearchResult(p.storage, p.study_name, driver.n_complete, driver.n_failed, driver.trained_now,
                        driver.best, time.monotonic() - t0, resumed, driver.finish_reason,
                        p.artifact_dir if custom_dir else None)


def summary(result: SearchResult) -> str:
    """The closing report: where the study is, the best genotype, and the commands to look at it."""
    storage = display_url(result.storage)
    lines = []
    if result.stopped:
        lines.append(f"stopped: {result.stopped}")
    lines.append(f"trained {result.trained_now} candidate(s) in {duration(result.seconds)}; the study has "
                 f"{result.n_complete} COMPLETE and {result.n_failed} failed trial(s)")
    lines.append(f"storage:   {storage}")
    lines.append(f"study:     {result.study_name}")
    if result.best:
        value, number, text = result.best
        lines.append(f"best:      trial #{number}, validation accuracy {value:.4f}")
        lines.append(f"genotype:  {text}")
    q = shlex.quote
    artifacts = f" --artifact-dir {q(result.artifact_dir)}" if result.artifact_dir else ""
    lines.append(f"dashboard: nasengine dashboard --storage {q(storage)}{artifacts}")
    lines.append(f"export:    nasengine export --storage {q(storage)} --study-name {q(result.study_name)} "
                 "--out best.py")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- train


def train_one(genotype_text: str, *, space_name: str, dataset: str, epochs: int, preset: str | None = None,
              data_dir: str | None = None, seed: int = 0, storage: str = DEFAULT_STORAGE,
              study_name: str | None = None, network_kwargs: dict | None = None, train: dict | None = None,
              holdout: bool = False, source: dict | None = None, stream: TextIO | None = sys.stderr) -> dict:
    """Train one network and record it as a single trial (the final retraining of a NAS paper).

    By default it trains on train + validation and its value is the test accuracy (``final``);
    ``holdout`` trains on the training split only: value = validation accuracy, ``test_acc`` as well.
    """
    from nasengine.storage import study as st
    from nasengine.data.datasets import prepare_dataset
    from nasengine.engine.evaluators import TrainEvaluator
    from nasengine.spaces.cell import load_space

    space = load_space(space_name)
    g = space.parse(genotype_text)
    params = space.to_params(g)
    st.check_storage_url(storage)
    if epochs < 1:
        raise NasError(f"epochs must be a positive integer, got {epochs}")
    data = prepare_dataset(dataset, data_dir=data_dir)
    cfg = SearchConfig(space=space_name, dataset=dataset, epochs=epochs, preset=preset, data_dir=data_dir,
                       seed=seed, train=dict(train or {}))
    network = dict(network_kwargs) if network_kwargs else network_settings(cfg, space, data)
    macro = {k: v for k, v in network.items() if k not in _DATA_KEYS}
    train_settings = dict(train or {})
    if holdout:
        train_settings["test"] = True
    evaluator = TrainEvaluator(space=space_name, dataset=dataset, data_dir=data_dir, epochs=epochs, network=macro,
                               train=train_settings, final=not holdout)
    evaluator.config(seed)
    name = study_name or f"train-{Path(space_name).stem}-{dataset}"
    config = _normalise({"kind": "train", "space": space_name, "dataset": dataset, "preset": preset,
                         "epochs": epochs, "seed": seed, "train": train_settings, "holdout": holdout,
                         "network": network})

    rdb = st.connect(storage, create=True)
    study_id = st.find_study_id(rdb, name)
    if study_id is None:
        attrs = {"config": config, "space": Path(space_name).stem, "algo": "train", "dataset": dataset,
                 "network": _normalise(network), "kind": "train"}
        study_id = st.create_study(rdb, name, attrs)
    else:
        stored = rdb.get_study_user_attrs(study_id).get("network")
        if stored is not None and _normalise(stored) != _normalise(network):
            raise NasError(f"study {name!r} holds networks built with other settings; use another --study-name")
    writer = st.TrialWriter(rdb, study_id, st.distributions_for(space))
    attrs = {"genotype": space.format(g), "hash": space.hash(g), "parent": None, "seed": seed,
             "note": "train" + (f" from {source['study']} #{source['trial']}" if source else ""),
             "split": "val" if holdout else "test", "epochs": epochs}
    if source:
        attrs.update(source_study=source["study"], source_trial=source["trial"])
    trial_id, number = writer.start(params, attrs)
    progress = Progress(epochs, "training", stream=stream, enabled=stream is not None, unit="epochs")
    split = "validation" if holdout else "test"

    def report(step: int, value: float) -> None:
        writer.report(trial_id, step, value)
        progress.set(step, status=f"{split} accuracy {value:.4f}", force=True)

    try:
        with progress:
            result = evaluator(space.format(g), seed, report)
    except KeyboardInterrupt:
        writer.fail(trial_id, {"error": "interrupted (Ctrl-C)"})
        raise
    except Exception as e:  # noqa: BLE001
        import traceback

        writer.fail(trial_id, {"error": error_text(e), "traceback": traceback.format_exc()[-8000:]})
        raise NasError(f"training failed: {error_text(e)}") from None
    value = result["value"]
    extra = {k: result[k] for k in _STANDARD_RESULT_KEYS + ("val_acc", "test_acc") if result.get(k) is not None}
    writer.complete(trial_id, value, extra)
    return {"storage": storage, "study_name": name, "number": number, "value": value,
            "test_acc": result.get("test_acc"), "val_acc": result.get("val_acc"), **extra}


def trial_genotype(storage: str, study_name: str | None, number: int | None) -> tuple[str, str, dict, dict]:
    """``(genotype text, space name, study attrs, source)`` of a stored trial (best when number is None)."""
    from nasengine.storage.study import open_study, pick_trial

    study = open_study(storage, study_name)
    trial = pick_trial(study, number)
    text = trial.user_attrs.get("genotype")
    if not text:
        raise NasError(f"trial {trial.number} of study {study.study_name!r} has no genotype")
    attrs = study.user_attrs
    space = (attrs.get("config") or {}).get("space") or attrs.get("space")
    if not space:
        raise NasError(f"study {study.study_name!r} does not say which space it searched")
    return text, space, attrs, {"study": study.study_name, "trial": trial.number}


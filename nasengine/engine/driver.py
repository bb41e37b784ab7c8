"""The search driver: the executor's task source. It proposes, skips what was trained, records,
and tells; it is the only writer of a search's trials.

The loop: the algorithm proposes (``ask``); a candidate whose canonical hash was already trained
(COMPLETE) in the study is not trained again: its stored result is told to the algorithm at once.
A candidate identical to one still training waits for that one's result. Anything else becomes a
RUNNING trial in the study and a task for the executor; its epochs arrive as intermediate values, its
result completes the trial (or fails it, with the error text in user attr ``error``) and is told to
the algorithm.

Budget: ``trials`` is the number of COMPLETE (trained) trials the study ends with. Failed trials and
duplicates do not count, so a search that is killed and run again with the same command ends with
exactly ``trials`` COMPLETE trials (with ``count_failures``, failed trials spend the budget too).
Two guards stop a search that cannot get there: ``max_failures`` failures in a row (a broken evaluator)
and ``max_duplicates`` already-trained proposals in a row (an exhausted space or a stuck algorithm).

Resume: the driver marks the trials a dead driver left RUNNING as FAIL and rebuilds the algorithm by
telling a fresh one the study's finished trials in the order they finished. Trials keep their parents
across the restart because parents are trial numbers.
"""

from __future__ import annotations

import base64
import collections
import math
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from nasengine.algorithms import Proposal, Record
from nasengine.engine.objectives import Scoring
from nasengine.errors import NasError, error_text
from nasengine.execution import FINISHED, Task
from nasengine.progress import Progress
from nasengine.storage import (
    TrialWriter,
    attach_png,
    fail_running,
    read_history,
    read_user_attrs,
    read_values,
    trial_counts,
)


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

    def __init__(self, storage, artifact_dir: str, progress: Progress) -> None:
        self.storage = storage
        self.artifact_dir = artifact_dir
        self.progress = progress
        self.failures = 0

    def attach(self, trial_id: int, number: int, genotype=None, result: dict | None = None) -> None:
        """Attach the PNGs a worker sent in ``result`` (base64 under ``NAME_png``: ``diagram_png`` is the
        cell diagram, ``alphas_png`` a supernet's architecture weights), else draw ``genotype``."""
        from nasengine.viz import genotype_png

        try:
            if result is not None and result.get("diagram_error"):
                raise NasError(result["diagram_error"])
            pictures = {("cells" if k == "diagram_png" else k[:-len("_png")]): base64.b64decode(v)
                        for k, v in (result or {}).items() if k.endswith("_png") and isinstance(v, str)}
            if "cells" not in pictures and genotype is not None:
                pictures["cells"] = genotype_png(genotype, f"trial {number}")
            for name, png in pictures.items():
                attach_png(self.storage, trial_id, png, self.artifact_dir, name=name)
        except Exception as e:  # noqa: BLE001 - a diagram is a convenience, never a reason to stop
            if not self.failures:
                self.progress.message(f"warning: no cell diagram for the trials ({error_text(e)}); the search goes on")
            self.failures += 1


@dataclass
class _Running:
    trial_id: int
    number: int
    genotype: Any  # None until a weight-sharing search's result names it
    hash: str | None
    parent: int | None
    steps: set = field(default_factory=set)
    values: tuple[float, ...] | None = None  # the study's values once it completed


_STANDARD_RESULT_KEYS = ("params", "flops", "train_seconds")


_EXTRA_RESULT_KEYS = ("val_acc", "test_acc", "epochs", "device", "node", "ray_trial")


class Driver:
    """The executor's task source: proposes, dedups, records, tells. See the module docstring."""

    def __init__(self, space, algorithm, writer, target: int, seed: int, init: list[tuple[str, Any]],
                 progress: Progress, max_failures: int = 10, max_duplicates: int = 200,
                 diagrams: CellDiagrams | None = None, scoring: Scoring | None = None,
                 count_failures: bool = False) -> None:
        self.space = space
        self.algorithm = algorithm
        self.writer = writer
        self.target = target
        self.seed = seed
        self.progress = progress
        self.max_failures = max_failures
        self.max_duplicates = max_duplicates
        self.count_failures = count_failures  # failed trials spend the budget too (--count-failures)
        self.complete: dict[str, tuple[int, float, tuple[float, ...]]] = {}  # hash -> (number, value, values)
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
        self.scoring = scoring or Scoring()
        self.latency: dict[str, float] = {}  # hash -> latency_ms of every candidate measured in the study
        self.stored_values: dict[int, tuple[float, ...]] = {}  # a resumed multi-objective study's values
        self.known: set[int] = set()  # trial ids told to the algorithm or started here (see refresh)
        self.elsewhere: dict[str, int] = {}  # hash -> number of trials other drivers of the study are running
        self._refreshed = self._orphans_checked = -math.inf
        self._counts: tuple[int, int] | None = None  # the study's trial counts at the last refresh
        self.weights = None  # a KeptWeights: which trained weights are kept as artifacts (None: none)

    # ---- resume -------------------------------------------------------------------------------
    def resume(self) -> list[int]:
        """Take over the writer's study: mark the trials a dead driver left RUNNING as FAIL (their
        numbers are returned), then replay the finished trials."""
        storage, study_id = self.writer.storage, self.writer.study_id
        dead = fail_running(storage, study_id, "left RUNNING by a search that stopped (marked FAIL on resume)")
        if self.scoring.probe is not None:
            for attrs in read_user_attrs(storage, study_id, ("hash", "latency_ms")).values():
                if isinstance(attrs.get("hash"), str) and isinstance(attrs.get("latency_ms"), (int, float)):
                    self.latency.setdefault(attrs["hash"], float(attrs["latency_ms"]))
        if self.scoring.multi:
            self.stored_values = read_values(storage, study_id)
        self.replay(read_history(storage, study_id))
        return dead

    def replay(self, rows) -> None:
        """Tell the algorithm the study's finished trials (HistoryRow, in finishing order)."""
        for row in rows:
            self.known.add(row.trial_id)
            if row.genotype is None:
                continue
            try:
                g = self.space.parse(row.genotype)
            except NasError:
                continue
            h = row.hash or self.space.hash(g)
            values = self.stored_values.get(row.number) if self.scoring.multi else (row.value,)
            if (row.state == "COMPLETE" and values is not None and len(values) == len(self.scoring.names)
                    and all(v is not None and math.isfinite(v) for v in values)):
                values = tuple(float(v) for v in values)
                self.algorithm.tell(Record(row.number, g, values[0], row.parent, h, values))
                self.complete.setdefault(h, (row.number, values[0], values))
                self.n_complete += 1
                if self.best is None or row.value > self.best[0]:
                    self.best = (float(row.value), row.number, row.genotype)
            else:
                self.algorithm.tell(Record(row.number, g, None, row.parent, h))
                self.n_failed += 1

    def queue_init(self) -> None:
        """Put the ``--init`` genotypes first in line (those already trained in the study are skipped)."""
        for label, g in self._init:
            if self.space.hash(g) not in self.complete:
                self.ready.append(Proposal(g, None, f"init:{label}"))

    @property
    def spent(self) -> int:
        """The budget used: COMPLETE trials, and failed ones when they count (``count_failures``)."""
        return self.n_complete + (self.n_failed if self.count_failures else 0)

    # ---- TaskSource ---------------------------------------------------------------------------
    def next_task(self):
        if self.abort_reason or self.finish_reason or self.spent >= self.target:
            return FINISHED
        self.refresh()
        if self.spent >= self.target:
            return FINISHED
        if self.spent + len(self.running) + len(self.elsewhere) >= self.target:
            return None
        for _ in range(50):  # at most this many proposals per call; the executor asks again
            proposal = self.ready.popleft() if self.ready else self.algorithm.ask()
            g = proposal.genotype
            h = self.space.hash(g)
            if h in self.complete or h in self.elsewhere or any(r.hash == h for r in self.running.values()):
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
            latency_ms = self._latency_before(g, h)
            trial_id = self._launch(proposal, h, latency_ms)
            if trial_id is None:  # another driver took this candidate, or the last of the budget, just now
                self.refresh(force=True)
                self.ready.appendleft(proposal)  # settled as a duplicate, or parked, on the next round
                return None
            payload = {"role": "train", "genotype": self.space.format(g), "seed": self.seed}
            if self.scoring.on_worker and latency_ms is None:
                payload["latency"] = True  # measured on the worker, after training
            if self.diagrams is not None:
                payload["diagram"] = (g, f"trial {self.running[trial_id].number}")
            return Task(trial_id, payload)
        return None

    def _latency_before(self, g, h: str) -> float | None:
        """The candidate's latency known before training: from the study's cache, else measured (or
        predicted) here on the driver; None when not asked for or the worker measures it."""
        if self.scoring.probe is None or h in self.latency or self.scoring.on_worker:
            return self.latency.get(h)
        self.latency[h] = self.scoring.probe.of(g)
        return self.latency[h]

    def _launch(self, proposal, h: str, latency_ms: float | None = None) -> int | None:
        """Start the candidate's trial; None when another driver of the study has it (RUNNING or COMPLETE),
        or the study's RUNNING and COMPLETE trials already make the budget."""
        g = proposal.genotype
        extra = {} if latency_ms is None else {"latency_ms": latency_ms}
        started = self.writer.start(g, seed=self.seed, parent=proposal.parent, note=proposal.note, hash=h,
                                    unique=True, limit=self.target - (self.spent - self.n_complete), **extra)
        if started is None:
            return None
        trial_id, number = started
        self.known.add(trial_id)
        self.running[trial_id] = _Running(trial_id, number, g, h, proposal.parent)
        self.tick()
        return trial_id

    def _tell_duplicate(self, proposal, number: int, value: float, values: tuple[float, ...]) -> None:
        self.n_duplicates += 1
        self.algorithm.tell(Record(number, proposal.genotype, value, proposal.parent, values=values))

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
        attrs = {k: result[k] for k in _STANDARD_RESULT_KEYS + _EXTRA_RESULT_KEYS if result.get(k) is not None}
        attrs["accuracy"] = value  # the final validation accuracy, whatever the study's values are
        try:
            self._take_genotype(r, result)
            if self.scoring.probe is not None:
                attrs["latency_ms"] = self._latency_after(r, result)
            values = self.scoring.values(attrs)
        except NasError as e:
            self.on_error(key, f"EvaluatorError: {e}")
            return
        del self.running[key]
        for step, acc in enumerate(result.get("curve") or [], start=1):
            if step not in r.steps:
                self.writer.report(key, step, acc)
        if self.diagrams is not None:
            self.diagrams.attach(key, r.number, r.genotype, result)
        if self.weights is not None and isinstance(result.get("weights_pt"), str):
            path = self._keep_weights(key, r.number, value, result["weights_pt"])
            if path:
                attrs["weights"] = path
        self.writer.complete(key, values if self.scoring.multi else values[0], attrs)
        self.n_complete += 1
        self.trained_now += 1
        self.consecutive_failures = 0
        value, r.values = values[0], values
        self.complete.setdefault(r.hash, (r.number, value, values))
        if self.best is None or value > self.best[0]:
            if self.best is not None:
                self.progress.message(f"new best: trial #{r.number} {value:.4f}")
            self.best = (value, r.number, self.space.format(r.genotype))
        self._learned(r, value)
        self.tick()

    def _keep_weights(self, key: int, number: int, value: float, weights_b64: str) -> str | None:
        """Store a trial's trained weights as an artifact when they are kept; the path for user attr
        ``weights`` (None when not kept, or when storing failed: reported, the trial stands)."""
        try:
            return self.weights.keep(key, value, weights_b64) or None
        except Exception as e:  # noqa: BLE001 - a full disk must not cost the trial
            self.progress.message(f"warning: trial #{number}'s weights not kept ({error_text(e)})")
            return None

    def _latency_after(self, r: _Running, result: dict) -> float:
        """A trained candidate's latency: the worker's measurement, the study's cache, or (a genotype
        known only now, from a weight-sharing search) measured here."""
        ms = result.get("latency_ms")
        if isinstance(ms, (int, float)) and not isinstance(ms, bool) and math.isfinite(ms):
            self.latency.setdefault(r.hash, float(ms))
        elif r.hash not in self.latency:
            try:
                self.latency[r.hash] = self.scoring.probe.of(r.genotype)
            except Exception as e:  # noqa: BLE001 - the trial fails with the reason; the search goes on
                raise NasError(f"latency: {error_text(e)}") from None
        return self.latency[r.hash]

    def on_error(self, key: int, error: str, tb: str = "") -> None:
        r = self.running.pop(key, None)
        if r is None:
            return
        attrs = {"error": error}
        if tb:
            attrs["traceback"] = tb[-8000:]
        if self.diagrams is not None and r.genotype is not None:
            self.diagrams.attach(key, r.number, r.genotype)
        self.writer.fail(key, attrs)
        self.n_failed += 1
        self.consecutive_failures += 1
        self.progress.message(f"trial #{r.number} failed: {error}")
        self._learned(r, None)
        if self.consecutive_failures >= self.max_failures:
            self.abort_reason = f"{self.consecutive_failures} trials failed in a row; the last: {error}"
        self.tick()

    def _take_genotype(self, r: _Running, result: dict) -> None:
        """A trial whose genotype comes with its result (weight sharing) records it here."""

    def _learned(self, r: _Running, value: float | None) -> None:
        """Tell the algorithm a finished trial (``value`` None: failed), and settle its waiting twins."""
        self.algorithm.tell(Record(r.number, r.genotype, value, r.parent, r.hash, r.values))
        if value is None:
            self.ready.extendleft(reversed(self.parked.pop(r.hash, [])))  # the waiting twins get trained instead
        else:
            for proposal in self.parked.pop(r.hash, []):
                self._tell_duplicate(proposal, r.number, value, r.values)

    # ---- other drivers of the same study ------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Take in what other drivers of the study did since the last look (at most every second, or
        ``force``): their finished trials are told to the algorithm as they land and count towards the
        budget; the candidates they are running are not trained here (proposals of them wait, like twins
        of this driver's own). Every 30 s, trials of drivers that died are marked FAIL. One narrow read
        of the study (``read_history``) when a cheap count says trials started or ended since the last one."""
        now = time.monotonic()
        if not force and now - self._refreshed < 1.0:
            return
        self._refreshed = now
        storage, study_id = self.writer.storage, self.writer.study_id
        self.writer.beat()
        if self.elsewhere and now - self._orphans_checked >= 30.0:
            self._orphans_checked = now
            for number in fail_running(storage, study_id, "its search stopped (marked FAIL by another driver)"):
                self.progress.message(f"trial #{number} of a stopped driver marked FAIL")
        counts = trial_counts(storage, study_id)
        if counts == self._counts:
            return
        self._counts = counts
        rows = [r for r in read_history(storage, study_id, states=("COMPLETE", "FAIL", "RUNNING"))
                if r.trial_id not in self.known]
        self.elsewhere = {r.hash: r.number for r in rows if r.state == "RUNNING" and r.hash}
        finished = [r for r in rows if r.state != "RUNNING"]
        if not finished:
            return
        if self.scoring.multi:
            self.stored_values = read_values(storage, study_id)
        self.replay(finished)
        for h in [h for h in self.parked if h not in self.elsewhere]:
            if h in self.complete:
                for proposal in self.parked.pop(h):
                    self._tell_duplicate(proposal, *self.complete[h])
            elif not any(r.hash == h for r in self.running.values()):  # it failed elsewhere: train it here
                self.ready.extendleft(reversed(self.parked.pop(h)))
        self.tick()

    def status(self) -> str:
        """The progress line's status: ``1 running | 0 failed | best 0.9712 (#4)``."""
        best = f"best {self.best[0]:.4f} (#{self.best[1]})" if self.best else "best -"
        return f"{len(self.running)} running | {self.n_failed} failed | {best}"

    def tick(self, force: bool = False) -> None:
        self.progress.set(self.n_complete, status=self.status(), force=force)
        self.writer.beat()  # every 10 s at most; the executor ticks while long trials run and nothing is asked

    def should_stop(self) -> bool:
        return self.abort_reason is not None

    def fail_unfinished(self, error: str) -> None:
        """Mark the trials still running FAIL (the search stopped before they finished)."""
        self.n_failed += fail_running_trials(self.writer, self.running, error)


def fail_running_trials(writer: TrialWriter, running: dict, error: str) -> int:
    """Mark the trials of ``running`` (keys: the writer's trial keys) FAIL with ``error`` and forget
    them; how many. Best effort: a resume marks any left RUNNING as FAIL anyway."""
    n = len(running)
    for key in list(running):
        del running[key]
        try:
            writer.fail(key, {"error": error})
        except Exception:  # noqa: BLE001 - best effort: a resume marks them FAIL anyway
            pass
    return n

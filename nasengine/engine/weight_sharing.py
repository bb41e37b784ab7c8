"""Weight-sharing searches (DARTS, ENAS) under the engine: each search is one trial.

``--algo darts|enas --trials K`` runs K searches with seeds ``seed .. seed+K-1``, each one Ray Tune
trial (several at once on fractional GPUs). A search trial starts without a genotype; its epochs
arrive as intermediate values (the supernet's validation accuracy), and its result brings the derived
genotype (params and ``genotype`` attr), the genotype derived after every epoch
(``derived_genotypes``), the parameter-free ops per epoch (``param_free_ops``) and a picture of the
architecture weights (an ``alphas`` artifact). ``--retrain-epochs E`` then trains the best search's
genotype from scratch as one more trial whose ``parent`` is that search. Resume: searches whose seed
finished are not run again.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

from nasengine.engine.driver import Driver, _Running
from nasengine.execution import FINISHED, Task

# algorithm name -> "module:class" of its search, a picklable evaluator of the engine's shape
WEIGHT_SHARING = {"darts": "nasengine.oneshot.darts:DartsSearch", "enas": "nasengine.oneshot.enas:EnasSearch"}

# result key -> trial user attr
_RESULT_ATTRS = {"derived": "derived_genotypes", "param_free": "param_free_ops", "alphas": "alphas",
                 "ops": "alpha_ops", "remedy_stop": "stopped_early"}


def make_search(algo: str, **settings: Any):
    """The weight-sharing search ``algo`` with ``settings`` (space, dataset, epochs, ...)."""
    module, _, name = WEIGHT_SHARING[algo].partition(":")
    return getattr(importlib.import_module(module), name)(**settings)


class WeightSharingDriver(Driver):
    """K searches, then (``retrain``) the best one's genotype trained from scratch."""

    def __init__(self, space, writer, searches: int, seed: int, progress, retrain: bool = False,
                 max_failures: int = 10, diagrams=None, scoring=None) -> None:
        super().__init__(space, None, writer, searches + int(retrain), seed, [], progress, max_failures,
                         diagrams=diagrams, scoring=scoring)
        self.searches = searches
        self.retrain = retrain
        self.done_seeds: set[int] = set()
        self.search_best: tuple[float, int, Any] | None = None  # (value, number, genotype)
        self.retrained = False
        self.seeds: dict[int, int] = {}  # trial id -> seed of the searches running

    def replay(self, rows) -> None:
        for row in rows:
            if row.state != "COMPLETE" or row.genotype is None or row.value is None or not math.isfinite(row.value):
                self.n_failed += row.state == "FAIL"
                continue
            self.n_complete += 1
            if self.best is None or row.value > self.best[0]:
                self.best = (float(row.value), row.number, row.genotype)
            if row.parent is None:
                self.done_seeds.add(row.seed)
                self._search_done(row.number, float(row.value), self.space.parse(row.genotype))
            else:
                self.retrained = True

    def next_task(self):
        if self.abort_reason or self.finish_reason or self.n_complete >= self.target:
            return FINISHED
        running = set(self.seeds.values())
        for seed in range(self.seed, self.seed + self.searches):
            if seed not in self.done_seeds and seed not in running:
                trial_id, number = self.writer.start(None, seed=seed, note="search")
                self.running[trial_id] = _Running(trial_id, number, None, None, None)
                self.seeds[trial_id] = seed
                self.tick()
                return Task(trial_id, {"role": "search", "genotype": "", "seed": seed})
        if self.running:
            return None
        if self.retrain and not self.retrained:
            if self.search_best is None:
                self.finish_reason = "no search finished, so there is nothing to retrain"
                return FINISHED
            value, number, g = self.search_best
            latency_ms = self._latency_before(g, self.space.hash(g))
            trial_id, retrain_number = self.writer.start(g, seed=self.seed, parent=number, note="retrain",
                                                         **({} if latency_ms is None else {"latency_ms": latency_ms}))
            self.running[trial_id] = _Running(trial_id, retrain_number, g, self.space.hash(g), number)
            self.tick()
            payload = {"role": "train", "genotype": self.space.format(g), "seed": self.seed}
            if self.diagrams is not None:
                payload["diagram"] = (g, f"trial {retrain_number}")
            return Task(trial_id, payload)
        return FINISHED

    def _take_genotype(self, r: _Running, result: dict) -> None:
        if r.genotype is not None:
            return
        g = self.space.parse(str(result.get("genotype") or ""))
        self.writer.set_genotype(r.trial_id, g)
        self.writer.set_attrs(r.trial_id, {attr: result[k] for k, attr in _RESULT_ATTRS.items()
                                           if result.get(k) is not None})
        r.genotype, r.hash = g, self.space.hash(g)

    def _learned(self, r: _Running, value: float | None) -> None:
        seed = self.seeds.pop(r.trial_id, None)
        if value is None:
            return
        if seed is not None:
            self.done_seeds.add(seed)
            self._search_done(r.number, value, r.genotype)
        else:
            self.retrained = True

    def _search_done(self, number: int, value: float, g) -> None:
        if self.search_best is None or value > self.search_best[0]:
            self.search_best = (value, number, g)

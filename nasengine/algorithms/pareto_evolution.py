"""Pareto evolution: the engine's evolution for several objectives (``--algo evolution`` with
``objectives``), ask/tell, numpy only.

After ``initial`` (10) random cells, each child is a 1-edit neighbour of a parent chosen by
non-dominated rank: the members of the queried front (rank 0; when all their neighbours are used up,
rank 1, and so on), every such untried neighbour a candidate. Then:

- with probability ``random`` (0.2), a random unqueried cell instead (the front's low-cost end is
  often reached faster so than by edits);
- with probability ``explore`` (0.3), a random candidate: the plain Pareto local search step, which
  keeps the search spread over the whole front;
- otherwise the candidate that adds the most hypervolume to the queried front at a Thompson sample
  of its objectives. What is cheap is exact: a cheap objective (``costs``: params, FLOPs, predicted
  latency) is known for every candidate. An expensive one (accuracy) is drawn from a Bayesian ridge
  model of path features (``surrogate.py``, in the value's units) of every queried cell: a neighbour
  is predicted as its parent's value plus the model's difference between the two (the model shrinks
  towards the mean; the parent's value undoes that), spread by the model's uncertainty and residual
  noise. Values below the reference are clipped to it before the fit: there they add no
  hypervolume, and a broken cell (10%) would pull the fit. The reference point is the median of the
  first ``initial`` (random) cells, an estimate of the space's median, and the worst cost told or seen.
  When no draw adds hypervolume, a random candidate.

Measured on NAS-Bench-201 (``docs/bench.md``, 8 seeds while tuning): the expected hypervolume
improvement in place of the Thompson draw, or the draw alone (``random=0 explore=0``), concentrate
the queries on a few parents and do worse than the random steps alone; the mix does better than either.

De-duplication as in the single-objective evolution: candidates are distinct computed functions
(canonical hash) *with their costs* (two cells of one function can differ in cost: an edge that never
reaches the output still has parameters), never queried or proposed twice; a parent's neighbours are
tried once each. Candidates come from every param choice, the zero op included (``choices.py``).
State is built by ``tell`` (plus the proposals not told yet), so a fresh algorithm told the same
history proposes the same cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nasengine.algorithms.base import Algorithm, Costs, Proposal, Record
from nasengine.algorithms.choices import Choices
from nasengine.algorithms.memory import Memory
from nasengine.algorithms.surrogate import RankModel, path_features
from nasengine.core.genotype import Genotype
from nasengine.core.pareto import hypervolume_improvements, non_dominated_sort, pareto_front
from nasengine.errors import NasError
from nasengine.spaces.cell import CellSpace


class ParetoEvolution(Algorithm):
    name = "evolution"
    multi_objective = True

    def __init__(self, space: CellSpace, seed: int = 0, objectives: Sequence[str] = ("accuracy", "params"),
                 directions: Sequence[str] = ("maximize", "minimize"), costs: Costs | None = None,
                 initial: int = 10, random: float = 0.2, explore: float = 0.3, alpha: float = 10.0,
                 init: list[Any] | None = None) -> None:
        super().__init__(space, seed, objectives, directions, costs)
        if initial < 1 or random < 0 or explore < 0 or random + explore > 1 or alpha <= 0:
            raise NasError(f"evolution: initial must be >= 1, random and explore >= 0 with a sum <= 1, alpha > 0; "
                           f"got initial={initial}, random={random}, explore={explore}, alpha={alpha}")
        self.initial, self.random, self.explore, self.alpha = int(initial), float(random), float(explore), float(alpha)
        self.init = [g if isinstance(g, Genotype) else space.parse(str(g)) for g in (init or [])]
        self.choices = Choices(space)
        self.memory = Memory(self.choices, key=self.key if costs is not None else None)
        self._features: dict[Genotype, dict[str, int]] = {}
        self._models: tuple[int, list[RankModel | None]] = (-1, [])

    def _signed(self, j: int, v: float) -> float:
        return v if self.maximize[j] else -v

    # ---- tell ---------------------------------------------------------------------------------
    def tell(self, record: Record) -> None:
        super().tell(record)
        self.memory.add(record)

    # ---- ask ----------------------------------------------------------------------------------
    def ask(self) -> Proposal:
        rng = self.rng()
        asked = self.told + self._asks - 1
        if asked < len(self.init):
            return Proposal(self.memory.propose(self.init[asked]), None, "init")
        records = self.memory.records
        if len(records) + len(self.memory.pending) < self.initial or not records:
            return Proposal(self.memory.random_unseen(rng), None, "random")
        u = rng.random()
        if u < self.random:
            return Proposal(self.memory.random_unseen(rng), None, "random")
        candidates: dict[str, tuple[Genotype, int]] = {}
        for rank in non_dominated_sort([r.values for r in records], self.maximize):
            for i in rank:
                for h, child in self.memory.unseen_neighbours(records[i].genotype):
                    candidates.setdefault(h, (child, i))
            if candidates:
                break
        if not candidates:
            return Proposal(self.memory.random_unseen(rng), None, "random")
        keys = list(candidates)
        if u < self.random + self.explore:
            h, note = rng.choice(keys), "mutation"
        else:
            gain = self._gains([candidates[h][0] for h in keys], [candidates[h][1] for h in keys], rng)
            best = max(gain)
            h = rng.choice([h for h, v in zip(keys, gain) if v >= best - 1e-9 * max(1.0, abs(best))])
            note = "mutation:thompson"
        g, parent = candidates[h]
        return Proposal(self.memory.propose(g, h), records[parent].number, note)

    # ---- the acquisition -----------------------------------------------------------------------
    def _feature(self, g: Genotype) -> dict[str, int]:
        f = self._features.get(g)
        if f is None:
            if hasattr(g, "cells"):
                f = path_features(g, getattr(self.space, "zero_op", None), getattr(self.space, "identity_op", None))
            else:
                f = {f"{k}={v}": 1 for k, v in self.space.to_params(g).items()}
            self._features[g] = f
        return f

    def _expensive(self) -> list[int]:
        cheap = set(self.cost(self.memory.records[0].genotype)) if self.memory.records else set()
        return [j for j, name in enumerate(self.objectives) if name not in cheap]

    def _told(self) -> tuple[np.ndarray, np.ndarray]:
        """The told objective vectors (everything maximised: minimised objectives negated), each expensive
        objective clipped from below at its reference; and the reference point (the median of the first
        ``initial`` cells told, random cells: an estimate of the space's median; the worst cost told)."""
        m = len(self.objectives)
        told = np.array([[self._signed(j, r.values[j]) for j in range(m)] for r in self.memory.records])
        reference = told.min(axis=0)
        for j in self._expensive():
            reference[j] = float(np.median(told[:self.initial, j]))
            told[:, j] = np.maximum(told[:, j], reference[j])
        return told, reference

    def models(self) -> list[RankModel | None]:
        """One model per expensive objective, of the clipped values of the distinct cells told (below
        the reference every value counts the same for the hypervolume, so a broken cell's 10% does not
        pull the fit), None while they are all equal."""
        if self._models[0] != self.told:
            told, _ = self._told()
            features = [self._feature(r.genotype) for r in self.memory.records]
            models: list[RankModel | None] = []
            for j in self._expensive():
                models.append(RankModel(self.alpha, ranks=False).fit(features, told[:, j])
                              if len(features) >= 2 and len(set(told[:, j])) > 1 else None)
            self._models = (self.told, models)
        return self._models[1]

    def _gains(self, genotypes: list[Genotype], parents: list[int], rng) -> list[float]:
        """Each candidate's hypervolume improvement of the queried front at a Thompson sample of its
        expensive objectives (cheap ones exact).

        A candidate (a neighbour of ``memory.records[parents[i]]``) is predicted as that cell's value
        plus the model's difference between the two; the sample adds the spread (the model's
        uncertainty and its residual noise) times a standard normal draw."""
        records = self.memory.records
        told, reference = self._told()
        m = len(self.objectives)
        expensive = self._expensive()
        cand = np.zeros((len(genotypes), m))
        for j in range(m):
            if j not in expensive:
                cand[:, j] = [self._signed(j, self.cost(g)[self.objectives[j]]) for g in genotypes]
                reference[j] = min(reference[j], cand[:, j].min())
        models = self.models()
        if any(model is None for model in models):
            return [0.0] * len(genotypes)
        features = [self._feature(g) for g in genotypes]
        parent_features = [self._feature(records[p].genotype) for p in parents]
        for j, model in zip(expensive, models):
            mean, std = model.predict(features)
            mean += told[parents, j] - model.predict(parent_features)[0]
            draw = np.array([rng.gauss(0.0, 1.0) for _ in genotypes])
            cand[:, j] = mean + np.sqrt(std * std + model.noise) * draw
        up = (True,) * m
        front = told[pareto_front(told.tolist(), up)]
        return hypervolume_improvements(front.tolist(), cand.tolist(), tuple(reference), up)

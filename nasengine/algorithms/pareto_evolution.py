"""Pareto evolution: the engine's evolution for several objectives (``--algo evolution`` with
``objectives``), ask/tell, numpy only.

An epsilon-constraint form (Haimes et al. 1971) of the single-objective guided evolution
(``evolution.py``): each ask improves one expensive objective (accuracy) subject to a bound on the
others, and takes that constrained problem's guided-evolution step.

- The bound: with probability ``top`` (0.6) none (the single-objective step at the high end), or
  ``stalled_top`` (0.2) once the last ``stall`` (40) cells told have not raised the best value of the
  objective (the high end has settled and the lower steps of the staircase gain more per query);
  otherwise a front member of the queried cells is drawn with weight its exclusive hypervolume
  contribution (plus ``floor`` (0.1) times the mean, so that no member is starved), and the bound is
  the next member above it in that objective: feasible cells are strictly better than that member in
  every other objective (2-D: strictly fewer params), so the step tries to raise the drawn member's
  step of the staircase; for the top member, no bound. Reference point for the contributions: the
  median of the first ``initial`` (random) cells in the expensive objectives, the worst value told in
  the cheap ones.
- The step (as in ``evolution.py``): a tournament of ``sample`` (10) among the feasible cells of the
  last ``population`` (10) told plus the ``elite`` (10) best feasible ones; the winner's untried
  feasible 1-edit neighbours (cheap objectives such as params are exact: ``costs``) ranked by an upper
  confidence bound (mean + ``kappa`` (5) x std) of a Bayesian ridge model of path features fitted to
  the ranks of the objective (``surrogate.py``); when the winner has none, the next member. Both
  models also count each path by its ops' families and by its length (``surrogate.family_features``):
  a cheap conv's placement then informs the expensive conv's and back, and each params level has few
  queries of its own. The bounded steps' model also has edge indicators (``surrogate.features``): their
  candidates are mostly cells of the same cost that differ in where an op sits, which paths do not tell
  apart. Both models weigh products of two features too (``pairs`` (0.3), ``surrogate.RankModel``): a
  residual is worth more beside a deep conv chain.
- Once stalled, the unbounded step's children are the winner's untried cells within ``stalled_edits``
  (2) edits: NAS-Bench-201 runs that settled without the residual (edge 0->3, or 0->1->3) were one edit
  from nothing better, since a deeper chain there breaks the residual unless another edge becomes one.
- Both steps also take the untried (feasible) 1-edit neighbours of the cells in the first
  ``front_layers`` (2) non-dominated layers of the told cells, each credited to its own parent: the
  staircase's cells are where its steps are raised or lowered, and a tournament never holds the
  cells above its bound, whose downgrades (a 1x1 conv removed, a 3x3 made a 1x1) are often the
  next level's best (NAS-Bench-201, CIFAR-10: the best cell with two 3x3 convs alone is a best cell with
  a 1x1 beside them, the 1x1 made a skip). Measured, the levels without a 3x3 conv gained most
  (``docs/bench.md``, eighth round).
- From the ``evidence_from``-th (50th) cell told, both models take their ridge prior (``alpha``) from ``alphas``
  by evidence (``surrogate.evidence_alpha``) instead of 10: with alpha fixed, a CIFAR-100 cell 0.8 points
  above its params level's best told cell, one edit from a front member, ranked 30th to 60th of the
  bounded steps' children for 100 queries (NAS-Bench-201 seed 1); the evidence mostly picks 1, a model
  that follows its cells more closely. From the 5th cell instead: 0.005-0.016 lower at 50 queries (seeds
  80-119); from the 30th: CIFAR-10 at 200 0.9876 against 0.9895 (seeds 40-79).
- From the ``improve_from``-th (30th) cell told, with two objectives of which the other is cheap, the
  bounded steps rank the children by expected hypervolume improvement instead
  (``core.pareto.expected_improvement``, in the model's normal scores, the told cells at theirs): a
  child's cost is exact, so a cheaper child needs less accuracy to add a step below the drawn member,
  which ranking by accuracy alone ignores (the best cells of neighbouring params levels are often one
  3x3-to-1x1 edit apart, and such a downgrade was rarely proposed). Before the 30th cell the front is
  too thin for the improvement to tell children apart (from the 20th: 0.01-0.02 lower at 50 queries on
  CIFAR-100 and ImageNet16-120).

After ``initial`` (5) random cells. Measured on NAS-Bench-201 (``docs/bench.md``, accuracy and params, seeds 0-39):
hypervolume ratio 0.918 / 0.971 / 0.9885 at 50 / 100 / 200 queries on CIFAR-10 (CIFAR-100 0.915 / 0.970 / 0.991,
ImageNet16-120 0.888 / 0.981 / 0.995); with alpha fixed (``evidence_from`` never reached) 0.918 / 0.964 / 0.989
(0.915 / 0.970 / 0.987, 0.888 / 0.978 / 0.996), over 120 seeds 0.005 higher at 100 queries on CIFAR-10 and
ImageNet16-120, 0.003 on CIFAR-100 at 200, within 0.0015 elsewhere; without ``front_layers`` as well 0.913 / 0.966
/ 0.987 (0.905 / 0.963 / 0.988, 0.913 / 0.976 / 0.992), over 120 seeds higher in six of the nine means (CIFAR-10 by
0.010 / 0.006 / 0.003, CIFAR-100 at 50 and 100 by 0.020 / 0.010, ImageNet16-120 at 200 by 0.002), level within
0.001 in two (CIFAR-100 at 200, ImageNet16-120 at 100) and lower in one (ImageNet16-120 at 50, by 0.018); without
``stalled_edits`` as well 0.91 / 0.964 / 0.983 (0.905 / 0.966 / 0.988, 0.91 / 0.976 / 0.994), over 120 seeds +0.005
on CIFAR-10 at 200 queries and +0.003 at 100, within 0.001 elsewhere; without ``pairs`` as well 0.89 / 0.955 /
0.978 (0.88 / 0.96 / 0.988, 0.89 / 0.97 / 0.993), over 120 seeds lower in eight of the nine means (by up to 0.023,
CIFAR-10 at 50) and level in the ninth (CIFAR-100 at 200); without the family features 0.88 / 0.95 / 0.975 (0.88 /
0.96 / 0.989, 0.90 / 0.97 / 0.991), over 120 seeds level or lower in each of the nine means (by up to 0.011,
CIFAR-100 at 50); without the improvement ranking 0.87 / 0.93 / 0.97 (0.88 / 0.95 / 0.985, 0.90 / 0.96 / 0.99);
with path features alone and no ``stall`` rule 0.86 / 0.93 / 0.97 (0.87 / 0.94 / 0.97, 0.88 / 0.96 / 0.99); the
former Thompson-sampled hypervolume-improvement evolution 0.77 / 0.87 / 0.94. Over 120 seeds the improvement
ranking gains 0.005-0.012 in each of the nine figures but one (ImageNet16-120 at 200: +0.000); the edge indicators
and the ``stall`` rule before it 0.007-0.011 on the CIFAR columns at 50 and 100 queries. On 8 seeds: without the
bound (``top=1``) the high end is found but not the cheap end (0.94 at 200 on CIFAR-10); without the unbounded step
(``top=0``) the front never grows past its most expensive member (0.90); ``initial`` 10 and ``kappa`` 1.5 cost
0.03-0.08 at 50 queries; on 40 seeds, population 50 / top 0.4 / kappa 3 gave 0.83 / 0.92 / 0.96.

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

from nasengine.algorithms.base import Algorithm, Costs, Proposal, Record
from nasengine.algorithms.choices import Choices
from nasengine.algorithms.memory import Memory
from nasengine.algorithms.surrogate import Ranker, RankModel, highest
from nasengine.core.genotype import Genotype
from nasengine.core.pareto import expected_improvement, hypervolume, non_dominated_sort, pareto_front
from nasengine.errors import NasError
from nasengine.spaces.cell import CellSpace


class ParetoEvolution(Algorithm):
    name = "evolution"
    multi_objective = True

    def __init__(self, space: CellSpace, seed: int = 0, objectives: Sequence[str] = ("accuracy", "params"),
                 directions: Sequence[str] = ("maximize", "minimize"), costs: Costs | None = None,
                 initial: int = 5, population: int = 10, sample: int = 10, elite: int = 10, top: float = 0.6,
                 floor: float = 0.1, kappa: float = 5.0, alpha: float = 10.0, stall: int = 40,
                 stalled_top: float = 0.2, stalled_edits: int = 2, improve_from: int = 30, pairs: float = 0.3,
                 front_layers: int = 2, evidence_from: int = 50, alphas: Sequence[float] = (1, 3, 10, 30, 100),
                 init: list[Any] | None = None) -> None:
        super().__init__(space, seed, objectives, directions, costs)
        if min(initial, population, sample, stall) < 1 or min(elite, improve_from, front_layers, evidence_from) < 0 \
                or not (0 <= top <= 1 and 0 <= stalled_top <= 1) or min(floor, kappa, pairs) < 0 or alpha <= 0 \
                or stalled_edits not in (1, 2) or not alphas or min(alphas) <= 0:
            raise NasError(f"evolution: initial, population, sample and stall must be >= 1, elite, improve_from, "
                           f"front_layers, evidence_from, floor, kappa and pairs >= 0, top and stalled_top in [0, 1], "
                           f"alpha and alphas > 0, stalled_edits 1 or 2; got initial={initial}, "
                           f"population={population}, sample={sample}, stall={stall}, elite={elite}, "
                           f"improve_from={improve_from}, front_layers={front_layers}, evidence_from={evidence_from}, "
                           f"top={top}, stalled_top={stalled_top}, stalled_edits={stalled_edits}, floor={floor}, "
                           f"kappa={kappa}, alpha={alpha}, alphas={tuple(alphas)}, pairs={pairs}")
        self.initial, self.population, self.sample, self.elite = int(initial), int(population), int(sample), int(elite)
        self.top, self.floor, self.kappa, self.alpha = float(top), float(floor), float(kappa), float(alpha)
        self.stall, self.stalled_top, self.improve_from = int(stall), float(stalled_top), int(improve_from)
        self.stalled_edits, self.pairs, self.front_layers = int(stalled_edits), float(pairs), int(front_layers)
        self.evidence_from, self.alphas = int(evidence_from), tuple(float(a) for a in alphas)
        self.init = [g if isinstance(g, Genotype) else space.parse(str(g)) for g in (init or [])]
        self.memory = Memory(Choices(space), key=self.key if costs is not None else None)
        # the unbounded step's model (paths, also by op family) and the bounded steps' (and edge indicators)
        self.rankers = {bounded: Ranker(space, self.alpha, self.kappa, edges=bounded, families=True,
                                         pairs=self.pairs)
                        for bounded in (False, True)}
        self._models: dict[tuple[int, bool], tuple[int, RankModel | None]] = {}

    def tell(self, record: Record) -> None:
        super().tell(record)
        self.memory.add(record)

    def _signed(self, values: Sequence[float]) -> tuple[float, ...]:
        """Every objective maximised: minimised ones negated."""
        return tuple(v if up else -v for v, up in zip(values, self.maximize))

    def _signed_costs(self, g: Genotype) -> tuple[float, ...]:
        """``g``'s cheap objectives, signed as ``_signed`` (0 for the expensive ones)."""
        c = self.cost(g)
        return self._signed([c.get(name, 0.0) for name in self.objectives])

    def _cheap(self) -> set[int]:
        names = set(self.cost(self.memory.records[0].genotype))
        return {j for j, name in enumerate(self.objectives) if name in names}

    # ---- ask ----------------------------------------------------------------------------------
    def ask(self) -> Proposal:
        rng = self.rng()
        asked = self.told + self._asks - 1
        if asked < len(self.init):
            return Proposal(self.memory.propose(self.init[asked]), None, "init")
        records = self.memory.records
        if len(records) + len(self.memory.pending) < self.initial or not records:
            return Proposal(self.memory.random_unseen(rng), None, "random")
        cheap = self._cheap()
        expensive = [j for j in range(len(self.objectives)) if j not in cheap] or list(range(len(self.objectives)))
        j = expensive[0] if len(expensive) == 1 else rng.choice(expensive)
        signed = [self._signed(r.values) for r in records]
        stalled = self._stalled(signed, j)
        top = self.stalled_top if stalled else self.top
        bound = None if rng.random() < top else self._bound(signed, j, cheap, rng)
        edits = self.stalled_edits if stalled and bound is None else 1
        others = [k for k in range(len(self.objectives)) if k != j]
        cheap_others = [k for k in others if k in cheap]

        def feasible(v: Sequence[float], among: Sequence[int]) -> bool:
            return bound is None or all(v[k] > bound[k] for k in among)

        def cheap_feasible(g: Genotype) -> bool:
            if bound is None:
                return True
            return feasible(self._signed_costs(g), cheap_others)

        best = sorted((i for i in range(len(records)) if feasible(signed[i], others)), key=lambda i: -signed[i][j])
        recent = [i for i in range(max(0, len(records) - self.population), len(records))
                  if feasible(signed[i], others)]
        members = list(dict.fromkeys(recent + best[:self.elite]))
        tournament = sorted(rng.sample(members, min(self.sample, len(members))), key=lambda i: -signed[i][j])
        chosen = set(tournament)
        rest = sorted((i for i in members if i not in chosen), key=lambda i: -signed[i][j])
        pool = self._front_pool(signed, cheap_feasible)
        for i in tournament + rest:
            children = [(h, c) for h, c in self.memory.unseen_neighbours(records[i].genotype, edits=edits)
                        if cheap_feasible(c)]
            parents = dict.fromkeys((h for h, _ in children), records[i].number)
            for h, c, number in pool:
                if h not in parents:
                    parents[h] = number
                    children.append((h, c))
            if children:
                bounded = bound is not None
                model = self.model(j, bounded)
                if bounded and model is not None and self.told >= self.improve_from and cheap_others == [1 - j]:
                    h, child = self._most_improving(model, children, signed, j, rng)
                else:
                    h, child = self.rankers[bounded].pick(model, children, rng)
                return Proposal(self.memory.propose(child, h), parents[h],
                                "mutation:ranked" if bound is None else "mutation:bounded")
        return Proposal(self.memory.random_unseen(rng), None, "random")

    def _front_pool(self, signed: list[tuple[float, ...]], keep) -> list[tuple[str, Genotype, int]]:
        """The untried neighbours that ``keep`` accepts of the cells in the first ``front_layers``
        non-dominated layers of the told cells, each with its parent's trial number."""
        records = self.memory.records
        layers = non_dominated_sort(signed, (True,) * len(self.objectives))[:self.front_layers]
        return [(h, c, records[i].number) for layer in layers for i in layer
                for h, c in self.memory.unseen_neighbours(records[i].genotype) if keep(c)]

    def _most_improving(self, model: RankModel, children: list[tuple[str, Genotype]], signed: list[tuple[float, ...]],
                        j: int, rng) -> tuple[str, Genotype]:
        """2-D, the other objective cheap: the child with the largest expected hypervolume improvement
        (``core.pareto.expected_improvement``) in the model's units, every told cell at the normal score of
        its value (the reference: 0, the told values' median) and the child at the model's mean and std."""
        k = 1 - j
        points = [(float(z), v[k]) for z, v in zip(model.scores, signed)]  # the model was fitted to these scores
        front = [points[i] for i in pareto_front(points, (True, True))]
        reference = (0.0, min(v[k] for v in signed))
        mean, std = self.rankers[True].predict(model, children)
        gains = [expected_improvement(front, reference, (True, True), float(m), float(sd), self._signed_costs(g)[k])
                 for (_, g), m, sd in zip(children, mean, std)]
        return highest(children, gains, rng)

    def _stalled(self, signed: list[tuple[float, ...]], j: int) -> bool:
        """Whether the last ``stall`` cells told have not raised the best value of objective ``j``."""
        best = max(range(len(signed)), key=lambda i: (signed[i][j], -i))  # the first cell with the best value
        return len(signed) - 1 - best >= self.stall

    def _bound(self, signed: list[tuple[float, ...]], j: int, cheap: set[int], rng) -> tuple[float, ...] | None:
        """The front member above (in objective ``j``) a member drawn by exclusive hypervolume contribution
        (None for the top member)."""
        m = len(self.objectives)
        up = (True,) * m
        front = sorted({signed[i] for i in pareto_front(signed, up)}, key=lambda v: (v[j], v))
        reference = [min(v[k] for v in signed) for k in range(m)]
        for k in range(m):
            if k not in cheap:
                values = sorted(v[k] for v in signed[:self.initial])
                reference[k] = values[len(values) // 2]
        total = hypervolume(front, reference, up)
        w = [total - hypervolume(front[:i] + front[i + 1:], reference, up) for i in range(len(front))]
        mean = sum(w) / len(w)
        w = [x + self.floor * mean for x in w]
        pick = rng.choices(range(len(front)), weights=w)[0] if sum(w) > 0 else rng.randrange(len(front))
        return front[pick + 1] if pick + 1 < len(front) else None

    # ---- the surrogate -----------------------------------------------------------------------
    def model(self, j: int, bounded: bool) -> RankModel | None:
        """The ranking model of objective ``j`` over the distinct cells told, for the unbounded or the bounded
        steps (None until two values differ)."""
        told, model = self._models.get((j, bounded), (-1, None))
        if told != self.told:
            records = self.memory.records
            alphas = self.alphas if len(records) >= self.evidence_from else ()
            model = self.rankers[bounded].fit(self.memory.hashes, [r.genotype for r in records],
                                              [self._signed(r.values)[j] for r in records], alphas)
            self._models[(j, bounded)] = (self.told, model)
        return model

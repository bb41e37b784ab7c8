"""A small ranking model that learns only from the cells (or block sequences) a search has queried.

Features are the cell's *paths* (White et al., BANANAS 2021): every route from a cell input to the
cell output, written as the sequence of ops along it. A zero op cuts a path and an identity op adds
nothing to it, so two cells with the same canonical form have the same features and an edge that
never reaches the output contributes none. This works for any cell space through the genotype alone.

The model is Bayesian ridge regression on those path counts, fitted to the normal scores of the
values' ranks: only the order of the queried values matters, so the model is the same whatever the
unit or scale of the value (percent, fraction, any monotone transform) and a few broken cells (10%
accuracy) do not dominate the fit. Besides a prediction it gives an uncertainty (the posterior
standard deviation), so a search can rank candidates by an upper confidence bound: a candidate whose
paths the queried cells have not covered gets the benefit of the doubt, which stops the search from
never trying an op that the first few cells happened not to use.

With ``edges``, a cell genotype also gets one indicator per choice and value of its Optuna params
(``normal/node3/op0=nor_conv_3x3``): paths say which op sequences a cell computes but not on which edge a conv
sits, and two cells with the same ops and params often differ by just that (NAS-Bench-201: a conv moved
to another edge, one level of the params staircase). The Pareto evolution uses them in the model of its
bounded steps (``pareto_evolution.py``), which compare such cells; measured in ``docs/bench.md``.

With ``families``, each path is also counted in two coarser forms: as the sequence of its ops'
families (``op_family``: every conv one family, every pool another, so ``nor_conv_1x1`` and
``nor_conv_3x3`` on a path share a feature) and by its length alone. What a cheap op's placement
teaches then carries over to the expensive op and back: the best cells of NAS-Bench-201's params levels
share their topology (conv1x1 where the costlier cells have conv3x3), and a search over several
objectives has few queries at each level. The Pareto evolution uses them in both its models; measured
in ``docs/bench.md`` (sixth round).

A block genotype (``core.blocks``) has no paths: its features are each block's fields, one indicator
per block and field value (``3:op=mbconv6``, ``3:kernel=5``, ...), read from its canonical form, so an
edit to one choice of one block changes two features, as an op edit changes a cell's paths through it.

Columns are the features in the order the training cells first showed them, so the model is a
function of the told history alone (a resumed search refits exactly the same model).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from nasengine.core.blocks import Blocks, canonical_blocks
from nasengine.core.genotype import Genotype
from nasengine.spaces.base import AnyGenotype, Space

_NORMAL = NormalDist()


def path_features(g: Genotype, zero_op: str | None = None, identity_op: str | None = None) -> dict[str, int]:
    """Counts of the op sequences along every input-to-output path of every cell."""
    feats: Counter = Counter()
    for name, cell in g.cells:
        paths: list[Counter] = [Counter({(i,): 1}) for i in range(cell.n_inputs)]
        for node in cell.nodes:
            here: Counter = Counter()
            for e in node:
                if e.op == zero_op:
                    continue
                for p, n in paths[e.src].items():
                    here[p if e.op == identity_op else p + (e.op,)] += n
            paths.append(here)
        for s in cell.output_states():
            for p, n in paths[s].items():
                feats[f"{name}:{p[0]}:{'>'.join(p[1:])}"] += n
    return dict(feats)


def op_family(op: str) -> str:
    """``conv`` for any convolution, ``pool`` for any pooling (by the op's name), else the op itself."""
    return next((family for family in ("conv", "pool") if family in op), op)


def family_features(paths: dict[str, int]) -> dict[str, int]:
    """Path counts (``path_features``) again by the ops' families (``cell:input:~conv>pool``) and by
    length alone (``cell:input:#2``)."""
    feats: Counter = Counter()
    for key, n in paths.items():
        head, _, route = key.rpartition(":")
        ops = route.split(">") if route else []
        feats[f"{head}:~{'>'.join(map(op_family, ops))}"] += n
        feats[f"{head}:#{len(ops)}"] += n
    return dict(feats)


def block_features(g: Blocks) -> dict[str, int]:
    """One indicator per block and field value of the canonical block sequence."""
    return {f"{i}:{name}={value}": 1 for i, b in enumerate(canonical_blocks(g).blocks)
            for name, value in vars(b).items()}


def features(g: AnyGenotype, space: Space, edges: bool = False, families: bool = False) -> dict[str, int]:
    """The model's features of a genotype of ``space``: a cell genotype's paths (with ``families``, also
    by op family and length; with ``edges``, its params' values), a block genotype's fields."""
    if isinstance(g, Blocks):
        return block_features(g)
    out = path_features(g, space.zero_op, space.identity_op)
    if families:
        out.update(family_features(out))
    if edges:
        out.update((f"{name}={value}", 1) for name, value in space.to_params(g).items())
    return out


def normal_scores(values) -> np.ndarray:
    """Ranks (ties averaged) mapped to standard normal quantiles."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n)
    sorted_values = values[order]
    start = 0
    for end in range(1, n + 1):  # average the ranks of tied values
        if end == n or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end - 1) / 2
            start = end
    return np.array([_NORMAL.inv_cdf((r + 0.5) / n) for r in ranks])


class RankModel:
    """Bayesian ridge regression of normal scores on feature counts.

    ``fit(features, values)`` then ``predict(features) -> (mean, std)``; ``scores`` are the values' normal
    scores it was fitted to.
    Weights have the prior N(0, s2 / alpha); s2 is the residual variance of the fit. The primal form
    is used when there are fewer features than cells, the dual (kernel) form otherwise; both give the
    same numbers.

    With ``alphas``, ``fit`` takes the one of them with the largest evidence (the marginal likelihood of
    the scores, the residual variance profiled out: ``evidence_alpha``) instead of ``alpha``, which then
    holds it. Measured in ``docs/bench.md`` (ninth round): with alpha fixed at 10, the Pareto evolution's
    bounded-step model ranked a CIFAR-100 cell worth 0.8 points more than its level's best told cell 30th
    to 60th of its children for 100 queries; the evidence mostly picks alpha 1 there.

    With ``pairs`` > 0 the model also has a weight for every product of two features: the kernel (dual
    form, always) is ``k + pairs * k**2 / s``, ``k`` the linear kernel of the centred counts and ``s`` the
    median of the training cells' ``k(x, x)``. A linear model of paths cannot say that a path is worth
    more beside another one (a residual beside a deep conv chain); measured in ``docs/bench.md``
    (seventh round): NAS-Bench-201 runs of the Pareto evolution that settled without the residual were
    the largest single loss.
    """

    def __init__(self, alpha: float = 10.0, pairs: float = 0.0, alphas: Sequence[float] = ()) -> None:
        if alpha <= 0 or pairs < 0 or any(a <= 0 for a in alphas):
            raise ValueError(f"alpha and alphas must be positive and pairs >= 0, got alpha={alpha}, "
                             f"alphas={tuple(alphas)}, pairs={pairs}")
        self.alpha, self.pairs, self.alphas = float(alpha), float(pairs), tuple(float(a) for a in alphas)
        self.columns: dict[str, int] = {}

    def _matrix(self, features: list[dict[str, int]]) -> tuple[np.ndarray, np.ndarray]:
        """Counts in the model's columns, and each row's sum of squared counts outside them."""
        x = np.zeros((len(features), len(self.columns)))
        outside = np.zeros(len(features))
        for i, f in enumerate(features):
            for key, count in f.items():
                j = self.columns.get(key)
                if j is None:
                    outside[i] += count * count
                else:
                    x[i, j] = count
        return x, outside

    def fit(self, features: list[dict[str, int]], values) -> RankModel:
        if len(features) != len(values) or len(features) < 2:
            raise ValueError("fit needs at least two cells, one value each")
        self.columns = {}
        for f in features:
            for key in f:
                self.columns.setdefault(key, len(self.columns))
        x, _ = self._matrix(features)
        y = self.scores = normal_scores(values)
        self.mean = x.mean(axis=0)
        x -= self.mean
        n, d = x.shape
        self.primal = d <= n and not self.pairs
        if self.primal:
            kernel = x @ x.T if self.alphas else None
        else:
            self.train = x
            linear = x @ x.T
            self.scale = max(float(np.median(np.diag(linear))), 1e-9)
            kernel = self._kernel(linear)
        if self.alphas:
            self.alpha = evidence_alpha(kernel, y, self.alphas)
        if self.primal:
            self.inverse = np.linalg.inv(x.T @ x + self.alpha * np.eye(d))
            self.weights = self.inverse @ (x.T @ y)
            fitted = x @ self.weights
        else:
            self.inverse = np.linalg.inv(kernel + self.alpha * np.eye(n))
            self.dual = self.inverse @ y
            fitted = kernel @ self.dual
        residual = y - fitted
        self.noise = max(float(residual @ residual) / max(n - 1, 1), 1e-3)
        return self

    def _kernel(self, linear: np.ndarray) -> np.ndarray:
        return linear + self.pairs * linear * linear / self.scale if self.pairs else linear

    def predict(self, features: list[dict[str, int]]) -> tuple[np.ndarray, np.ndarray]:
        x, outside = self._matrix(features)
        x -= self.mean
        if self.primal:
            mean = x @ self.weights
            var = ((x @ self.inverse) * x).sum(axis=1) + outside / self.alpha
        else:
            k = self._kernel(x @ self.train.T)
            mean = k @ self.dual
            var = (self._kernel((x * x).sum(axis=1) + outside) - ((k @ self.inverse) * k).sum(axis=1)) / self.alpha
        return mean, np.sqrt(self.noise * np.maximum(var, 0.0))


def evidence_alpha(kernel: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> float:
    """The alpha of ``alphas`` under which ``y`` is most likely: y ~ N(0, s2 (kernel / alpha + I)), s2 at
    its maximum-likelihood value for each alpha (the first alpha on a tie)."""
    eigenvalues, vectors = np.linalg.eigh(kernel)
    eigenvalues = np.maximum(eigenvalues, 0.0)
    projected = (vectors.T @ y) ** 2
    n = len(y)

    def log_likelihood(alpha: float) -> float:
        d = eigenvalues / alpha + 1.0
        s2 = max(float((projected / d).sum()) / n, 1e-300)
        return -0.5 * n * np.log(s2) - 0.5 * float(np.log(d).sum())

    return max(alphas, key=log_likelihood)


class Ranker:
    """What the guided evolutions share: each genotype's features computed once (by canonical hash),
    a ``RankModel`` of told values, and the pick of the child with the highest upper confidence bound."""

    def __init__(self, space: Space, alpha: float, kappa: float, edges: bool = False, families: bool = False,
                 pairs: float = 0.0) -> None:
        self.space, self.alpha, self.kappa, self.edges, self.families = space, alpha, kappa, edges, families
        self.pairs = pairs
        self._features: dict[str, dict[str, int]] = {}

    def features(self, h: str, g: AnyGenotype) -> dict[str, int]:
        f = self._features.get(h)
        if f is None:
            f = self._features[h] = features(g, self.space, self.edges, self.families)
        return f

    def fit(self, hashes: Sequence[str], genotypes: Sequence[AnyGenotype], values: Sequence[float],
            alphas: Sequence[float] = ()) -> RankModel | None:
        """The model of ``values`` (one per hash and genotype; with ``alphas``, its alpha by evidence:
        ``RankModel``); None until two of them differ."""
        if len(values) < 2 or len(set(values)) < 2:
            return None
        features = [self.features(h, g) for h, g in zip(hashes, genotypes)]
        return RankModel(self.alpha, self.pairs, alphas).fit(features, list(values))

    def predict(self, model: RankModel, children: list[tuple[str, AnyGenotype]]) -> tuple[np.ndarray, np.ndarray]:
        """The model's mean and std of each ``(hash, genotype)`` child."""
        return model.predict([self.features(h, g) for h, g in children])

    def pick(self, model: RankModel | None, children: list[tuple[str, AnyGenotype]], rng) -> tuple[str, AnyGenotype]:
        """The ``(hash, genotype)`` child with the highest mean + kappa x std (ties at random); without a
        model, a random child."""
        if model is None:
            return rng.choice(children)
        mean, std = self.predict(model, children)
        return highest(children, mean + self.kappa * std, rng)


def highest(children: list, scores, rng):
    """The child with the highest score, ties (to 1e-9 relative) broken at random."""
    top = float(max(scores))
    return rng.choice([c for c, s in zip(children, scores) if s >= top - 1e-9 * max(1.0, abs(top))])

"""A small ranking model that learns only from the cells a search has queried.

Features are the cell's *paths* (White et al., BANANAS 2021): every route from a cell input to the
cell output, written as the sequence of ops along it. A zero op cuts a path and an identity op adds
nothing to it, so two cells with the same canonical form have the same features and an edge that
never reaches the output contributes none. This works for any cell space through the genotype alone.

The model is ridge regression on those path counts, fitted to the normal scores of the values' ranks:
only the order of the queried values matters, so the model is the same whatever the unit or scale of
the value (percent, fraction) and a few broken cells (10% accuracy) do not dominate the fit.
"""

from __future__ import annotations

from collections import Counter
from statistics import NormalDist

import numpy as np

from nasengine.genotype import Genotype

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


def normal_scores(values: np.ndarray) -> np.ndarray:
    """Ranks (ties averaged) mapped to standard normal quantiles."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=float)
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):  # average the ranks of tied values
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end - 1) / 2
            start = end
    n = len(values)
    return np.array([_NORMAL.inv_cdf((r + 0.5) / n) for r in ranks])


class RidgeRanker:
    """Ridge regression of normal scores on feature counts; ``predict`` ranks candidates."""

    def __init__(self, alpha: float = 10.0) -> None:
        self.alpha = alpha
        self.columns: dict[str, int] = {}
        self.mean = np.zeros(0)
        self.weights = np.zeros(0)

    def fit(self, features: list[dict[str, int]], values: list[float]) -> RidgeRanker:
        self.columns = {}
        for f in features:
            for key in f:
                self.columns.setdefault(key, len(self.columns))
        x = self.matrix(features)
        y = normal_scores(np.asarray(values, dtype=float))
        self.mean = x.mean(axis=0)
        x -= self.mean
        n, d = x.shape
        if d <= n:
            self.weights = np.linalg.solve(x.T @ x + self.alpha * np.eye(d), x.T @ y)
        else:  # the dual form when there are more features than cells
            self.weights = x.T @ np.linalg.solve(x @ x.T + self.alpha * np.eye(n), y)
        return self

    def matrix(self, features: list[dict[str, int]]) -> np.ndarray:
        x = np.zeros((len(features), len(self.columns)))
        for i, f in enumerate(features):
            for key, count in f.items():
                j = self.columns.get(key)
                if j is not None:
                    x[i, j] = count
        return x

    def predict(self, features: list[dict[str, int]]) -> np.ndarray:
        return (self.matrix(features) - self.mean) @ self.weights

"""Compound scaling (EfficientNet, Tan & Le 2019, sec. 3.3): the coefficient grid, the scaled network
settings for each phi, the single-dimension baselines at matched FLOPs, and the plan of trials.

The paper scales depth by ``alpha^phi``, width by ``beta^phi`` and resolution by ``gamma^phi`` with
``alpha * beta^2 * gamma^2 ~= 2`` (alpha, beta, gamma >= 1), so FLOPs grow by about ``2^phi`` (FLOPs are
linear in depth and quadratic in width and resolution). Step 1 fixes phi = 1 and grid-searches
(alpha, beta, gamma); step 2 fixes the best of them and scales up with phi. For B0 the paper found
alpha = 1.2, beta = 1.1, gamma = 1.15.

A plan is a list of :class:`Planned` trials identified by ``(method, phi, coefficients)``, so a resumed
run trains only the ones the study does not hold COMPLETE. Methods: ``base`` (phi = 0, the unscaled
network every line of the report starts from), ``grid`` (phi = 1, one per candidate), ``compound``
(phi = 2..K with the best grid coefficients: its phi = 1 network *is* the best grid candidate, which is
not trained twice), and on request ``depth``, ``width``, ``resolution`` (phi = 1..K: one dimension
scaled alone until the network's FLOPs match the compound network's at the same phi, Figure 3's
baselines, found by bisection on the counted FLOPs).

Settings are absolute: the base network's own ``width``, ``depth`` and ``image_size`` (a reduced
base, e.g. width 0.25 for digits, is scaled from there) times the coefficients. No torch here: FLOPs
come in as a callable ``flops(settings) -> int``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

#: EfficientNet's constraint: alpha * beta^2 * gamma^2 ~= 2 (FLOPs double per phi)
TARGET = 2.0
#: the coefficients EfficientNet's grid search found for B0 (sec. 3.3, step 1)
PAPER_COEFFICIENTS = (1.2, 1.1, 1.15)
METHODS = ("base", "grid", "compound", "depth", "width", "resolution")
SINGLE = ("depth", "width", "resolution")
_DECIMALS = 6  # coefficients are rounded to this many decimals, so a plan's keys are exact across runs


def grid(step: float = 0.05, tolerance: float = 0.1) -> list[tuple[float, float, float]]:
    """Every ``(alpha, beta, gamma)`` on the grid ``1, 1 + step, 1 + 2 step, ...`` with
    ``|alpha * beta^2 * gamma^2 - 2| <= tolerance``, in lexicographic order. Step 0.05 and tolerance
    0.1 give 111 candidates (the paper's 1.2, 1.1, 1.15 among them: 1.92)."""
    if not step > 0 or not tolerance >= 0:
        raise ValueError(f"grid step must be positive and tolerance not negative, got {step}, {tolerance}")
    n = int(math.floor((TARGET + tolerance - 1) / step + 1e-9))
    values = [round(1 + k * step, _DECIMALS) for k in range(n + 1)]
    return [(a, b, g) for a in values for b in values for g in values
            if abs(a * b * b * g * g - TARGET) <= tolerance + 1e-12]


Base = Mapping[str, float | int]  # the base network's width, depth and image_size


def scaled(phi: int, alpha: float, beta: float, gamma: float, base: Base) -> dict[str, float | int]:
    """The network settings of ``base`` scaled by (alpha, beta, gamma) at ``phi``: depth times
    ``alpha^phi``, width times ``beta^phi``, resolution ``round(image_size * gamma^phi)``."""
    return {"depth": round(base["depth"] * alpha ** phi, _DECIMALS),
            "width": round(base["width"] * beta ** phi, _DECIMALS),
            "image_size": int(round(base["image_size"] * gamma ** phi))}


def single(dimension: str, coefficient: float, base: Base) -> dict[str, float | int]:
    """The settings with one dimension scaled by ``coefficient`` (``depth``, ``width`` or ``resolution``)."""
    depth, width, gamma = {"depth": (coefficient, 1.0, 1.0), "width": (1.0, coefficient, 1.0),
                           "resolution": (1.0, 1.0, coefficient)}[dimension]
    return scaled(1, depth, width, gamma, base)


def match_flops(flops: Callable[[dict], int], dimension: str, target: float, base: Base,
                iterations: int = 16) -> float:
    """The coefficient of ``dimension`` alone whose network's FLOPs come closest to ``target``.

    FLOPs grow with each coefficient but in steps (layers round up, channels to multiples of 8,
    resolution to whole pixels), so this brackets ``target`` (doubling the upper end) and bisects,
    then takes whichever end of the last bracket is closer."""
    def at(c: float) -> int:
        return flops(single(dimension, c, base))

    lo, hi = 1.0, 2.0
    if at(lo) >= target:
        return lo
    while at(hi) < target:
        lo, hi = hi, hi * 2
        if hi > 1024:
            raise ValueError(f"{dimension} alone cannot reach {target:.3g} FLOPs")
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if at(mid) < target:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda c: abs(at(c) - target))
    return round(best, _DECIMALS)


@dataclass(frozen=True)
class Planned:
    """One trial of the plan: a method, a phi and its coefficients (``coefficient`` for one dimension
    alone), and the network settings they give."""

    method: str
    phi: int
    alpha: float | None
    beta: float | None
    gamma: float | None
    coefficient: float | None
    settings: tuple[tuple[str, float | int], ...]  # sorted items of width, depth, image_size

    @property
    def key(self) -> tuple:
        return plan_key(self.method, self.phi, self.alpha, self.beta, self.gamma, self.coefficient)

    def attrs(self) -> dict[str, float | int | str | None]:
        """The trial's user attrs: method, phi, alpha, beta, gamma, coefficient, width, depth, resolution."""
        s = dict(self.settings)
        return {"method": self.method, "phi": self.phi, "alpha": self.alpha, "beta": self.beta,
                "gamma": self.gamma, "coefficient": self.coefficient, "width": s["width"],
                "depth": s["depth"], "resolution": s["image_size"]}

    def label(self) -> str:
        if self.coefficient is not None:
            return f"{self.method} phi={self.phi} x{self.coefficient:g}"
        return f"{self.method} phi={self.phi} ({self.alpha:g}, {self.beta:g}, {self.gamma:g})"


def plan_key(method: str, phi: int, alpha: float | None, beta: float | None, gamma: float | None,
             coefficient: float | None) -> tuple:
    """What identifies a trial of a scaling study (stored trials are matched by it on resume)."""
    def r(x: float | None) -> float | None:
        return None if x is None else round(float(x), _DECIMALS)

    return (method, int(phi), r(alpha), r(beta), r(gamma), r(coefficient))


def _planned(method: str, phi: int, coefficients: tuple[float, float, float] | None, coefficient: float | None,
             settings: dict) -> Planned:
    a, b, g = coefficients if coefficients is not None else (None, None, None)
    return Planned(method, phi, a, b, g, coefficient, tuple(sorted(settings.items())))


def base_plan(base: Base) -> Planned:
    return _planned("base", 0, (1.0, 1.0, 1.0), None, scaled(0, 1.0, 1.0, 1.0, base))


def grid_plan(candidates: list[tuple[float, float, float]], base: Base) -> list[Planned]:
    return [_planned("grid", 1, c, None, scaled(1, *c, base)) for c in candidates]


def compound_plan(best: tuple[float, float, float], phis: int, base: Base) -> list[Planned]:
    """phi = 2..K with the best coefficients (phi = 1 is the best grid trial itself)."""
    return [_planned("compound", phi, best, None, scaled(phi, *best, base)) for phi in range(2, phis + 1)]


def baseline_plan(best: tuple[float, float, float], phis: int, base: Base,
                  flops: Callable[[dict], int]) -> list[Planned]:
    """For phi = 1..K, each dimension alone at the FLOPs of the compound network at that phi."""
    out = []
    for phi in range(1, phis + 1):
        target = flops(scaled(phi, *best, base))
        for dimension in SINGLE:
            c = match_flops(flops, dimension, target, base)
            out.append(_planned(dimension, phi, None, c, single(dimension, c, base)))
    return out

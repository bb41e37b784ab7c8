"""Pareto dominance, non-dominated sorting and hypervolume (nasengine.core.pareto) against brute force."""

import itertools
import math
import random

import pytest

from nasengine.core.pareto import dominates, expected_improvement, hypervolume, non_dominated_sort, pareto_front
from nasengine.errors import NasError

DIRECTIONS = [(True, True), (False, True), (True, False, True), (False, False, False), (True, False, False, True)]


def random_points(rng, n, m, integer):
    """Integer points on a small grid have many ties and equal points; float points have none."""
    if integer:
        return [tuple(rng.randint(0, 4) for _ in range(m)) for _ in range(n)]
    return [tuple(rng.uniform(-1, 1) for _ in range(m)) for _ in range(n)]


def brute_dominates(a, b, maximize):
    better = [x > y if up else x < y for x, y, up in zip(a, b, maximize)]
    worse = [x < y if up else x > y for x, y, up in zip(a, b, maximize)]
    return any(better) and not any(worse)


def brute_fronts(points, maximize):
    left, fronts = set(range(len(points))), []
    while left:
        front = sorted(i for i in left if not any(brute_dominates(points[j], points[i], maximize) for j in left))
        fronts.append(front)
        left -= set(front)
    return fronts


@pytest.mark.parametrize("maximize", DIRECTIONS)
@pytest.mark.parametrize("integer", [True, False])
def test_dominance_front_and_sorting_match_brute_force(maximize, integer):
    rng = random.Random(hash((maximize, integer)) % 1000)
    for n in (0, 1, 2, 5, 30, 80):
        points = random_points(rng, n, len(maximize), integer)
        for a, b in itertools.product(points[:12], repeat=2):
            assert dominates(a, b, maximize) == brute_dominates(a, b, maximize), (a, b)
        fronts = brute_fronts(points, maximize)
        assert non_dominated_sort(points, maximize) == fronts
        assert pareto_front(points, maximize) == (fronts[0] if fronts else [])


def test_pareto_front_of_cost_and_accuracy():
    costs = [5, 1, 3, 3, 8, 2, 1]
    values = [0.9, 0.5, 0.7, 0.8, 0.85, 0.5, 0.4]
    assert pareto_front(list(zip(costs, values)), (False, True)) == [0, 1, 3]
    assert pareto_front([], (False, True)) == []
    # equal points: neither dominates the other, so both are on the front
    assert pareto_front([(1, 1), (1, 1), (2, 0)], (False, True)) == [0, 1]
    assert not dominates((1, 1), (1, 1), (True, True))


def brute_hypervolume(points, reference, maximize):
    """Inclusion-exclusion over every subset of the boxes between a point and the reference."""
    boxes = []
    for p in points:
        lo = [-(v) if up else v for v, up in zip(p, maximize)]
        hi = [-(r) if up else r for r, up in zip(reference, maximize)]
        if all(a < b for a, b in zip(lo, hi)):
            boxes.append(lo)
    hi = [-(r) if up else r for r, up in zip(reference, maximize)]
    total = 0.0
    for k in range(1, len(boxes) + 1):
        for subset in itertools.combinations(boxes, k):
            corner = [max(c) for c in zip(*subset)]
            total += (-1) ** (k + 1) * math.prod(max(0.0, b - a) for a, b in zip(corner, hi))
    return total


def grid_hypervolume(points, reference, maximize):
    """Integer points: count the unit cells (by their centres) that some point dominates."""
    ranges = [range(min(r, min((p[d] for p in points), default=r)), max(r, max((p[d] for p in points), default=r)))
              for d, r in enumerate(reference)]
    count = 0
    for cell in itertools.product(*ranges):
        centre = [c + 0.5 for c in cell]
        inside_ref = all(c > r if up else c < r for c, r, up in zip(centre, reference, maximize))
        hit = any(all(c < v if up else c > v for c, v, up in zip(centre, p, maximize)) for p in points)
        count += inside_ref and hit
    return count


@pytest.mark.parametrize("maximize", [(True, True), (False, True), (True, False, True), (False, False, False)])
def test_hypervolume_matches_inclusion_exclusion(maximize):
    rng = random.Random(len(maximize) * 10 + sum(maximize))
    reference = tuple(-1.0 if up else 1.0 for up in maximize)
    for n in (0, 1, 2, 3, 5, 8, 11):
        for _ in range(6):
            points = random_points(rng, n, len(maximize), integer=False)
            # some points beyond the reference in one objective: they add nothing
            points += [tuple(r + (-0.1 if up else 0.1) if d == 0 else 0.0 for d, (r, up)
                             in enumerate(zip(reference, maximize)))]
            hv = hypervolume(points, reference, maximize)
            assert hv == pytest.approx(brute_hypervolume(points, reference, maximize), abs=1e-12)


@pytest.mark.parametrize("maximize", [(True, True), (False, True), (True, True, True), (False, True, False)])
def test_hypervolume_of_integer_points_matches_a_grid_count(maximize):
    """Ties, equal points and points on the reference's faces."""
    rng = random.Random(7 + len(maximize))
    reference = tuple(0 if up else 5 for up in maximize)
    for n in (1, 4, 12, 40):
        for _ in range(5):
            points = [tuple(rng.randint(0, 5) for _ in maximize) for _ in range(n)]
            assert hypervolume(points, reference, maximize) == grid_hypervolume(points, reference, maximize)


def test_hypervolume_simple_cases_and_errors():
    assert hypervolume([(2, 3)], (0, 0), (True, True)) == 6
    assert hypervolume([(2, 3), (3, 2)], (0, 0), (True, True)) == 6 + 6 - 4
    assert hypervolume([(1, 1, 1), (2, 2, 2)], (3, 3, 3), (False, False, False)) == 8
    assert hypervolume([], (0, 0), (True, True)) == 0.0
    with pytest.raises(NasError, match="2 or 3 objectives"):
        hypervolume([(1,)], (0,), (True,))
    with pytest.raises(NasError, match="2 directions"):
        pareto_front([(1, 2, 3)], (True, True))
    with pytest.raises(NasError, match="NaN"):
        non_dominated_sort([(1.0, float("nan"))], (True, True))


@pytest.mark.parametrize("maximize", [(True, False), (True, True), (False, False)])
def test_expected_improvement_is_the_mean_hypervolume_gain(maximize):
    """std 0: the exact gain of the point; std > 0: the gain averaged over the normal density (a fine
    midpoint sum over +-8 std)."""
    rng = random.Random(3 + sum(maximize))
    reference = tuple(-1.0 if up else 1.0 for up in maximize)
    for n in (0, 1, 4, 9):
        for _ in range(8):
            points = random_points(rng, n, 2, integer=False)
            points = [tuple(v if up else -v for v, up in zip(p, maximize)) for p in points]
            cost, mean, std = rng.uniform(-1.2, 1.2), rng.uniform(-1.2, 1.2), rng.choice([0.0, 0.05, 0.4])
            base = hypervolume(points, reference, maximize)
            expected = expected_improvement(points, reference, maximize, mean, std, cost)
            k = 4000 if std else 1
            ys = [mean + std * 16 * ((i + 0.5) / k - 0.5) for i in range(k)]
            weights = [math.exp(-0.5 * ((y - mean) / std) ** 2) if std else 1.0 for y in ys]
            gains = [hypervolume(points + [(y, cost)], reference, maximize) - base for y in ys]
            assert expected == pytest.approx(sum(w * g for w, g in zip(weights, gains)) / sum(weights), abs=1e-6)
    with pytest.raises(NasError, match="2 objectives"):
        expected_improvement([], (0, 0, 0), (True, True, True), 0.0, 1.0, 0.0)


def test_fronts_of_many_points_are_fast():
    """The front of 10,000 trials (a long search's history) and the fronts of 2,000: 0.2 s here."""
    import time

    rng = random.Random(0)
    points = [(rng.random(), rng.random()) for _ in range(10_000)]
    started = time.perf_counter()
    front = pareto_front(points, (False, True))
    fronts = non_dominated_sort(points[:2000], (False, True))
    assert time.perf_counter() - started < 5
    assert front == brute_fronts_2d(points)
    assert sum(len(f) for f in fronts) == 2000


def brute_fronts_2d(points):
    """The (minimise x, maximise y) front by one sweep in x: a point is on it when its y beats every y
    of the points with lower x (float points: no ties)."""
    best, front = -math.inf, []
    for i in sorted(range(len(points)), key=lambda i: points[i][0]):
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return sorted(front)

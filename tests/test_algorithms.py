import itertools
import random

import numpy as np
import pytest

from nasengine.algorithms import Record, make_algorithm
from nasengine.algorithms.evolution import RegularizedEvolution
from nasengine.algorithms.surrogate import RankModel, evidence_alpha, features, normal_scores, op_family, path_features
from nasengine.errors import NasError
from nasengine.spaces.cell import load_space

SPACE = load_space("nasbench201")


def landscape(seed: int = 0):
    """A synthetic objective with structure: a fixed random weight per path of the cell (same function,
    same value), so a search that learns from its queries can beat random guessing."""
    rng = random.Random(seed)
    weights: dict[str, float] = {}

    def value(g) -> float:
        feats = path_features(g, SPACE.zero_op, SPACE.identity_op)
        return sum(n * weights.setdefault(k, rng.gauss(0, 1)) for k, n in sorted(feats.items()))
    return value


def run(algorithm, value, queries: int) -> list[float]:
    """Ask/tell like ``nasengine bench``: a known cell is answered from memory and not counted."""
    memory: dict[str, float] = {}
    best, curve, number = -np.inf, [], 0
    while len(curve) < queries:
        proposal = algorithm.ask()
        h = SPACE.hash(proposal.genotype)
        if h not in memory:
            memory[h] = value(proposal.genotype)
            best = max(best, memory[h])
            curve.append(best)
        algorithm.tell(Record(number, proposal.genotype, memory[h], proposal.parent))
        number += 1
    return curve


def test_guided_evolution_never_proposes_a_known_cell_and_mutates_the_function():
    algorithm = make_algorithm("evolution", SPACE, seed=3)
    value, seen, told = landscape(), set(), {}
    for number in range(150):
        proposal = algorithm.ask()
        h = SPACE.hash(proposal.genotype)
        assert h not in seen
        seen.add(h)
        if proposal.parent is not None:  # a 1-edit neighbour of its parent computing another function
            parent = told[proposal.parent]
            assert h in {SPACE.hash(n) for n in SPACE.neighbours(parent)} - {SPACE.hash(parent)}
        told[number] = proposal.genotype
        algorithm.tell(Record(number, proposal.genotype, value(proposal.genotype), proposal.parent))


def test_a_fresh_evolution_told_the_same_history_proposes_the_same_cell():
    first = make_algorithm("evolution", SPACE, seed=7)
    value = landscape()
    history = []
    for number in range(40):
        p = first.ask()
        history.append(Record(number, p.genotype, value(p.genotype), p.parent))
        first.tell(history[-1])
    second = make_algorithm("evolution", SPACE, seed=7)
    for record in history:
        second.tell(record)
    assert first.ask() == second.ask()


def test_textbook_evolution_is_the_papers_algorithm():
    algorithm = make_algorithm("evolution", SPACE, seed=0, variant="textbook")
    assert (algorithm.population_size, algorithm.sample_size, algorithm.initial) == (20, 5, 20)
    g = SPACE.sample(random.Random(0))
    for number in range(25):  # no de-duplication: every told record joins the population
        algorithm.tell(Record(number, g, 1.0))
    assert len(algorithm.population) == 20
    proposal = algorithm.ask()
    assert proposal.parent is not None and proposal.note.startswith("mutation:")


def test_guided_evolution_beats_random_and_finds_the_optimum_of_a_structured_landscape():
    value = landscape(1)
    optimum = max(value(SPACE.parse(f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|"))
                  for a, b, c, d, e, f in itertools.product(SPACE.ops, repeat=6))
    guided = [run(make_algorithm("evolution", SPACE, seed=s), value, 150) for s in range(4)]
    randoms = [run(make_algorithm("random", SPACE, seed=s), value, 150) for s in range(4)]
    assert all(c[-1] == pytest.approx(optimum) for c in guided)
    assert np.mean([c[49] for c in guided]) > np.mean([c[49] for c in randoms])


def test_local_search_climbs_to_a_local_optimum_then_restarts():
    algorithm = make_algorithm("local", SPACE, seed=2)
    value = landscape(2)
    moves, restarts, number = [], 0, 0
    for number in range(300):
        before = algorithm.current
        p = algorithm.ask()
        if before is not None and p.parent is None:
            restarts += 1  # a restart happens only when every neighbour of the current cell is known
            assert not algorithm.memory.unseen_neighbours(before.genotype)
        algorithm.tell(Record(number, p.genotype, value(p.genotype), p.parent))
        if before is not None and algorithm.current is not before and p.parent is not None:
            moves.append((before.value, algorithm.current.value))
    assert moves and all(new > old for old, new in moves) and restarts >= 1


def test_bad_settings_are_one_line_errors():
    with pytest.raises(NasError, match="unknown evolution variant 'fancy'"):
        make_algorithm("evolution", SPACE, variant="fancy")
    with pytest.raises(NasError, match="population must be at least 1"):
        make_algorithm("evolution", SPACE, population=0)
    with pytest.raises(NasError, match="kappa and elite must be >= 0"):
        make_algorithm("evolution", SPACE, kappa=-1)
    with pytest.raises(NasError, match="algorithm evolution: unknown setting.*colour .*known: .*population"):
        make_algorithm("evolution", SPACE, colour="red")
    assert isinstance(make_algorithm("evolution", SPACE, population=30, sample=40), RegularizedEvolution)


def test_the_surrogate_sees_only_ranks_and_is_unsure_where_it_has_not_looked():
    cells = [SPACE.sample(random.Random(s)) for s in range(30)]
    feats = [path_features(g, SPACE.zero_op, SPACE.identity_op) for g in cells]
    value = landscape(4)
    y = np.array([value(g) for g in cells])
    np.testing.assert_allclose(normal_scores(y), normal_scores(np.exp(y)))  # any monotone transform
    np.testing.assert_allclose(normal_scores([1.0, 2.0, 2.0, 3.0])[1:3], 0.0, atol=1e-12)  # ties share a score
    model = RankModel().fit(feats, y)
    mean, std = model.predict(feats)
    assert np.corrcoef(mean, y)[0, 1] > 0.8
    unseen = {"normal:0:never>seen": 3}
    assert model.predict([unseen])[1][0] > std.max()
    # the dual form (more features than cells) gives the primal form's numbers
    few = RankModel().fit(feats[:5], y[:5])
    assert not few.primal
    primal = RankModel().fit(feats[:5], y[:5])
    primal.primal, x = True, np.zeros((5, len(few.columns)))
    for i, f in enumerate(feats[:5]):
        for k, n in f.items():
            x[i, few.columns[k]] = n
    xc = x - x.mean(axis=0)
    primal.inverse = np.linalg.inv(xc.T @ xc + few.alpha * np.eye(xc.shape[1]))
    primal.weights = primal.inverse @ (xc.T @ normal_scores(y[:5]))
    for a, b in zip(few.predict(feats[5:10]), primal.predict(feats[5:10])):
        np.testing.assert_allclose(a, b, atol=1e-8)


def test_family_features_let_a_cheap_conv_speak_for_an_expensive_one():
    assert [op_family(op) for op in ("nor_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "skip_connect")] \
        == ["conv", "conv", "pool", "skip_connect"]
    cheap = SPACE.parse("|nor_conv_1x1~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|")
    dear = SPACE.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|")
    f, g = features(cheap, SPACE, families=True), features(dear, SPACE, families=True)
    # the one path 0 > conv > (skip) > pool > out: by ops apart, by families and length the same
    assert path_features(cheap, SPACE.zero_op, SPACE.identity_op) == {"normal:0:nor_conv_1x1>avg_pool_3x3": 1}
    assert f == {"normal:0:nor_conv_1x1>avg_pool_3x3": 1, "normal:0:~conv>pool": 1, "normal:0:#2": 1}
    assert {k: n for k, n in f.items() if "~" in k or "#" in k} == {k: n for k, n in g.items() if "~" in k or "#" in k}
    # fitted on cells without conv1x1 to a value that counts the conv paths, the model ranks a conv1x1 cell
    # above the same cell with pools only through the family features
    rng, ops = random.Random(0), ["none", "skip_connect", "avg_pool_3x3", "nor_conv_3x3"]
    cells = [SPACE.parse("|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*(rng.choice(ops) for _ in range(6))))
             for _ in range(80)]
    value = [sum(n for k, n in features(c, SPACE, families=True).items() if "~" in k and "conv" in k) for c in cells]
    text = "|{0}~0|+|{0}~0|none~1|+|none~0|{0}~1|{0}~2|"  # three paths through the op
    pair = [SPACE.parse(text.format(op)) for op in ("nor_conv_1x1", "avg_pool_3x3")]
    gap = {}
    for families in (True, False):
        model = RankModel().fit([features(c, SPACE, families=families) for c in cells], value)
        mean, _ = model.predict([features(c, SPACE, families=families) for c in pair])
        gap[families] = mean[0] - mean[1]
    assert gap[True] > 0.5 > 0.1 > gap[False], gap  # measured: 0.93 and 0.05 normal scores


def test_the_pairs_kernel_learns_a_path_worth_more_beside_another():
    def value(g) -> float:  # deep conv paths help beside a residual and hurt without one
        f = features(g, SPACE)
        deep = sum(n for k, n in f.items() if k.count("conv") >= 2)
        return deep if f.get("normal:0:", 0) else -deep
    fit: dict[float, list[float]] = {0.0: [], 0.3: []}
    for seed in range(5):  # fitted to 100 random cells, scored on 200 others
        rng = random.Random(seed)
        cells = [SPACE.sample(rng) for _ in range(300)]
        feats, y = [features(c, SPACE) for c in cells], np.array([value(c) for c in cells])
        for pairs in fit:
            mean, _ = RankModel(pairs=pairs).fit(feats[:100], y[:100]).predict(feats[100:])
            fit[pairs].append(np.corrcoef(normal_scores(mean), normal_scores(y[100:]))[0, 1])
    gains = np.subtract(fit[0.3], fit[0.0])
    assert gains.min() > 0 and gains.mean() > 0.04, fit  # measured: gains 0.03-0.10, mean 0.07
    with pytest.raises(ValueError, match="pairs >= 0"):
        RankModel(pairs=-1)


def test_the_evidence_picks_a_small_alpha_for_a_learnable_value_and_a_large_one_for_noise():
    alphas = (1.0, 3.0, 10.0, 30.0, 100.0)
    rng = np.random.default_rng(0)
    kernel_of = rng.normal(size=(40, 8))
    kernel = kernel_of @ kernel_of.T
    for _ in range(5):  # against the log density of N(0, s2 (K / alpha + I)) computed directly, s2 profiled out
        y = rng.normal(size=40) + rng.uniform(0, 3) * kernel_of @ rng.normal(size=8)

        def direct(alpha: float, y=y) -> float:
            cov = kernel / alpha + np.eye(40)
            s2 = y @ np.linalg.solve(cov, y) / 40
            return -0.5 * 40 * np.log(s2) - 0.5 * np.linalg.slogdet(cov)[1]
        assert evidence_alpha(kernel, y, alphas) == max(alphas, key=direct)
    cells = [SPACE.sample(random.Random(s)) for s in range(120)]
    value = landscape(2)
    for pairs in (0.0, 0.3):  # the primal form (pairs 0, fewer features than cells) and the dual
        feats = [features(g, SPACE) for g in cells]
        learnable = RankModel(pairs=pairs, alphas=alphas).fit(feats, [value(g) for g in cells])
        noise = RankModel(pairs=pairs, alphas=alphas).fit(feats, list(np.random.default_rng(1).normal(size=120)))
        assert learnable.primal == (pairs == 0) and (learnable.alpha, noise.alpha) == (1.0, 100.0)
        assert RankModel(pairs=pairs).fit(feats, [value(g) for g in cells]).alpha == 10.0  # without alphas
    with pytest.raises(ValueError, match="alphas must be positive"):
        RankModel(alphas=(0.0,))


def test_the_best_cells_stay_parents_after_they_age_out():
    algorithm = make_algorithm("evolution", SPACE, seed=0, population=3, sample=1, initial=1)
    cells = [SPACE.sample(random.Random(s)) for s in range(6)]
    for number, g in enumerate(cells):  # the first cell is the best; it leaves the population at once
        algorithm.tell(Record(number, g, 10.0 if number == 0 else 1.0))
    assert algorithm.population[0].number == 3
    parents = {algorithm.ask().parent for _ in range(40)}
    assert 0 in parents  # a tournament of one sometimes draws the elite
    textbook = make_algorithm("evolution", SPACE, variant="textbook")
    assert textbook.elite == 0

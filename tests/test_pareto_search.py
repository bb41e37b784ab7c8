"""Search with several objectives: the algorithm interface, the Pareto evolution's ask/tell (resume),
Pareto local search and random search, and core.pareto's hypervolume improvement."""

import random

import pytest

from nasengine.algorithms import ALGORITHMS, Proposal, Record, make_algorithm
from nasengine.algorithms.choices import Choices
from nasengine.core.pareto import pareto_front
from nasengine.errors import NasError
from nasengine.spaces.cell import load_space

SPACE = load_space("nasbench201")
OBJECTIVES, DIRECTIONS = ("accuracy", "params"), ("maximize", "minimize")


def costs(g) -> dict[str, float]:
    """A made-up cheap objective: 1 per conv 1x1, 9 per conv 3x3 (NAS-Bench-201's ratio is 28,000 : 243,040)."""
    ops = [e.op for node in g.normal.nodes for e in node]
    return {"params": float(ops.count("nor_conv_1x1") + 9 * ops.count("nor_conv_3x3")), "flops": 0.0}


def accuracy(g) -> float:
    """A made-up accuracy: deterministic per cell, rising with convs on the way to the output."""
    h = int(SPACE.hash(g)[:8], 16)
    return 50.0 + 3.0 * costs(g)["params"] ** 0.5 + (h % 1000) / 100.0


def steps(algorithm, n: int, start: int = 0, value=None) -> list[tuple[Proposal, Record]]:
    """``n`` asks and tells, trials numbered from ``start``, each told ``value(number, genotype)``
    (default: ``accuracy``) and its ``costs``."""
    out = []
    for number in range(start, start + n):
        p = algorithm.ask()
        v = accuracy(p.genotype) if value is None else value(number, p.genotype)
        record = Record(number, p.genotype, v, p.parent, values=(v, costs(p.genotype)["params"]))
        algorithm.tell(record)
        out.append((p, record))
    return out


def drive(algorithm, n: int, history: list | None = None) -> list:
    history = [] if history is None else history
    history.extend(record for _, record in steps(algorithm, n, start=len(history)))
    return history


def make(name: str, seed: int = 0, **settings):
    return make_algorithm(name, SPACE, seed, objectives=OBJECTIVES, directions=DIRECTIONS, costs=costs, **settings)


@pytest.mark.parametrize("name", ["evolution", "local", "random"])
def test_a_fresh_algorithm_told_the_history_proposes_the_same(name):
    original = make(name, seed=3)
    history = drive(original, 40)
    resumed = make(name, seed=3)
    for r in history:
        resumed.tell(r)
    for _ in range(5):  # several asks in a row (a batch), then the same answers
        a, b = original.ask(), resumed.ask()
        assert SPACE.format(a.genotype) == SPACE.format(b.genotype) and a.parent == b.parent


@pytest.mark.parametrize("name", ["evolution", "local"])
def test_pareto_searches_never_repeat_a_candidate_and_use_the_zero_op(name):
    history = drive(make(name, seed=1), 80)
    keys = [(SPACE.hash(r.genotype), r.values[1]) for r in history]
    assert len(set(keys)) == len(keys)
    assert any("none" in SPACE.format(r.genotype) for r in history)


def test_single_objective_algorithms_refuse_several_and_the_interface_is_checked():
    with pytest.raises(NasError, match="takes one objective"):
        make("reinforce")
    with pytest.raises(NasError, match="2 objectives but 1 directions"):
        make_algorithm("evolution", SPACE, 0, objectives=OBJECTIVES, directions=("maximize",))
    with pytest.raises(NasError, match="unknown direction"):
        make_algorithm("evolution", SPACE, 0, objectives=OBJECTIVES, directions=("maximize", "down"))
    with pytest.raises(NasError, match="a single objective is maximised"):
        make_algorithm("evolution", SPACE, 0, objectives=("params",), directions=("minimize",))
    with pytest.raises(NasError, match="algorithm evolution"):
        make("evolution", variant="textbook")
    single = make_algorithm("evolution", SPACE, 0, objectives=("accuracy",), directions=("maximize",))
    assert type(single) is ALGORITHMS["evolution"]
    assert Record(0, single.space.sample(random.Random(0)), 1.5).values == (1.5,)
    assert Record(0, single.space.sample(random.Random(0)), None).values is None


def test_every_candidate_of_the_choices_view_is_one_edit_away():
    g = SPACE.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_1x1~2|")
    neighbours = Choices(SPACE).neighbours(g)
    assert len(neighbours) == 6 * 4
    base = SPACE.to_params(g)
    for n in neighbours:
        assert sum(v != base[k] for k, v in SPACE.to_params(n).items()) == 1


@pytest.mark.parametrize("space_name, objectives", [("nasbench201", ("accuracy", "params", "flops")),
                                                     ("mnasnet", ("accuracy", "params"))])
def test_the_pareto_evolution_takes_three_objectives_and_the_block_space(space_name, objectives):
    space = load_space(space_name)

    def made_up(g) -> dict[str, float]:
        h = int(space.hash(g)[:8], 16)
        return {"params": float(h % 97), "flops": float(h % 53)}

    directions = ("maximize",) + ("minimize",) * (len(objectives) - 1)
    algorithm = make_algorithm("evolution", space, 2, objectives=objectives, directions=directions, costs=made_up)
    hashes = []
    for n in range(60):
        p = algorithm.ask()
        values = (float(int(space.hash(p.genotype)[8:16], 16) % 1000),) + tuple(made_up(p.genotype)[o]
                                                                               for o in objectives[1:])
        algorithm.tell(Record(n, p.genotype, values[0], p.parent, values=values))
        hashes.append((space.hash(p.genotype), values[1:]))
    assert len(set(hashes)) == len(hashes)


def stalled_run(n: int, **settings) -> list[tuple[Proposal, Record]]:
    """``n`` asks and tells of the evolution whose first cell (the costliest) is told the best accuracy and
    no later one beats it (stalled from the 41st cell told), while cheaper cells keep making a front below it."""
    costliest = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    return steps(make("evolution", seed=5, init=[costliest], **settings), n,
                 value=lambda number, g: 200.0 if number == 0 else accuracy(g))


def test_the_unbounded_step_gives_way_once_the_best_accuracy_has_stalled():
    """After ``stall`` cells told without a new best accuracy, the unbounded steps fall from ``top`` to
    ``stalled_top`` (``stalled_run``)."""

    def unbounded_share(**settings) -> float:
        late = [p.note for p, _ in stalled_run(160, **settings)[60:]]
        return sum(note == "mutation:ranked" for note in late) / len(late)

    assert unbounded_share(stall=1000) > 0.45  # top 0.6: never stalled
    assert unbounded_share() < 0.35  # stalled after 40 cells: stalled_top 0.2
    with pytest.raises(NasError, match="stall must be >= 1.*stalled_top in \\[0, 1\\]"):
        make("evolution", stall=0)
    with pytest.raises(NasError, match="stalled_top=1.5"):
        make("evolution", stalled_top=1.5)


def test_a_stalled_run_steps_up_to_two_edits_from_its_parent():
    """Once stalled, the unbounded step's children are the parent's untried cells within two edits (a
    residual and a deeper conv chain take two edits in NAS-Bench-201); before, and with
    ``stalled_edits=1``, one edit."""

    def edits(**settings) -> dict[str, set[int]]:
        run = stalled_run(120, **settings)
        out: dict[str, set[int]] = {"early": set(), "stalled": set()}
        for n, (p, _) in enumerate(run):
            if p.note == "mutation:ranked":
                parent, child = (SPACE.to_params(g) for g in (run[p.parent][1].genotype, p.genotype))
                out["early" if n <= 40 else "stalled"].add(sum(parent[k] != child[k] for k in child))
        return out

    default = edits()
    assert default["early"] == {1} and 2 in default["stalled"] and default["stalled"] <= {1, 2}
    assert edits(stalled_edits=1) == {"early": {1}, "stalled": {1}}
    with pytest.raises(NasError, match="stalled_edits 1 or 2.*stalled_edits=3"):
        make("evolution", stalled_edits=3)


def test_the_steps_also_take_the_untried_neighbours_of_the_first_two_fronts():
    """Both steps' children include the untried neighbours of the cells in the first ``front_layers`` (2)
    non-dominated layers, each credited to its own parent (one edit away). A bounded step can then
    downgrade the costliest front member, which its own tournament never holds (its members are cheaper
    than the bound); with ``front_layers=0`` it never does."""

    def downgrades_of_the_costliest(**settings) -> int:
        run, count = steps(make("evolution", seed=3, **settings), 80), 0
        history = [record for _, record in run]
        for number, (p, _) in enumerate(run):
            if p.parent is not None:
                parent, child = (SPACE.to_params(g) for g in (history[p.parent].genotype, p.genotype))
                assert sum(parent[k] != child[k] for k in child) == 1  # never stalled here
                told = history[:number]  # what the algorithm had been told when it asked
                front = [told[i] for i in pareto_front([r.values for r in told], (True, False))]
                costliest = max(front, key=lambda r: r.values[1])
                count += p.note == "mutation:bounded" and p.parent == costliest.number
        return count

    assert downgrades_of_the_costliest() > 0
    assert downgrades_of_the_costliest(front_layers=0) == 0
    with pytest.raises(NasError, match="front_layers=-1"):
        make("evolution", front_layers=-1)


def test_bounded_steps_rank_by_expected_improvement_from_improve_from_on():
    """Until ``improve_from`` cells are told the bounded steps rank children by the upper bound of their
    accuracy, as with ``improve_from`` never reached; from then on by expected hypervolume improvement,
    which picks other children."""
    ranked = [(SPACE.format(r.genotype)) for r in drive(make("evolution", seed=4, improve_from=30), 80)]
    plain = [(SPACE.format(r.genotype)) for r in drive(make("evolution", seed=4, improve_from=10**9), 80)]
    assert ranked[:30] == plain[:30]
    assert ranked[30:] != plain[30:]
    with pytest.raises(NasError, match="improve_from=-1"):
        make("evolution", improve_from=-1)


def test_the_models_take_alpha_by_evidence_from_evidence_from_on():
    """Until ``evidence_from`` cells are told both models keep ``alpha``; from then on each takes the alpha
    of ``alphas`` with the largest evidence, which changes the cells proposed."""
    algorithm = make("evolution", seed=4)
    drive(algorithm, 49)
    assert [algorithm.model(0, bounded).alpha for bounded in (False, True)] == [10.0, 10.0]
    drive(algorithm, 1)
    assert all(algorithm.model(0, bounded).alphas == (1, 3, 10, 30, 100) for bounded in (False, True))
    assert {algorithm.model(0, bounded).alpha for bounded in (False, True)} != {10.0}
    late = [SPACE.format(r.genotype) for r in drive(make("evolution", seed=4), 90)]
    never = [SPACE.format(r.genotype) for r in drive(make("evolution", seed=4, evidence_from=10**9), 90)]
    assert late[:50] == never[:50] and late[50:] != never[50:]
    with pytest.raises(NasError, match="alphas=\\(\\)"):
        make("evolution", alphas=())


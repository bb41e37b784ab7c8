import random

import networkx as nx
import pytest

from nasengine.core.genotype import Cell, Edge, Genotype
from nasengine.errors import NasError
from nasengine.spaces.cell import load_space

SPACES = ["nasnet", "pnasnet", "darts", "nasbench201"]


@pytest.mark.parametrize("name", SPACES)
def test_sampled_genotypes_round_trip_and_mutate(name):
    space = load_space(name)
    rng = random.Random(0)
    for _ in range(200):
        g = space.sample(rng)
        space.validate(g)
        assert Genotype.parse(str(g)) == g
        assert space.parse(space.format(g)) == g
        params = space.to_params(g)
        choices = space.param_choices()
        assert all(params[k] in choices[k] for k in params)
        assert space.from_params(params) == g
        child, kind = space.mutate(g, rng)
        assert child != g and kind in ("op", "hidden_state")
        space.validate(child)


def test_isomorphic_cells_hash_equal():
    space = load_space("nasnet")
    a = Genotype.parse("normal: sep_conv_3x3~1 + identity~0 | avg_pool_3x3~0 + sep_conv_5x5~1 | identity~2 + "
                       "max_pool_3x3~3 | conv_1x1~1 + identity~1 | sep_conv_7x7~0 + identity~5 ; reduce: "
                       + " | ".join(["identity~0 + identity~1"] * 5))
    # blocks 2 and 3 swap places (state 2 <-> 3), edges within blocks swap order
    b = Genotype.parse("normal: sep_conv_5x5~1 + avg_pool_3x3~0 | identity~0 + sep_conv_3x3~1 | max_pool_3x3~2 + "
                       "identity~3 | identity~1 + conv_1x1~1 | identity~5 + sep_conv_7x7~0 ; reduce: "
                       + " | ".join(["identity~1 + identity~0"] * 5))
    assert a != b
    assert space.hash(a) == space.hash(b)
    c = Genotype.parse(str(a).replace("sep_conv_7x7~0", "sep_conv_7x7~1"))
    assert space.hash(c) != space.hash(a)


def test_nasbench201_dead_edges_and_isomorphism_share_a_form():
    space = load_space("nasbench201")
    # node 1 is zero, so the conv reading it is dead: same function as a none edge there
    a = space.parse("|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    b = space.parse("|none~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    assert space.hash(a) == space.hash(b)
    # node 1 is the input itself, so node 3's two convs read the same state either way round
    c = space.parse("|skip_connect~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_3x3~1|none~2|")
    d = space.parse("|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|none~2|")
    assert space.hash(c) == space.hash(d)
    assert space.hash(a) != space.hash(c)


def test_graph_view():
    g = load_space("nasnet").sample(random.Random(1))
    dag = g.graph()
    assert isinstance(dag, nx.DiGraph) and nx.is_directed_acyclic_graph(dag)
    assert dag.number_of_edges() == 2 * 10 + sum(len(c.output_states()) for _, c in g.cells)
    assert {d["op"] for *_, d in dag.edges(data=True)} <= g.ops() | {"concat"}


def test_explicit_concat_round_trips_through_params():
    space = load_space("nasnet")
    g = space.sample(random.Random(2))
    cells = tuple((n, Cell(c.nodes, c.n_inputs, (0, 2, 3))) for n, c in g.cells)
    h = Genotype(cells)
    assert space.from_params(space.to_params(h)) == h
    assert "normal/concat" in space.to_params(h) and "normal/concat" not in space.to_params(g)


@pytest.mark.parametrize("text, message", [
    ("normal: sep_conv_3x3~1 + identity~0 | avg_pool_3x3~4 + identity~1", "node 3 takes input from state 4"),
    ("normal: sep_conv_3x3~1 + identity~2", "node 2 takes input from itself (a cycle)"),
    ("normal: sep_conv_3x3~9 + identity~0", "out of range"),
    ("normal: sep_conv_3x3 + identity~0", "cannot read edge 'sep_conv_3x3'"),
    ("normal: sep_conv_3x3~1 + identity~0 > 0,7", "concat state 7 is out of range"),
    ("just words", "cannot read cell"),
])
def test_malformed_genotypes_give_one_line_errors(text, message):
    with pytest.raises(NasError) as info:
        Genotype.parse(text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_space_validation_names_the_problem():
    space = load_space("nasnet")
    g = space.sample(random.Random(3))
    bad = Genotype.parse(str(g).replace(g.normal.nodes[0][0].op + "~", "sep_conv_9x9~", 1))
    with pytest.raises(NasError, match="unknown op 'sep_conv_9x9'"):
        space.validate(bad)
    with pytest.raises(NasError, match="cells normal, reduce"):
        space.validate(Genotype((("normal", g.normal),)))
    with pytest.raises(NasError, match="param 'normal/node2/in0' is missing"):
        space.from_params({})
    assert Edge(1, "x") == Edge(1, "x")

"""The published cells: transcribed exactly, valid, and round-tripping through every form."""

import pytest

from nasengine.core.genotype import Cell, Edge, Genotype
from nasengine.errors import NasError
from nasengine.spaces.cell import load_space
from nasengine.zoo.published import (
    AMOEBANET_A_NORMAL_SLIM,
    AMOEBANET_A_REDUCE_SLIM,
    ENAS_FIXED_ARC,
    NASNET_A_NORMAL_SLIM,
    NASNET_A_REDUCE_SLIM,
    PNASNET_5_SLIM,
    PUBLISHED,
    SOURCES,
    darts_to_slim,
    from_enas,
    from_slim,
    get_published,
    parse_enas_arc,
    slim_to_darts,
    to_slim,
)

SLIM_CELLS = {
    "nasnet_a/normal": NASNET_A_NORMAL_SLIM,
    "nasnet_a/reduce": NASNET_A_REDUCE_SLIM,
    "amoebanet_a/normal": AMOEBANET_A_NORMAL_SLIM,
    "amoebanet_a/reduce": AMOEBANET_A_REDUCE_SLIM,
    "pnasnet_5/normal": PNASNET_5_SLIM,
}

# Transcribed by hand into DARTS numbering (docs/cells.md), independently of the converters.
EXPECTED = {
    "nasnet_a": (
        "normal: sep_conv_5x5~1 + sep_conv_3x3~0 | sep_conv_5x5~0 + sep_conv_3x3~0 | avg_pool_3x3~1 + identity~0"
        " | avg_pool_3x3~0 + avg_pool_3x3~0 | sep_conv_3x3~1 + identity~1 > 0,2,3,4,5,6 ;"
        " reduce: sep_conv_5x5~1 + sep_conv_7x7~0 | max_pool_3x3~1 + sep_conv_7x7~0 | avg_pool_3x3~1 + sep_conv_5x5~0"
        " | identity~3 + avg_pool_3x3~2 | sep_conv_3x3~2 + max_pool_3x3~1 > 3,4,5,6"),
    "amoebanet_a": (
        "normal: avg_pool_3x3~1 + max_pool_3x3~1 | sep_conv_3x3~0 + identity~0 | identity~1 + avg_pool_3x3~0"
        " | sep_conv_3x3~1 + sep_conv_5x5~2 | avg_pool_3x3~5 + sep_conv_3x3~1 > 0,3,4,6 ;"
        " reduce: sep_conv_3x3~0 + avg_pool_3x3~1 | max_pool_3x3~1 + sep_conv_7x7~2 | max_pool_3x3~0 + max_pool_3x3~1"
        " | sep_conv_3x3~4 + conv_1x7_7x1_bottleneck~1 | avg_pool_3x3~0 + sep_conv_7x7~1 > 2,3,4,5,6"),
    "pnasnet_5": (
        "normal: sep_conv_5x5~0 + max_pool_3x3~0 | sep_conv_7x7~1 + max_pool_3x3~1 | sep_conv_5x5~1 + sep_conv_3x3~1"
        " | sep_conv_3x3~4 + max_pool_3x3~1 | sep_conv_3x3~0 + identity~1 > 2,3,4,5,6"),
    "darts_v1": (
        "normal: sep_conv_3x3~1 + sep_conv_3x3~0 | skip_connect~0 + sep_conv_3x3~1 | skip_connect~0 + sep_conv_3x3~1"
        " | sep_conv_3x3~0 + skip_connect~2 > 2,3,4,5 ;"
        " reduce: max_pool_3x3~0 + max_pool_3x3~1 | skip_connect~2 + max_pool_3x3~0 | max_pool_3x3~0 + skip_connect~2"
        " | skip_connect~2 + avg_pool_3x3~0 > 2,3,4,5"),
    "darts_v2": (
        "normal: sep_conv_3x3~0 + sep_conv_3x3~1 | sep_conv_3x3~0 + sep_conv_3x3~1 | sep_conv_3x3~1 + skip_connect~0"
        " | skip_connect~0 + dil_conv_3x3~2 > 2,3,4,5 ;"
        " reduce: max_pool_3x3~0 + max_pool_3x3~1 | skip_connect~2 + max_pool_3x3~1 | max_pool_3x3~0 + skip_connect~2"
        " | skip_connect~2 + max_pool_3x3~1 > 2,3,4,5"),
    "enas": (
        "normal: avg_pool_3x3~0 + sep_conv_3x3~0 | enas_identity~0 + sep_conv_5x5~0 | enas_identity~0 + sep_conv_5x5~1"
        " | sep_conv_3x3~1 + sep_conv_5x5~0 | avg_pool_3x3~0 + sep_conv_5x5~1 > 2,3,4,5,6 ;"
        " reduce: sep_conv_3x3~1 + sep_conv_3x3~1 | max_pool_3x3~0 + avg_pool_3x3~0 | sep_conv_5x5~1 + sep_conv_5x5~3"
        " | sep_conv_3x3~1 + enas_identity~0 | max_pool_3x3~0 + sep_conv_5x5~1 > 2,4,5,6"),
}

# The concatenated states, as each source has them (slim/TPU: used_hiddenstates == 0, renumbered;
# DARTS: *_concat; ENAS: the states no node reads).
CONCATS = {
    ("nasnet_a", "normal"): (0, 2, 3, 4, 5, 6),  # includes h_{i-2}
    ("nasnet_a", "reduce"): (3, 4, 5, 6),        # node 3 is consumed by node 5 and still concatenated
    ("amoebanet_a", "normal"): (0, 3, 4, 6),     # includes h_{i-2}
    ("amoebanet_a", "reduce"): (2, 3, 4, 5, 6),
    ("pnasnet_5", "normal"): (2, 3, 4, 5, 6),
    ("darts_v1", "normal"): (2, 3, 4, 5),
    ("darts_v1", "reduce"): (2, 3, 4, 5),
    ("darts_v2", "normal"): (2, 3, 4, 5),
    ("darts_v2", "reduce"): (2, 3, 4, 5),
    ("enas", "normal"): (2, 3, 4, 5, 6),
    ("enas", "reduce"): (2, 4, 5, 6),
}

# nasengine's op vocabulary names the published cells use (semantics: docs/cells.md)
VOCABULARY = {"identity", "skip_connect", "enas_identity", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
              "avg_pool_3x3", "max_pool_3x3", "dil_conv_3x3", "conv_1x7_7x1_bottleneck"}


# the published cells (the block networks after them: tests/test_block_networks.py)
CELLS = ["nasnet_a", "amoebanet_a", "pnasnet_5", "darts_v1", "darts_v2", "enas"]


def test_registry_names():
    assert list(PUBLISHED)[:6] == CELLS
    assert list(PUBLISHED)[6:] == ["mobilenet_v2", "mnasnet_a1", *(f"efficientnet_b{i}" for i in range(8))]
    assert set(SOURCES) == set(PUBLISHED)


@pytest.mark.parametrize("name", CELLS)
def test_published_cells_are_transcribed_exactly(name):
    assert str(PUBLISHED[name]) == EXPECTED[name]
    assert Genotype.parse(EXPECTED[name]) == PUBLISHED[name]


@pytest.mark.parametrize("name", CELLS)
def test_text_form_round_trips(name):
    g = PUBLISHED[name]
    assert Genotype.parse(str(g)) == g
    assert str(Genotype.parse(str(g))) == str(g)
    for _, cell in g.cells:
        assert Cell.parse(str(cell)) == cell


@pytest.mark.parametrize("name", CELLS)
def test_published_genotypes_are_structurally_valid(name):
    g = PUBLISHED[name]
    assert g.names == (("normal",) if name == "pnasnet_5" else ("normal", "reduce"))
    for _, cell in g.cells:
        # rebuilding runs Cell's own validation (acyclic, indices in range, concat in range, unique)
        assert Cell(cell.nodes, cell.n_inputs, cell.concat) == cell
        assert cell.n_inputs == 2
        assert len(cell.nodes) == (4 if name.startswith("darts") else 5)
        assert all(len(node) == 2 for node in cell.nodes)
        assert cell.concat is not None, "published cells carry an explicit concat"
        # every node's state is either concatenated or read by a later node: nothing is dead
        for s in range(2, cell.n_states):
            assert s in cell.concat or s in cell.consumed()
    assert g.ops() <= VOCABULARY
    g.graph()  # the networkx view builds


@pytest.mark.parametrize("cell_name", ["normal", "reduce"])
@pytest.mark.parametrize("name", CELLS)
def test_concat_lists_are_as_the_sources_have_them(name, cell_name):
    g = PUBLISHED[name]
    if cell_name not in g.names:
        assert name == "pnasnet_5" and g.reduce is None
        return
    assert g.cell(cell_name).concat == CONCATS[(name, cell_name)]
    assert g.cell(cell_name).output_states() == CONCATS[(name, cell_name)]


@pytest.mark.parametrize("name, space", [("nasnet_a", "nasnet"), ("pnasnet_5", "pnasnet"),
                                         ("darts_v1", "darts"), ("darts_v2", "darts")])
def test_published_genotypes_fit_their_search_space(name, space):
    s = load_space(space)
    g = PUBLISHED[name]
    assert s.validate(g) == g
    assert s.from_params(s.to_params(g)) == g
    assert s.parse(s.format(g)) == g


@pytest.mark.parametrize("key", list(SLIM_CELLS))
def test_slim_darts_index_conversion_round_trips(key):
    spec = SLIM_CELLS[key]
    indices = spec["hiddenstate_indices"]
    darts = slim_to_darts(indices)
    assert darts_to_slim(darts) == indices
    assert slim_to_darts(darts_to_slim(indices)) == indices
    # only the two inputs swap: node states keep their numbers
    assert [i for i in darts if i >= 2] == [i for i in indices if i >= 2]
    # the whole cell spec round-trips too: operations, indices and used_hiddenstates
    operations, hiddenstate_indices, used_hiddenstates = to_slim(from_slim(**spec))
    assert operations == spec["operations"]
    assert hiddenstate_indices == spec["hiddenstate_indices"]
    assert used_hiddenstates == spec["used_hiddenstates"]


def test_slim_numbering_swaps_the_two_inputs():
    assert slim_to_darts([0, 1, 2, 3, 4, 5, 6]) == [1, 0, 2, 3, 4, 5, 6]
    assert darts_to_slim([0, 1, 2, 3, 4, 5, 6]) == [1, 0, 2, 3, 4, 5, 6]
    # slim index 0 is h_{i-1}: a slim edge from 0 becomes an edge from state 1
    cell = from_slim(["none", "none"], [0, 1], [1, 1, 0])
    assert cell.nodes == ((Edge(1, "identity"), Edge(0, "identity")),)
    assert cell.concat == (2,)
    # slim concatenates flagged-0 states in its own order: h_{i-1} (darts 1) before h_{i-2} (darts 0)
    assert from_slim(["none", "none"], [0, 1], [0, 0, 0]).concat == (1, 0, 2)


def test_from_slim_rejects_malformed_specs():
    with pytest.raises(NasError):
        from_slim(["none"], [0], [1, 1, 0])
    with pytest.raises(NasError):
        from_slim(["none", "none"], [0, 1], [1, 1])
    with pytest.raises(NasError, match="unknown slim operation"):
        from_slim(["none", "dil_2_separable_5x5_2"], [0, 1], [1, 1, 0])


def test_enas_arc_decoding():
    normal, reduce = parse_enas_arc(ENAS_FIXED_ARC)
    assert Genotype.of(normal=normal, reduce=reduce) == PUBLISHED["enas"]
    # ENAS numbers like DARTS (0 = h_{i-2}) and concatenates every unread state, inputs included
    cell = from_enas([1, 4, 1, 0])
    assert cell.nodes == ((Edge(1, "enas_identity"), Edge(1, "sep_conv_3x3")),)
    assert cell.concat == (0, 2)
    with pytest.raises(NasError):
        parse_enas_arc("0 2 0 0")
    with pytest.raises(NasError):
        from_enas([0, 5, 1, 0])


def test_get_published():
    assert get_published("darts_v2") is PUBLISHED["darts_v2"]
    with pytest.raises(NasError) as err:
        get_published("nasnet")
    message = str(err.value)
    assert "\n" not in message
    for name in PUBLISHED:
        assert name in message

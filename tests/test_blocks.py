"""The block genotype (core/blocks.py): validation, text form, plain data and graph."""

import networkx as nx
import pytest

from nasengine.core import Block, Blocks, canonical_blocks
from nasengine.errors import NasError

TEXT = "dwconv k3 c16 n1 s1 | mbconv6 k3 c24 n2 s2 | mbconv3 k5 se0.25 c40 n3 s2 | conv k7 c8 n1 s2 noskip"


def test_text_round_trips_exactly():
    g = Blocks.parse(TEXT)
    assert str(g) == TEXT
    assert Blocks.parse(str(g)) == g
    assert g.blocks[2] == Block("mbconv3", 5, 40, 3, 2, se=0.25)
    assert g.blocks[3].skip is False and g.blocks[0].se == 0.0
    assert g.ops() == {"dwconv", "mbconv6", "mbconv3", "conv"}
    assert Blocks.parse("  mbconv12 k3 se1e-05 c24 n2 s2  ").blocks[0].se == 1e-05
    for b in (Block("mbconv6", 3, 24, 2, 2, se=1e-05), Block("conv", 5, 1, 1, 1, se=1, skip=False)):
        assert Block.parse(str(b)) == b


def test_to_data_and_graph():
    g = Blocks.parse(TEXT)
    data = g.to_data()
    assert data["blocks"][2] == {"op": "mbconv3", "kernel": 5, "filters": 40, "layers": 3, "stride": 2, "se": 0.25,
                                 "skip": True}
    assert Blocks(tuple(Block(**b) for b in data["blocks"])) == g
    graph = g.graph()
    assert isinstance(graph, nx.DiGraph)
    assert list(graph.edges) == [(0, 1), (1, 2), (2, 3)]
    assert graph.nodes[3] == {"op": "conv", "kernel": 7, "filters": 8, "layers": 1, "stride": 2, "se": 0.0,
                              "skip": False}


def test_canonical_ignores_skip_only_where_it_cannot_matter():
    strided_one = Blocks.parse("mbconv6 k3 c24 n1 s2 noskip")
    assert canonical_blocks(strided_one) == Blocks.parse("mbconv6 k3 c24 n1 s2")
    for text in ("mbconv6 k3 c24 n2 s2 noskip", "mbconv6 k3 c24 n1 s1 noskip"):  # later layers / stride 1
        assert canonical_blocks(Blocks.parse(text)) == Blocks.parse(text)


@pytest.mark.parametrize("text, says", [
    ("", "empty genotype text"),
    ("normal: sep_conv_3x3~0 + identity~1", "cell genotype"),
    ("foo k3 c16 n1 s1", "not conv, dwconv or mbconvN"),
    ("mbconv1 k3 c16 n1 s1", "not conv, dwconv or mbconvN"),
    ("conv k4 c16 n1 s1", "kernel 4"),
    ("conv k3 c0 n1 s1", "filters 0"),
    ("conv k3 c16 n0 s1", "layers 0"),
    ("conv k3 c16 n1 s3", "stride 3"),
    ("conv k3 se1.5 c16 n1 s1", "se ratio"),
    ("conv k3 c16 n1", "lacks s"),
    ("conv k3 c16.5 n1 s1", "whole numbers"),
    ("conv k3 c16 c16 n1 s1", "repeats a field"),
    ("conv k3 noskip c16 n1 s1", "'noskip' is not"),
    ("conv k3 c16 n1 s1 |", "empty block"),
])
def test_bad_texts_give_one_line_errors(text, says):
    with pytest.raises(NasError) as e:
        Blocks.parse(text)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_bad_values_are_refused():
    for kwargs in ({"kernel": 3.0}, {"stride": True}, {"filters": -1}, {"se": float("nan")}, {"skip": 1}):
        with pytest.raises(NasError):
            Block(**{"op": "conv", "kernel": 3, "filters": 8, "layers": 1, "stride": 1, **kwargs})
    with pytest.raises(NasError, match="at least one block"):
        Blocks(())

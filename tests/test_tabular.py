import csv
import itertools
from collections import defaultdict
from pathlib import Path

import pytest

from nasengine.bench.table import TableEvaluator, load_table
from nasengine.errors import NasError
from nasengine.spaces.cell import load_space

SHARED_TABLE = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "nats_bench_tss_200ep.csv"
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def nb201_text(ops: tuple[str, ...]) -> str:
    """The NAS-Bench-201 string of the cell with these 6 edge ops (edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2)."""
    a, b, c, d, e, f = ops
    return f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|"


def write_table(path: Path, rows: list[tuple[str, float, float]]) -> str:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ArchitectureString", "acc", "other"])
        writer.writerows(rows)
    return str(path)


@pytest.fixture(scope="module")
def space():
    return load_space("nasbench201")


def test_the_evaluator_answers_from_a_small_table(tmp_path, space):
    conv = nb201_text(("nor_conv_3x3",) * 6)
    path = write_table(tmp_path / "t.csv", [(conv, 91.5, 1.0), (nb201_text(("skip_connect",) * 6), 60.25, 2.0)])
    table = load_table(path, "acc")
    assert len(table) == 2 and table.best() == 91.5
    assert table.value(space.parse(conv)) == 91.5
    result = TableEvaluator(path, "other")(conv)
    assert result["value"] == 1.0 and result["curve"] == [1.0]
    seen = []
    TableEvaluator(path, "acc")(conv, 0, lambda epoch, value: seen.append((epoch, value)))
    assert seen == [(1, 91.5)]


def test_a_table_in_the_engines_own_notation_is_read_too(tmp_path, space):
    g = space.parse(nb201_text(("nor_conv_1x1", "avg_pool_3x3", "none", "skip_connect", "nor_conv_3x3", "none")))
    path = write_table(tmp_path / "own.csv", [(str(g), 70.0, 0.0)])
    assert load_table(path, "acc").value(g) == 70.0


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("ArchitectureString,acc\n", "has no rows"),
    ("Cell,acc\nx,1\n", "no column 'ArchitectureString'"),
    ("ArchitectureString,other\nx,1\n", "no column 'acc' (columns: other)"),
    ("ArchitectureString,acc\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,high\n", "'high' is not a number"),
    ("ArchitectureString,acc\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,nan\n", "acc is nan"),
])
def test_malformed_tables_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(NasError) as info:
        load_table(str(path), "acc")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_tables_and_cells_are_reported(tmp_path, space):
    with pytest.raises(NasError, match="does not exist"):
        load_table(str(tmp_path / "nope.csv"), "acc")
    path = write_table(tmp_path / "one.csv", [(nb201_text(("nor_conv_3x3",) * 6), 90.0, 0.0)])
    with pytest.raises(NasError, match="is not in table"):
        load_table(path, "acc").value(space.parse(nb201_text(("skip_connect",) * 6)))


def test_a_changed_file_is_read_again(tmp_path, space):
    conv = nb201_text(("nor_conv_3x3",) * 6)
    path = tmp_path / "t.csv"
    write_table(path, [(conv, 90.0, 0.0)])
    assert load_table(str(path), "acc").best() == 90.0
    write_table(path, [(conv, 91.0, 0.0), (nb201_text(("nor_conv_1x1",) * 6), 80.0, 0.0)])
    assert load_table(str(path), "acc").best() == 91.0


def test_cells_differing_on_dead_edges_or_by_isomorphism_share_a_form(space):
    h = space.hash
    parse = space.parse
    # node 1 feeds nothing when edges 2<-1 and 3<-1 are none: its own op is dead
    assert h(parse(nb201_text(("nor_conv_1x1", "nor_conv_3x3", "none", "skip_connect", "none", "avg_pool_3x3")))) == \
        h(parse(nb201_text(("avg_pool_3x3", "nor_conv_3x3", "none", "skip_connect", "none", "avg_pool_3x3"))))
    # the output reads nothing: every cell with all three output edges none is one function
    assert h(parse(nb201_text(("nor_conv_1x1", "nor_conv_3x3", "skip_connect", "none", "none", "none")))) == \
        h(parse(nb201_text(("avg_pool_3x3", "none", "nor_conv_1x1", "none", "none", "none"))))
    # node 1 is the input itself (a skip): an op on edge 1<-0 or on edge 2<-1 is the same function
    assert h(parse(nb201_text(("skip_connect", "skip_connect", "nor_conv_1x1", "skip_connect", "skip_connect",
                               "nor_conv_1x1")))) == \
        h(parse(nb201_text(("skip_connect", "nor_conv_1x1", "skip_connect", "skip_connect", "skip_connect",
                            "nor_conv_1x1"))))
    # sums are unordered: conv3x3 of input 0 or of node 1 (= input 0) into the output is one function
    assert h(parse(nb201_text(("skip_connect", "avg_pool_3x3", "avg_pool_3x3", "nor_conv_3x3", "skip_connect",
                               "nor_conv_1x1")))) == \
        h(parse(nb201_text(("skip_connect", "avg_pool_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3",
                            "nor_conv_1x1"))))
    # and different ops are different functions
    assert h(parse(nb201_text(("nor_conv_3x3",) * 6))) != h(parse(nb201_text(("nor_conv_1x1",) * 6)))


def test_all_15625_cells_form_6466_functions(space):
    forms = {space.hash(space.parse(nb201_text(ops))) for ops in itertools.product(OPS, repeat=6)}
    assert len(forms) == 6466


@pytest.mark.skipif(not SHARED_TABLE.is_file(), reason=f"the shared NATS-Bench table is absent ({SHARED_TABLE})")
def test_the_canonical_form_groups_cells_exactly_as_the_tables_unique_string(space):
    by_unique, by_hash = defaultdict(set), defaultdict(set)
    with open(SHARED_TABLE, newline="") as f:
        for row in csv.DictReader(f):
            text = row["ArchitectureString"]
            by_unique[row["UniqueString"]].add(text)
            by_hash[space.hash(space.parse(text))].add(text)
    assert sum(map(len, by_unique.values())) == 15625
    assert len(by_unique) == len(by_hash) == 6466
    assert {frozenset(s) for s in by_unique.values()} == {frozenset(s) for s in by_hash.values()}

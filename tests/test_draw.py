"""Cell diagrams (every space, published cells, layout properties, Optuna artifacts) and search plots."""

import itertools
import random
import struct
import subprocess
import sys

import pytest

from nasengine.cli.main import main
from nasengine.core.genotype import Cell
from nasengine.errors import NasError
from nasengine.spaces.cell import load_space
from nasengine.viz.cells import draw_genotype, render, text_size
from nasengine.viz.layout import CURVE_RUN, MAX_COLUMN_GAP, layout_cell, sample_edge
from nasengine.viz.ops import op_family, short_op
from nasengine.viz.plots import (
    best_so_far,
    darts_edge_names,
    plot_alphas,
    plot_bench_curves,
    plot_best_so_far,
    plot_curves,
    plot_pareto,
    plot_study,
)
from nasengine.zoo.published import PUBLISHED

SPACES = ["nasnet", "pnasnet", "darts", "nasbench201"]
NB201_WITH_NONE = "|none~0|+|skip_connect~0|none~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|"


def png_size(path):
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def assert_sensible_png(path, min_w=400, min_h=150, min_bytes=10_000):
    w, h = png_size(path)
    assert min_w <= w <= 5000 and min_h <= h <= 4000, (w, h)
    assert path.stat().st_size > min_bytes  # not blank
    return w, h


# ---- labels and colours ----------------------------------------------------------------------------
@pytest.mark.parametrize("op,label,family", [
    ("sep_conv_3x3", "sep 3x3", "sep"), ("dil_conv_5x5", "dil 5x5", "dil"), ("avg_pool_3x3", "avg 3x3", "avg"),
    ("max_pool_7x7", "max 7x7", "max"), ("skip_connect", "skip", "identity"), ("identity", "identity", "identity"),
    ("none", "none", "none"), ("nor_conv_1x1", "conv 1x1", "conv"), ("conv_3x3", "conv 3x3", "conv"),
    ("conv_1x7_7x1", "1x7+7x1", "conv"), ("conv_1x7_7x1_bottleneck", "1x7+7x1 bneck", "conv"),
    ("enas_identity", "identity", "identity"), ("some_new_op", "some new op", "other"),
])
def test_short_labels_and_families(op, label, family):
    assert short_op(op) == label
    assert op_family(op) == family


def test_every_space_op_has_a_short_label():
    for name in SPACES:
        for op in load_space(name).ops:
            assert len(short_op(op)) <= 13 and "_" not in short_op(op), op


# ---- images for every space ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", SPACES)
def test_a_genotype_of_every_space_draws(name, tmp_path):
    space = load_space(name)
    g = space.sample(random.Random(3))
    path = draw_genotype(g, tmp_path / f"{name}.png", title=f"{name} sample")
    w, h = assert_sensible_png(path)
    if len(g.cells) == 2:
        # normal and reduction cell in one image: side by side, or stacked for very deep cells
        assert w > 700 or h > 500


def test_nasbench201_with_none_edges_draws_them_dashed(tmp_path):
    g = load_space("nasbench201").parse(NB201_WITH_NONE)
    assert_sensible_png(draw_genotype(g, tmp_path / "nb.png"))
    fig = render(g)
    styles = {}
    for p in fig.axes[0].patches:
        if hasattr(p, "get_path") and type(p).__name__ == "PathPatch":
            styles.setdefault(p.get_linestyle(), 0)
            styles[p.get_linestyle()] += 1
    assert styles.get("--") == 3  # the three none edges
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("none") == 3 and "in" in texts and "out" in texts


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_genotypes_draw(name, tmp_path):
    assert_sensible_png(draw_genotype(PUBLISHED[name], tmp_path / f"{name}.png", title=name))


def test_cell_headings():
    def headings(g):
        return [t.get_text() for t in render(g, title="t").texts if t.get_text() != "t"]

    assert headings(PUBLISHED["darts_v2"]) == ["normal cell", "reduction cell"]
    assert headings(PUBLISHED["pnasnet_5"]) == ["cell"]  # the only cell (it also reduces, with stride 2)
    assert headings(load_space("nasbench201").parse(NB201_WITH_NONE)) == ["cell"]


def test_svg_output_and_arrangements(tmp_path):
    g = PUBLISHED["darts_v2"]
    assert (draw_genotype(g, tmp_path / "d.svg")).read_text().lstrip().startswith("<?xml")
    row = render(g, arrange="row").get_size_inches()
    column = render(g, arrange="column").get_size_inches()
    assert row[0] > column[0] and column[1] > row[1]
    with pytest.raises(NasError):
        render(g, arrange="diagonal")


# ---- layout properties ---------------------------------------------------------------------------------
def _boxes(lay):
    return [(it, it.x - it.w / 2, it.y - it.h / 2, it.x + it.w / 2, it.y + it.h / 2) for it in lay.items
            if it.kind != "pass"]


def check_layout(cell):
    """Every edge drawn, no two boxes (nodes, labels) overlap, no edge runs through a box, and edges
    run left to right in gentle curves."""
    lay = layout_cell(cell, text_size)
    n_edges = sum(len(node) for node in cell.nodes) + len(cell.output_states())
    assert len(lay.edges) == n_edges
    assert sum(1 for it in lay.items if it.kind == "label") == sum(len(node) for node in cell.nodes)
    boxes = _boxes(lay)
    for (a, *ra), (b, *rb) in itertools.combinations(boxes, 2):
        overlap = ra[0] < rb[2] and rb[0] < ra[2] and ra[1] < rb[3] and rb[1] < ra[3]
        assert not overlap, (a.text, b.text)
    for e in lay.edges:
        own = set(e.items)
        for x, y in sample_edge(e.points, steps=12):
            for it, x0, y0, x1, y1 in boxes:
                if it.id not in own:
                    assert not (x0 + 0.5 < x < x1 - 0.5 and y0 + 0.5 < y < y1 - 0.5), (e.src, e.dst, e.op, it.text)
        assert e.points[0][0] < e.points[-1][0]  # left to right
        for (x0, y0), (x1, y1) in zip(e.points, e.points[1:]):
            assert x1 > x0
            if x1 - x0 < MAX_COLUMN_GAP - 0.01:  # gentle curves, so crossings can be followed
                assert abs(y1 - y0) <= (x1 - x0) / CURVE_RUN + 0.01, (e.src, e.dst, e.op)
    return lay


@pytest.mark.parametrize("name", SPACES)
def test_layouts_never_overlap(name):
    space = load_space(name)
    rng = random.Random(11)
    for _ in range(15):
        for _, cell in space.sample(rng).cells:
            check_layout(cell)


def test_published_layouts_never_overlap():
    for g in PUBLISHED.values():
        for _, cell in getattr(g, "cells", ()):  # block genotypes have no cells
            check_layout(cell)


def test_layers_follow_topological_depth():
    cell = Cell.parse("sep_conv_3x3~1 + identity~0 | avg_pool_3x3~2 + identity~1 | max_pool_3x3~3 + sep_conv_5x5~2")
    lay = check_layout(cell)
    x = {it.node: it.x for it in lay.real()}
    assert x[0] == x[1] < x[2] < x[3] < x[4] < x["out"]
    texts = {it.node: it.text for it in lay.real()}
    assert texts[0] == "$h_{i-2}$" and texts[1] == "$h_{i-1}$" and texts["out"] == "out"


def test_parallel_edges_are_two_visible_paths():
    # node 2 applies two ops to state 1; node 3 applies the same op twice to state 2
    cell = Cell.parse("sep_conv_3x3~1 + max_pool_3x3~1 | avg_pool_3x3~2 + avg_pool_3x3~2 > 0,3")
    lay = check_layout(cell)
    pairs = {}
    for e in lay.edges:
        pairs.setdefault((e.src, e.dst), []).append(e)
    for key in ((1, 2), (2, 3)):
        a, b = pairs[key]
        label_a, label_b = lay.items[a.items[-1]], lay.items[b.items[-1]]
        assert label_a.kind == label_b.kind == "label"
        assert abs(label_a.y - label_b.y) >= (label_a.h + label_b.h) / 2  # stacked, not on top of each other
        assert a.points[-1] != b.points[-1] and a.points[0] != b.points[0]  # distinct ends on both nodes
    assert not any(it.faded for it in lay.real())  # h_{i-2} is concatenated, everything else feeds it


def test_dead_states_are_faded():
    # node 5 feeds nothing and is not concatenated; h_{i-2} is unused
    cell = Cell.parse("sep_conv_3x3~1 + sep_conv_3x3~1 | skip_connect~1 + max_pool_3x3~2"
                      " | dil_conv_5x5~3 + sep_conv_5x5~3 | avg_pool_3x3~1 + skip_connect~4 > 2,3,4")
    lay = check_layout(cell)
    assert {it.node for it in lay.real() if it.faded} == {0, 5}
    assert all(e.faded == (e.dst == 5) for e in lay.edges)


# ---- extensibility -----------------------------------------------------------------------------------
def test_another_genotype_type_gets_its_own_renderer(tmp_path):
    class Other:  # stands for a genotype type of a later space
        pass

    @render.register(Other)
    def _(genotype, title=None, network=None):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4, 2))
        fig.text(0.5, 0.5, title or "blocks")
        return fig

    assert_sensible_png(draw_genotype(Other(), tmp_path / "b.png", title="another genotype"), min_w=300, min_h=100,
                        min_bytes=1000)
    with pytest.raises(NasError):
        draw_genotype(object(), tmp_path / "x.png")


# ---- the draw command ------------------------------------------------------------------------------------
def test_draw_command_published_and_text(tmp_path, capsys):
    out = tmp_path / "d.png"
    assert main(["draw", "--genotype", "nasnet_a", "--out", str(out)]) == 0
    assert_sensible_png(out)
    argv = ["draw", "--genotype", NB201_WITH_NONE, "--space", "nasbench201", "--out", str(tmp_path / "n.png")]
    assert main(argv) == 0
    assert_sensible_png(tmp_path / "n.png")
    text = str(load_space("pnasnet").sample(random.Random(0)))
    assert main(["draw", "--genotype", text, "--out", str(tmp_path / "p.png"), "--title", "mine"]) == 0
    assert_sensible_png(tmp_path / "p.png")


@pytest.mark.parametrize("argv", [
    ["--genotype", "nasnet_b"],                                  # unknown published name
    ["--genotype", "normal: sep_conv_3x3~7 + identity~0"],       # bad text
    ["--genotype", "normal: sep_conv_3x3~1 + identity~0", "--space", "darts"],  # not in the space
    [],                                                          # nothing to draw
    ["--storage", "sqlite:///does/not/exist.db", "--study-name", "x"],
])
def test_draw_command_errors_are_one_line(argv, tmp_path, capsys):
    assert main(["draw", *argv, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nasengine: error: ") and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


# ---- plots -------------------------------------------------------------------------------------------
def test_best_so_far():
    assert best_so_far([0.3, None, 0.2, 0.5, None]) == [0.3, 0.3, 0.3, 0.5, 0.5]
    assert best_so_far([None, 2.0, 1.0], maximize=False) == [None, 2.0, 1.0]


def test_search_plots(tmp_path):
    rng = random.Random(0)
    values = [rng.random() if i % 5 else None for i in range(40)]
    assert_sensible_png(plot_best_so_far(values, tmp_path / "b.png", title="t"))
    assert_sensible_png(plot_best_so_far({"random": values, "evolution": values[::-1]}, tmp_path / "b2.png"))
    costs = [rng.randint(10_000, 5_000_000) for _ in range(30)]
    accs = [rng.random() for _ in range(30)]
    assert_sensible_png(plot_pareto(costs, accs, tmp_path / "p.png", labels=list(range(30))))
    assert_sensible_png(plot_curves({"a": [0.1, 0.5, 0.7], "b": {0: 0.2, 1: 0.4}}, tmp_path / "c.png"))
    with pytest.raises(NasError):
        plot_pareto([], [], tmp_path / "e.png")
    with pytest.raises(NasError):
        plot_best_so_far([None, None], tmp_path / "e.png")


def test_bench_curves_plot(tmp_path):
    rng = random.Random(1)

    def curve(n, power):  # best so far of n draws; a larger power draws lower values
        out, best = [], 0.0
        for _ in range(n):
            best = max(best, rng.random() ** power)
            out.append(best)
        return out

    curves = {"fast": [curve(60, 0.2) for _ in range(5)], "slow": [curve(60, 3.0) for _ in range(4)]}
    w, h = assert_sensible_png(plot_bench_curves(curves, 1.0, tmp_path / "b.png", title="t"))
    assert w > 1.8 * h  # two panels side by side: the values and the regret
    with pytest.raises(NasError, match="above the optimum"):
        plot_bench_curves(curves, 0.5, tmp_path / "x.png")
    with pytest.raises(NasError, match="one nonzero length"):
        plot_bench_curves({"ragged": [[0.1, 0.2], [0.1]]}, 1.0, tmp_path / "x.png")
    with pytest.raises(NasError):
        plot_bench_curves({}, 1.0, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plot_study_takes_plain_trials(tmp_path):
    """Any objects shaped like Optuna's FrozenTrial: number, state.name, values, user_attrs, intermediate_values."""
    from types import SimpleNamespace

    def trial(number, state, value=None, params=None):
        return SimpleNamespace(number=number, state=SimpleNamespace(name=state),
                               values=None if value is None else [value],
                               user_attrs={} if params is None else {"params": params},
                               intermediate_values={} if value is None else {0: value / 2, 1: value})

    trials = [trial(i, "COMPLETE", 0.5 + 0.03 * ((7 * i) % 10), 1000 * (i + 1)) for i in range(10)]
    trials += [trial(10, "FAIL"), trial(11, "RUNNING")]
    written = plot_study("s", True, trials[::-1], tmp_path, top=3)
    assert [p.name for p in written] == ["best_so_far.png", "accuracy_vs_params.png", "curves.png"]
    for p in written:
        assert_sensible_png(p)
    with pytest.raises(NasError, match="no complete trials"):
        plot_study("s", False, trials[10:], tmp_path / "none")


def test_the_layout_needs_no_matplotlib():
    cell = PUBLISHED["darts_v2"].cells[0][1]
    code = ("import sys; from nasengine.viz.layout import layout_cell; from nasengine.zoo.published import PUBLISHED; "
            "lay = layout_cell(PUBLISHED['darts_v2'].cells[0][1], lambda text, size: (0.6 * size * len(text), size)); "
            "print(len(lay.edges), sorted(m for m in ('matplotlib', 'optuna', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split(None, 1) == [str(sum(len(node) for node in cell.nodes) + len(cell.output_states())), "[]\n"]


def test_plot_alphas_on_synthetic_darts_weights(tmp_path):
    np = pytest.importorskip("numpy")
    ops = list(load_space("darts").ops)
    rng = np.random.default_rng(0)
    alphas = np.cumsum(rng.normal(scale=0.1, size=(12, 14, len(ops))), axis=0)  # epochs x edges x ops
    w, h = assert_sensible_png(plot_alphas({"normal": alphas, "reduce": -alphas}, tmp_path / "a.png", op_names=ops))
    assert h > w  # a row of panels per node, normal above reduce
    probs = np.exp(alphas) / np.exp(alphas).sum(-1, keepdims=True)
    assert_sensible_png(plot_alphas(probs[:, :6, :5], tmp_path / "nb.png", op_names=ops[:5], n_inputs=1))
    assert_sensible_png(plot_alphas(alphas[:, :2].tolist(), tmp_path / "plain.png"), min_w=300)  # lists, no names
    assert darts_edge_names(14)[:3] == ["0→2", "1→2", "0→3"] and darts_edge_names(6, n_inputs=1)[-1] == "2→3"
    assert darts_edge_names(4) == ["edge 0", "edge 1", "edge 2", "edge 3"]
    with pytest.raises(NasError):
        plot_alphas(alphas[0], tmp_path / "x.png")  # not 3-D
    with pytest.raises(NasError):
        plot_alphas(alphas, tmp_path / "x.png", op_names=ops[:3])

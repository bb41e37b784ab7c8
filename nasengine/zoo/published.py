"""Published cells, transcribed from their authors' code (sources and macro notes: docs/cells.md), and
the published block networks of ``zoo/blocks.py`` (MobileNetV2, MnasNet-A1, EfficientNet-B0..B7).

Each cell is written here as its source writes it (TF-slim / TPU ``operations``,
``hiddenstate_indices``, ``used_hiddenstates``; DARTS ``(op, input)`` pairs; the ENAS ``fixed_arc``)
and converted on load to nasengine's convention: state 0 = h_{i-2}, state 1 = h_{i-1}, then one
state per node. Every published cell carries an explicit concat.
"""

from __future__ import annotations

from collections.abc import Sequence

from nasengine.core.blocks import Blocks
from nasengine.core.genotype import Cell, Edge, Genotype
from nasengine.errors import NasError, did_you_mean
from nasengine.zoo.blocks import BLOCK_FIGURES, BLOCK_NETWORKS, BLOCK_SOURCES

# ---- state numbering ---------------------------------------------------------------------------
# TF-slim (nasnet_utils.NasNetABaseCell._cell_base) and the TPU AmoebaNet code number the previous
# cell's output 0 and the previous-previous one 1; DARTS and ENAS the other way round. Node states
# (2, 3, ...) agree, so the conversion swaps 0 and 1 and is its own inverse.


def slim_to_darts(indices: Sequence[int]) -> list[int]:
    """Hidden-state indices in TF-slim numbering (0 = h_{i-1}, 1 = h_{i-2}) -> DARTS numbering."""
    return [{0: 1, 1: 0}.get(i, i) for i in indices]


def darts_to_slim(indices: Sequence[int]) -> list[int]:
    """Hidden-state indices in DARTS numbering (0 = h_{i-2}, 1 = h_{i-1}) -> TF-slim numbering."""
    return [{0: 1, 1: 0}.get(i, i) for i in indices]


# ---- source op names -> nasengine op names -----------------------------------------------------
# slim's 'none' is not DARTS's 'skip_connect' (strided: ReLU-1x1 conv-BN, not FactorizedReduce), so
# it keeps its own name, 'identity'. The TPU code's '1x7_7x1' is bottlenecked (1x1 to C/4 around it).
SLIM_OPS = {
    "none": "identity",
    "separable_3x3_2": "sep_conv_3x3",
    "separable_5x5_2": "sep_conv_5x5",
    "separable_7x7_2": "sep_conv_7x7",
    "avg_pool_3x3": "avg_pool_3x3",
    "max_pool_3x3": "max_pool_3x3",
    "1x7_7x1": "conv_1x7_7x1_bottleneck",  # tensorflow/tpu amoeba_net network_utils.BaseCell
}

# melodyguan/enas src/cifar10/micro_child.py (_fixed_layer): op ids 0..4. ENAS's identity reduces
# with a factorized reduction that has no leading ReLU, unlike DARTS's skip_connect: its own name.
ENAS_OPS = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "enas_identity")


def from_slim(operations: Sequence[str], hiddenstate_indices: Sequence[int],
              used_hiddenstates: Sequence[int]) -> Cell:
    """A TF-slim / TPU cell spec -> Cell (DARTS numbering, explicit concat in the source's order)."""
    if len(operations) != len(hiddenstate_indices) or len(operations) % 2:
        raise NasError("a slim cell needs as many operations as hidden-state indices, two per node")
    n_states = 2 + len(operations) // 2
    if len(used_hiddenstates) != n_states:
        raise NasError(f"a slim cell with {n_states - 2} nodes needs {n_states} used_hiddenstates flags")
    unknown = sorted(set(operations) - set(SLIM_OPS))
    if unknown:
        raise NasError(f"unknown slim operation(s): {', '.join(unknown)}")
    src = slim_to_darts(hiddenstate_indices)
    nodes = tuple((Edge(src[i], SLIM_OPS[operations[i]]), Edge(src[i + 1], SLIM_OPS[operations[i + 1]]))
                  for i in range(0, len(operations), 2))
    # slim concatenates, in its own state order, every state whose used_hiddenstates flag is 0
    concat = tuple(slim_to_darts([s for s, used in enumerate(used_hiddenstates) if not used]))
    return Cell(nodes, 2, concat)


def to_slim(cell: Cell) -> tuple[list[str], list[int], list[int]]:
    """Cell -> (operations, hiddenstate_indices, used_hiddenstates) in TF-slim form."""
    names = {v: k for k, v in SLIM_OPS.items()}
    if cell.n_inputs != 2 or any(len(node) != 2 for node in cell.nodes):
        raise NasError("only two-input cells with two edges per node have a slim form")
    concat = set(cell.output_states())
    # the flags can only say "concatenate in state order": check the cell asks for that order
    slim_order = darts_to_slim(range(cell.n_states))
    if [s for s in slim_order if s in concat] != list(cell.output_states()):
        raise NasError(f"concat {list(cell.output_states())} is not in slim's state order")
    operations = [names[e.op] for node in cell.nodes for e in node]
    indices = darts_to_slim([e.src for node in cell.nodes for e in node])
    used = [0 if s in concat else 1 for s in slim_order]
    return operations, indices, used


def from_darts(pairs: Sequence[tuple[str, int]], concat: Sequence[int]) -> Cell:
    """A DARTS genotype list of (op, input) pairs, two per node, and its concat -> Cell."""
    if len(pairs) % 2:
        raise NasError("a DARTS cell has two (op, input) pairs per node")
    nodes = tuple((Edge(pairs[i][1], pairs[i][0]), Edge(pairs[i + 1][1], pairs[i + 1][0]))
                  for i in range(0, len(pairs), 2))
    return Cell(nodes, 2, tuple(concat))


def from_enas(arc: Sequence[int]) -> Cell:
    """One ENAS micro cell, [x_id, x_op, y_id, y_op] per node -> Cell.

    ENAS numbers states as DARTS does (``layers = [layers[-1], x]``: 0 = h_{i-2}, 1 = h_{i-1}) and
    concatenates every state, inputs included, that no node reads (``_fixed_combine``).
    """
    if len(arc) % 4:
        raise NasError("an ENAS cell has four numbers per node: x_id x_op y_id y_op")
    nodes = []
    for i in range(0, len(arc), 4):
        x_id, x_op, y_id, y_op = arc[i:i + 4]
        for op in (x_op, y_op):
            if not 0 <= op < len(ENAS_OPS):
                raise NasError(f"ENAS op id {op} is not in 0..{len(ENAS_OPS) - 1}")
        nodes.append((Edge(x_id, ENAS_OPS[x_op]), Edge(y_id, ENAS_OPS[y_op])))
    read = {e.src for node in nodes for e in node}
    concat = tuple(s for s in range(2 + len(nodes)) if s not in read)
    return Cell(tuple(nodes), 2, concat)


def parse_enas_arc(text: str, num_cells: int = 5) -> tuple[Cell, Cell]:
    """An ENAS ``fixed_arc`` string -> (normal, reduce), split as ``MicroChild.connect_controller``."""
    arc = [int(x) for x in text.split()]
    if len(arc) != 8 * num_cells:
        raise NasError(f"an ENAS fixed_arc for {num_cells} nodes has {8 * num_cells} numbers, got {len(arc)}")
    return from_enas(arc[:4 * num_cells]), from_enas(arc[4 * num_cells:])


# ---- the cells as their sources write them ------------------------------------------------------

# tensorflow/models research/slim/nets/nasnet/nasnet_utils.py, NasNetANormalCell
NASNET_A_NORMAL_SLIM = dict(
    operations=["separable_5x5_2", "separable_3x3_2", "separable_5x5_2", "separable_3x3_2", "avg_pool_3x3",
                "none", "avg_pool_3x3", "avg_pool_3x3", "separable_3x3_2", "none"],
    hiddenstate_indices=[0, 1, 1, 1, 0, 1, 1, 1, 0, 0],
    used_hiddenstates=[1, 0, 0, 0, 0, 0, 0],
)
# tensorflow/models research/slim/nets/nasnet/nasnet_utils.py, NasNetAReductionCell
NASNET_A_REDUCE_SLIM = dict(
    operations=["separable_5x5_2", "separable_7x7_2", "max_pool_3x3", "separable_7x7_2", "avg_pool_3x3",
                "separable_5x5_2", "none", "avg_pool_3x3", "separable_3x3_2", "max_pool_3x3"],
    hiddenstate_indices=[0, 1, 0, 1, 0, 1, 3, 2, 2, 0],
    used_hiddenstates=[1, 1, 1, 0, 0, 0, 0],
)
# tensorflow/tpu models/experimental/amoeba_net/model_specs.py, get_normal_cell('amoeba_net_a')
AMOEBANET_A_NORMAL_SLIM = dict(
    operations=["avg_pool_3x3", "max_pool_3x3", "separable_3x3_2", "none", "none", "avg_pool_3x3",
                "separable_3x3_2", "separable_5x5_2", "avg_pool_3x3", "separable_3x3_2"],
    hiddenstate_indices=[0, 0, 1, 1, 0, 1, 0, 2, 5, 0],
    used_hiddenstates=[1, 0, 1, 0, 0, 1, 0],
)
# tensorflow/tpu models/experimental/amoeba_net/model_specs.py, get_reduction_cell('amoeba_net_a')
AMOEBANET_A_REDUCE_SLIM = dict(
    operations=["separable_3x3_2", "avg_pool_3x3", "max_pool_3x3", "separable_7x7_2", "max_pool_3x3",
                "max_pool_3x3", "separable_3x3_2", "1x7_7x1", "avg_pool_3x3", "separable_7x7_2"],
    hiddenstate_indices=[1, 0, 0, 2, 1, 0, 4, 0, 1, 0],
    used_hiddenstates=[1, 1, 0, 0, 0, 0, 0],
)
# tensorflow/models research/slim/nets/nasnet/pnasnet.py, PNasNetNormalCell
PNASNET_5_SLIM = dict(
    operations=["separable_5x5_2", "max_pool_3x3", "separable_7x7_2", "max_pool_3x3", "separable_5x5_2",
                "separable_3x3_2", "separable_3x3_2", "max_pool_3x3", "separable_3x3_2", "none"],
    hiddenstate_indices=[1, 1, 0, 0, 0, 0, 4, 0, 1, 0],
    used_hiddenstates=[1, 1, 0, 0, 0, 0, 0],
)
# quark0/darts cnn/genotypes.py, DARTS_V1 (first order)
DARTS_V1_SOURCE = dict(
    normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
    reduce_concat=[2, 3, 4, 5],
)
# quark0/darts cnn/genotypes.py, DARTS_V2 (second order; DARTS = DARTS_V2)
DARTS_V2_SOURCE = dict(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5],
)
# melodyguan/enas scripts/cifar10_micro_final.sh, fixed_arc (normal cell, then reduction cell)
ENAS_FIXED_ARC = ("0 2 0 0 0 4 0 1 0 4 1 1 1 0 0 1 0 2 1 1"
                  " 1 0 1 0 0 3 0 2 1 1 3 1 1 0 0 4 0 3 1 1")


def _darts(src: dict) -> Genotype:
    return Genotype.of(normal=from_darts(src["normal"], src["normal_concat"]),
                       reduce=from_darts(src["reduce"], src["reduce_concat"]))


def _enas() -> Genotype:
    normal, reduce = parse_enas_arc(ENAS_FIXED_ARC)
    return Genotype.of(normal=normal, reduce=reduce)


# ---- the built-in genotypes ---------------------------------------------------------------------

# NASNet-A (Zoph et al. 2018): tensorflow/models research/slim/nets/nasnet/nasnet_utils.py
nasnet_a = Genotype.of(normal=from_slim(**NASNET_A_NORMAL_SLIM), reduce=from_slim(**NASNET_A_REDUCE_SLIM))
# AmoebaNet-A (Real et al. 2019): tensorflow/tpu models/experimental/amoeba_net/model_specs.py
amoebanet_a = Genotype.of(normal=from_slim(**AMOEBANET_A_NORMAL_SLIM), reduce=from_slim(**AMOEBANET_A_REDUCE_SLIM))
# PNASNet-5 (Liu et al. 2018): tensorflow/models research/slim/nets/nasnet/pnasnet.py; one cell,
# applied with stride 2 where the network reduces (no "reduce" cell)
pnasnet_5 = Genotype.of(normal=from_slim(**PNASNET_5_SLIM))
# DARTS V1 / V2 (Liu et al. 2019): quark0/darts cnn/genotypes.py
darts_v1 = _darts(DARTS_V1_SOURCE)
darts_v2 = _darts(DARTS_V2_SOURCE)
# ENAS micro (Pham et al. 2018): melodyguan/enas scripts/cifar10_micro_final.sh, decoded as
# src/cifar10/micro_child.py does
enas = _enas()

PUBLISHED: dict[str, Genotype | Blocks] = {
    "nasnet_a": nasnet_a,
    "amoebanet_a": amoebanet_a,
    "pnasnet_5": pnasnet_5,
    "darts_v1": darts_v1,
    "darts_v2": darts_v2,
    "enas": enas,
    **BLOCK_NETWORKS,
}

SOURCES: dict[str, str] = {
    "nasnet_a": "tensorflow/models research/slim/nets/nasnet/nasnet_utils.py (NasNetANormalCell, NasNetAReductionCell)",
    "amoebanet_a": "tensorflow/tpu models/experimental/amoeba_net/model_specs.py (amoeba_net_a)",
    "pnasnet_5": "tensorflow/models research/slim/nets/nasnet/pnasnet.py (PNasNetNormalCell)",
    "darts_v1": "quark0/darts cnn/genotypes.py (DARTS_V1)",
    "darts_v2": "quark0/darts cnn/genotypes.py (DARTS_V2)",
    "enas": "melodyguan/enas scripts/cifar10_micro_final.sh (fixed_arc), src/cifar10/micro_child.py",
    **BLOCK_SOURCES,
}


# What each paper reports for its network, counted without the auxiliary head: (parameters,
# multiply-adds of one 224x224 image (a block network: at its resolution) or None, where). The sizes
# are presets.PAPER_SIZES / the presets (block networks: zoo/blocks.py, with their measured sizes);
# docs/cells.md compares them with what nasengine builds: within 3% (parameters) and 5% (mult-adds)
# except DARTS V1's parameters (-4%), ENAS's parameters (-19%) and DARTS's ImageNet mult-adds (-7.7%).
PAPER_FIGURES: dict[tuple[str, str], tuple[float, float | None, str]] = {
    ("nasnet_a", "cifar10"): (3.3e6, None, "Zoph et al. 2018, CIFAR-10 results: NASNet-A (6 @ 768)"),
    ("amoebanet_a", "cifar10"): (3.2e6, None, "Real et al. 2019, CIFAR-10 results: AmoebaNet-A (N=6, F=36)"),
    ("pnasnet_5", "cifar10"): (3.2e6, None, "Liu et al. 2018 (PNAS), CIFAR-10 results: PNASNet-5 (N=3, F=48)"),
    ("darts_v1", "cifar10"): (3.3e6, None, "Liu et al. 2019 (DARTS), CIFAR-10 results: first order"),
    ("darts_v2", "cifar10"): (3.3e6, None, "Liu et al. 2019 (DARTS), CIFAR-10 results: second order"),
    ("enas", "cifar10"): (4.6e6, None, "Pham et al. 2018 (ENAS), CIFAR-10 results: micro search space"),
    ("nasnet_a", "imagenet-mobile"): (5.3e6, 564e6, "Zoph et al. 2018, ImageNet mobile: NASNet-A (4 @ 1056)"),
    ("amoebanet_a", "imagenet-mobile"): (5.1e6, 555e6, "Real et al. 2019, ImageNet mobile: AmoebaNet-A (N=4, F=50)"),
    ("pnasnet_5", "imagenet-mobile"): (5.1e6, 588e6, "Liu et al. 2018 (PNAS), ImageNet mobile: PNASNet-5"),
    ("darts_v2", "imagenet-mobile"): (4.7e6, 574e6, "Liu et al. 2019 (DARTS), ImageNet mobile: 14 cells, C=48"),
    **{(name, "imagenet"): figures for name, figures in BLOCK_FIGURES.items()},
}


def get_published(name: str) -> Genotype | Blocks:
    """The built-in genotype called ``name``; NasError naming the known ones otherwise."""
    try:
        return PUBLISHED[name]
    except (KeyError, TypeError):
        raise NasError(f"no published genotype {name!r}{did_you_mean(name, PUBLISHED)} "
                       f"(known: {', '.join(PUBLISHED)})") from None

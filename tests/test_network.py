"""Ops, cells and networks: shapes and semantics of every op, sampled genotypes of every space build and
run on digits- and CIFAR-shaped batches, the skeletons' structure, presets and the FLOP counter."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from nasengine.core.genotype import Genotype
from nasengine.errors import NasError
from nasengine.models.cells import Cell, NB201Cell
from nasengine.models.flops import count_flops, count_params
from nasengine.models.network import SKELETONS, DARTSNetwork, NASNetNetwork, NB201Network, build_network
from nasengine.models.ops import OPS, FactorizedReduce, Zero, drops_path
from nasengine.spaces.cell import load_space
from nasengine.zoo.presets import network_settings, published_settings
from nasengine.zoo.published import get_published

SPACES = ["nasnet", "pnasnet", "darts", "nasbench201"]
MODELS = Path(__file__).resolve().parent.parent / "nasengine" / "models"


pytestmark = pytest.mark.usefixtures("one_thread")


def _half(n: int) -> int:
    return (n + 1) // 2


# ------------------------------------------------------------------------------------------------- ops


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("C_in,C_out,stride,size", [(8, 8, 1, 8), (8, 8, 2, 8), (8, 8, 2, 7), (12, 8, 1, 5),
                                                    (12, 8, 2, 5), (8, 8, 2, 1)])
def test_op_shapes(name, C_in, C_out, stride, size):
    op = OPS[name](C_in, C_out, stride)
    out = op(torch.randn(2, C_in, size, size))
    expect = _half(size) if stride == 2 else size
    assert out.shape == (2, C_out, expect, expect)


def test_identity_ops():
    assert isinstance(OPS["identity"](8, 8, 1), nn.Identity)
    assert isinstance(OPS["skip_connect"](8, 8, 1), nn.Identity)
    # slim 'none' strided: ReLU, strided 1x1 conv, BN (not a factorized reduction)
    strided = OPS["identity"](8, 8, 2)
    convs = [m for m in strided.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 and convs[0].stride == (2, 2) and isinstance(strided[0], nn.ReLU)
    # DARTS skip_connect strided: FactorizedReduce with a ReLU; ENAS's without
    assert isinstance(OPS["skip_connect"](8, 8, 2), FactorizedReduce) and OPS["skip_connect"](8, 8, 2).relu
    assert not OPS["enas_identity"](8, 8, 2).relu
    # channels differ: slim 'none' adapts with ReLU-1x1-BN
    assert count_params(OPS["identity"](12, 8, 1)) == 12 * 8 + 2 * 8


def test_drop_path_rule():
    assert not drops_path("identity", OPS["identity"](8, 8, 2))  # slim: never on 'none'
    assert not drops_path("skip_connect", OPS["skip_connect"](8, 8, 1))
    assert drops_path("skip_connect", OPS["skip_connect"](8, 8, 2))  # DARTS: FactorizedReduce is dropped
    assert not drops_path("none", OPS["none"](8, 8, 1))
    assert drops_path("sep_conv_3x3", OPS["sep_conv_3x3"](8, 8, 1))


def test_sep_conv_structure():
    C, k = 8, 5
    op = OPS["sep_conv_5x5"](12, C, 2)
    convs = [m for m in op.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2), (1, 1), (1, 1), (1, 1)]  # stride on the first only
    assert [c.groups for c in convs] == [12, 1, C, 1]
    assert sum(isinstance(m, nn.ReLU) for m in op.modules()) == 2
    # depthwise on C_in, pointwise C_in -> C (slim), then depthwise + pointwise at C, two BNs
    assert count_params(op) == 12 * k * k + 12 * C + 2 * C + C * k * k + C * C + 2 * C


def test_pools():
    x = torch.ones(1, 4, 6, 6)
    assert torch.equal(OPS["avg_pool_3x3"](4, 4, 1)(x), x)  # padding not counted (TF 'SAME', DARTS)
    assert isinstance(OPS["max_pool_5x5"](4, 4, 1), nn.MaxPool2d)
    assert OPS["max_pool_7x7"](4, 4, 1).padding == 3
    adapted = OPS["max_pool_3x3"](12, 8, 2)  # slim: pool first, then 1x1 conv + BN, no ReLU
    assert isinstance(adapted[0], nn.MaxPool2d) and isinstance(adapted[1], nn.Conv2d) and len(adapted) == 3


def test_dil_and_factorized_convs():
    dil = OPS["dil_conv_3x3"](8, 8, 1)
    assert dil[1].dilation == (2, 2) and dil[1].groups == 8 and count_params(dil) == 8 * 9 + 64 + 16
    assert OPS["dil_conv_5x5"](8, 8, 2)[1].padding == (4, 4)
    f = OPS["conv_1x7_7x1"](8, 8, 2)
    assert (f[1].kernel_size, f[1].stride, f[2].kernel_size, f[2].stride) == ((1, 7), (1, 2), (7, 1), (2, 1))
    assert count_params(OPS["conv_1x3_3x1"](8, 8, 1)) == 2 * 8 * 8 * 3 + 16
    assert count_params(OPS["conv_3x3"](8, 8, 1)) == count_params(OPS["nor_conv_3x3"](8, 8, 1)) == 8 * 8 * 9 + 16


def test_amoebanet_bottleneck():
    C = 32
    op = OPS["conv_1x7_7x1_bottleneck"](C, C, 2)
    convs = [m for m in op.modules() if isinstance(m, nn.Conv2d)]
    mid = C // 4
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (C, mid, (1, 1)), (mid, mid, (1, 7)), (mid, mid, (7, 1)), (mid, C, (1, 1))]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in op.modules()) == 4
    assert len([m for m in OPS["conv_1x7_7x1_bottleneck"](3, 3, 1).modules() if isinstance(m, nn.Conv2d)]) == 2


def test_zero_and_factorized_reduce():
    z = Zero(8, 8, 2)(torch.randn(2, 8, 7, 7))
    assert z.shape == (2, 8, 4, 4) and not z.any()
    x = torch.randn(2, 8, 8, 8)
    fr = FactorizedReduce(8, 10)
    # even sizes: DARTS's FactorizedReduce exactly (conv on x and on x[:, :, 1:, 1:], no padding)
    fr.eval()
    expect = fr.bn(torch.cat([fr.conv_1(torch.relu(x)), fr.conv_2(torch.relu(x)[:, :, 1:, 1:])], 1))
    assert torch.allclose(fr(x), expect)
    assert fr.conv_1.out_channels + fr.conv_2.out_channels == 10  # odd halves allowed


# ----------------------------------------------------------------------------------------------- cells


def test_cell_preprocessing_and_concat():
    g = get_published("nasnet_a")
    # slim's first cell: h_{i-2} is the raw stem output; the concat brings it to C with 1x1 conv + BN
    first = Cell(g.normal.to_data(), None, 96, 32, preprocess="as_needed")
    assert isinstance(first.preprocess0, nn.Identity) and isinstance(first.combine[0], nn.Sequential)
    assert first.out_channels == 6 * 32
    out = first(torch.randn(2, 96, 8, 8), torch.randn(2, 96, 8, 8))
    assert out.shape == (2, 192, 8, 8)
    # after a reduction: factorized reduction of h_{i-2}
    after = Cell(g.normal.to_data(), 192, 256, 64, reduction_prev=True, preprocess="as_needed")
    assert isinstance(after.preprocess0, FactorizedReduce)
    assert after(torch.randn(2, 192, 8, 8), torch.randn(2, 256, 4, 4)).shape == (2, 384, 4, 4)
    # DARTS: h_{i-2} always preprocessed
    darts = Cell(g.normal.to_data(), 32, 32, 32, preprocess="always")
    assert not isinstance(darts.preprocess0, nn.Identity)
    # an input state in a reduction cell's concat is factorized-reduced to the nodes' size
    cell = Genotype.parse("normal: sep_conv_3x3~1 + max_pool_3x3~0 | identity~2 + avg_pool_3x3~1 > 0,2,3").normal
    red = Cell(cell.to_data(), 16, 16, 16, reduction=True, preprocess="as_needed")
    assert isinstance(red.combine[0], FactorizedReduce) and not red.combine[0].relu
    assert red(torch.randn(2, 16, 7, 7), torch.randn(2, 16, 7, 7)).shape == (2, 48, 4, 4)


def test_cell_errors():
    with pytest.raises(ValueError, match="unknown op"):
        Cell({"n_inputs": 2, "nodes": [[[0, "conv_9x9"]]], "concat": [2]}, 8, 8, 8)
    with pytest.raises(ValueError, match="not computed before"):
        Cell({"n_inputs": 2, "nodes": [[[2, "identity"]]], "concat": [2]}, 8, 8, 8)
    with pytest.raises(ValueError):
        NB201Cell({"n_inputs": 2, "nodes": [[[0, "identity"]]], "concat": [2]}, 8, 8)


def test_drop_path_in_training_only():
    torch.manual_seed(0)
    g = load_space("darts").sample(random.Random(0))
    net = build_network(g.to_data(), "darts", 10, 1, 8, layers=3, C=8)
    x = torch.randn(8, 1, 8, 8)
    net.eval()
    net.drop_path_prob = 0.9
    a, b = net(x), net(x)
    assert torch.equal(a, b)  # no drop path in eval mode
    net.train()
    net.drop_path_prob = 0.0
    torch.manual_seed(1)
    c = net(x)
    torch.manual_seed(1)
    assert torch.equal(c, net(x))  # deterministic without drop path
    net.drop_path_prob = 0.9
    assert not torch.allclose(net(x), c)


# ------------------------------------------------------------------------------------------ networks


def _run(net: nn.Module, x: torch.Tensor, classes: int = 10) -> None:
    net.train()
    net.drop_path_prob = 0.2
    out = net(x)
    out = out[0] if isinstance(out, tuple) else out
    assert out.shape == (x.shape[0], classes) and torch.isfinite(out).all()
    out.sum().backward()
    net.eval()
    with torch.no_grad():
        assert net(x).shape == (x.shape[0], classes)


@pytest.mark.parametrize("space_name", SPACES)
def test_sampled_genotypes_on_digits(space_name):
    space = load_space(space_name)
    settings = network_settings(space, "digits")
    assert (settings["in_channels"], settings["image_size"], settings["num_classes"]) == (1, 8, 10)
    x = torch.randn(4, 1, 8, 8)
    for i in range(20):
        g = space.sample(random.Random(i))
        _run(build_network(g.to_data(), **settings), x)


@pytest.mark.parametrize("space_name", SPACES)
def test_sampled_genotypes_on_cifar_shapes(space_name):
    space = load_space(space_name)
    settings = network_settings(space, "digits", dataset_shape=(10, 3, 32))  # the search-time network
    x = torch.randn(2, 3, 32, 32)
    for i in range(3):
        g = space.sample(random.Random(100 + i))
        _run(build_network(g.to_data(), **settings), x)


@pytest.mark.slow
@pytest.mark.parametrize("space_name", ["nasnet", "pnasnet", "darts"])
def test_200_sampled_genotypes_build_and_run(space_name):
    """200 sampled genotypes each build a network that runs (training mode, drop path on) on a digits
    batch (1x8x8) and on a CIFAR-shaped batch (3x32x32): the space's search-time network, narrowed to
    4 filters for speed (widths do not change which ops, strides and shape adaptations are built)."""
    space = load_space(space_name)
    narrow = {"C": 4} if space.network["skeleton"] == "darts" else {"F": 4}
    batches = [(network_settings(space, "digits", **narrow), torch.randn(2, 1, 8, 8)),
               (network_settings(space, "digits", dataset_shape=(10, 3, 32), **narrow), torch.randn(2, 3, 32, 32))]
    seen = set()
    for i in range(200):
        g = space.sample(random.Random(1000 + i))
        seen.add(space.hash(g))
        for settings, x in batches:
            net = build_network(g.to_data(), **settings).train()
            net.drop_path_prob = 0.2
            with torch.no_grad():
                out = net(x)
            assert out.shape == (2, 10) and torch.isfinite(out).all(), str(g)
    assert len(seen) > 190  # 200 different genotypes, not a few repeated


@pytest.mark.parametrize("name", ["nasnet_a", "amoebanet_a", "pnasnet_5", "darts_v1", "darts_v2", "enas"])
def test_published_cells_run(name):
    settings = published_settings(name, "digits")
    _run(build_network(get_published(name).to_data(), **settings), torch.randn(2, 1, 8, 8))


def test_nasnet_stacking():
    g = get_published("nasnet_a").to_data()
    net = NASNetNetwork(g, N=2, F=8, image_size=16)
    assert len(net.cells) == 3 * 2 + 2
    assert [c.reduction for c in net.cells] == [False, False, True, False, False, True, False, False]
    # F doubles at each reduction; the normal cell concatenates 6 states, the reduction cell 4
    assert [c.out_channels for c in net.cells] == [48, 48, 64, 96, 96, 128, 192, 192]
    assert net.stem[0].out_channels == 24  # stem_multiplier 3
    assert isinstance(net.cells[0].preprocess0, nn.Identity)  # slim: h_{i-2} = raw stem output
    assert isinstance(net.cells[3].preprocess0, FactorizedReduce)  # normal cell after the reduction
    # no reduce cell (PNASNet): 3N cells, the first of stacks 2 and 3 strided
    p = NASNetNetwork(get_published("pnasnet_5").to_data(), N=2, F=8, image_size=16)
    assert [c.reduction for c in p.cells] == [False, False, True, False, True, False]
    # imagenet stem: stride-2 VALID conv, two reduction stem cells with F/4 and F/2 filters
    m = NASNetNetwork(g, N=1, F=16, stem="imagenet", image_size=64)
    assert len(m.cells) == 2 + 3 + 2 and m.stem[0].stride == (2, 2) and m.stem[0].padding == (0, 0)
    assert [m.cells[0].out_channels, m.cells[1].out_channels] == [4 * 4, 8 * 4]
    assert m(torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_nasnet_aux_head_position():
    g = get_published("nasnet_a").to_data()
    net = NASNetNetwork(g, N=2, F=8, image_size=32, aux=True)
    assert net._aux_index == 4  # the last normal cell before the second reduction cell
    net.train()
    logits, aux = net(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 10)
    net.eval()
    assert isinstance(net(torch.randn(2, 3, 32, 32)), torch.Tensor)
    # 16x16 map -> 5x5 pool stride 3 -> 4x4 -> 4x4 conv to 768 (slim)
    assert net.aux_head.features[5].kernel_size == (4, 4)
    assert count_params(net, include_aux=True) - count_params(net) == count_params(net.aux_head)


def test_darts_stacking():
    g = get_published("darts_v2").to_data()
    net = DARTSNetwork(g, layers=8, C=8, aux=True)
    assert [c.reduction for c in net.cells] == [i in (2, 5) for i in range(8)]
    assert net._aux_index == 5 and net.stem[0].out_channels == 24
    assert all(not isinstance(c.preprocess0, nn.Identity) for c in net.cells)
    assert isinstance(net.cells[3].preprocess0, FactorizedReduce)
    assert net.aux_head.features[5].kernel_size == (2, 2)  # AuxiliaryHeadCIFAR on 8x8
    net.train()
    assert len(net(torch.randn(2, 3, 32, 32))) == 2
    imagenet = DARTSNetwork(g, layers=5, C=8, stem="imagenet", image_size=64, num_classes=7)
    assert isinstance(imagenet.cells[0].preprocess0, FactorizedReduce)  # reads (stem0, stem1)
    assert imagenet.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 7)


def test_nb201_skeleton():
    g = load_space("nasbench201").parse(
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|")
    net = NB201Network(g.to_data(), N=2, C=8)
    assert len(net.cells) == 3 * 2 + 2 and net.classifier.in_features == 32
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="one"):
        NB201Network(get_published("darts_v2").to_data())


def test_build_network_errors_and_positional_call():
    g = get_published("darts_v2").to_data()
    net = build_network(g, "darts", 10, 1, 8, layers=3, C=8)  # how evaluators call it
    assert isinstance(net, DARTSNetwork)
    with pytest.raises(ValueError, match="does not take N"):
        build_network(g, skeleton="darts", N=3)
    with pytest.raises(ValueError, match="unknown skeleton"):
        build_network(g, skeleton="resnet")
    with pytest.raises(ValueError, match="normal"):
        build_network({"reduce": g["reduce"]})
    assert build_network(get_published("darts_v2"), skeleton="darts", layers=3, C=8) is not None  # a Genotype


def test_channels_last_bf16_autocast():
    g = get_published("nasnet_a").to_data()
    net = build_network(g, "nasnet", 10, 3, 32, N=1, F=8, aux=True).to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    net.drop_path_prob = 0.3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, aux = net(x)
    (logits.float().sum() + aux.float().sum()).backward()


def test_model_code_is_standalone():
    """ops/cells/blocks/network import only torch, the standard library and each other (export copies them)."""
    import sys
    for name in ("ops", "cells", "blocks", "network"):
        source = (MODELS / f"{name}.py").read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                for mod in mods:
                    top = mod.split(".")[0]
                    assert (top in ("torch", "__future__") or top in sys.stdlib_module_names
                            or mod in ("nasengine.models.ops", "nasengine.models.cells", "nasengine.models.blocks")), \
                        (name, mod)
        assert ".item()" not in source and ".cpu()" not in source  # no host syncs in forward


# ------------------------------------------------------------------------------------------- presets


def test_presets():
    assert network_settings("nasnet", "digits") == {"skeleton": "nasnet", "num_classes": 10, "in_channels": 1,
                                                    "image_size": 8, "N": 1, "F": 16}
    cifar = network_settings("nasnet", "cifar10")
    assert (cifar["N"], cifar["F"], cifar["image_size"], cifar["aux"]) == (6, 32, 32, True)
    assert network_settings("pnasnet", "cifar10")["F"] == 48
    assert network_settings("darts", "cifar10", layers=8, C=16, aux=None)["layers"] == 8
    mobile = network_settings("darts", "imagenet-mobile")
    assert (mobile["layers"], mobile["C"], mobile["stem"], mobile["num_classes"]) == (14, 48, "imagenet", 1000)
    assert network_settings("nasbench201", "nb201")["N"] == 5
    assert published_settings("amoebanet_a", "imagenet-mobile")["F"] == 50
    shaped = network_settings("darts", "digits", dataset_shape={"num_classes": 3, "in_channels": 3, "image_size": 16})
    assert (shaped["num_classes"], shaped["image_size"]) == (3, 16)
    with pytest.raises(NasError, match="does not take"):
        network_settings("darts", "cifar10", N=3)
    with pytest.raises(NasError, match="unknown preset"):
        network_settings("darts", "imagenet-large")
    with pytest.raises(NasError, match="preset imagenet has no darts network"):
        network_settings("darts", "imagenet")
    with pytest.raises(NasError, match="nb201"):
        network_settings("nasnet", "nb201")
    with pytest.raises(NasError):
        network_settings("nasbench201", "imagenet-mobile")
    for skeleton in SKELETONS:  # every preset's settings are json-plain (study user attr)
        assert all(isinstance(v, (int, float, str, bool)) for v in cifar.values()), skeleton


# --------------------------------------------------------------------------------------------- flops


def test_count_flops_counts_convs_and_linears():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 5))
    model.train()
    assert count_flops(model, (3, 8, 8)) == 8 * 64 * 27 + 8 * 16 * 9 + 8 * 5
    assert model.training  # mode restored


def test_count_flops_excludes_aux_and_matches_a_real_forward():
    g = get_published("nasnet_a").to_data()
    with_aux = build_network(g, "nasnet", 10, 3, 32, N=1, F=8, aux=True)
    without = build_network(g, "nasnet", 10, 3, 32, N=1, F=8)
    assert count_flops(with_aux, (3, 32, 32)) == count_flops(without, (3, 32, 32))
    # the meta-device pass counts what one real forward does
    total = 0

    def hook(m, i, o):
        nonlocal total
        total += o.numel() * m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups

    handles = [m.register_forward_hook(hook) for m in without.modules() if isinstance(m, nn.Conv2d)]
    without.eval()
    with torch.no_grad():
        without(torch.zeros(1, 3, 32, 32))
    for h in handles:
        h.remove()
    assert count_flops(without, (3, 32, 32)) == total + without.classifier.in_features * 10

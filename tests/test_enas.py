"""ENAS's weight-sharing search: the supernet's path is the discrete network of its genotype, and a tiny
one-epoch search on digits returns a genotype of the enas space that exports."""

import pickle
import random

import pytest
import torch

from nasengine.errors import NasError
from nasengine.export import write_module
from nasengine.models.network import build_network
from nasengine.oneshot.enas import EnasSearch, param_free
from nasengine.oneshot.enas_supernet import EnasSupernet, _gathered
from nasengine.spaces.cell import load_space
from nasengine.zoo.published import get_published

pytestmark = pytest.mark.usefixtures("one_thread")


def _copy_bn(dst: torch.nn.BatchNorm2d, src: torch.nn.BatchNorm2d) -> None:
    dst.weight.data.copy_(src.weight.data)
    dst.bias.data.copy_(src.bias.data)


def _discrete_copy(net: EnasSupernet, g, C: int, layers: int) -> torch.nn.Module:
    """The darts-skeleton network of ``g`` holding the supernet's weights of ``g``'s path."""
    model = build_network(g.to_data(), "darts", 10, 1, 8, layers=layers, C=C)
    model.stem.load_state_dict(net.stem.state_dict(), strict=False)
    outputs = [(0,), (0,)]  # the concat of h_{i-2} and h_{i-1} (the stem: its one state)
    for shared, cell in zip(net.cells, model.cells):
        for pre, src, concat in ((shared.preprocess0, cell.preprocess0, outputs[-2]),
                                 (shared.preprocess1, cell.preprocess1, outputs[-1])):
            if pre.reduce:  # FactorizedReduce
                src.conv_1.weight.data.copy_(_gathered(pre.weights[0].data, concat))
                src.conv_2.weight.data.copy_(_gathered(pre.weights[1].data, concat))
                _copy_bn(src.bn, pre.bn)
            else:  # ReLU, conv, BN
                src[1].weight.data.copy_(_gathered(pre.weights[0].data, concat))
                _copy_bn(src[2], pre.bn)
        genotype_cell = g.reduce if shared.reduction else g.normal
        ops = iter(cell.ops)
        for k, node in enumerate(genotype_cell.nodes):
            for e in node:
                next(ops).load_state_dict(shared.edges[k][e.src][shared.op_index[e.op]].state_dict(), strict=False)
        outputs.append(genotype_cell.output_states())
    model.classifier.weight.data.copy_(_gathered(net.classifier.data, outputs[-1]).flatten(1))
    model.classifier.bias.data.copy_(net.bias.data)
    return model


def test_a_sampled_path_is_the_discrete_network_of_its_genotype():
    """Copy one path's shared weights into ``build_network``'s darts network: the same last cell output
    (batch statistics in both), and the same logits once the supernet's normalisation of the pooled
    features is folded into the classifier. Layers 4: two reductions in a row."""
    space = load_space("enas")
    torch.manual_seed(0)
    net = EnasSupernet(space.sample_ops, space.nodes, 10, 1, C=4, layers=4)
    x = torch.randn(6, 1, 8, 8)
    rng = random.Random(0)
    for g in [get_published("enas")] + [space.sample(rng) for _ in range(4)]:
        model = _discrete_copy(net, g, 4, 4).train()
        last = []
        hook = model.cells[-1].register_forward_hook(lambda module, inputs, output, last=last: last.append(output))
        with torch.no_grad():
            logits = model(x)
            hook.remove()
            states, concat = net.features(x, g)
            assert torch.allclose(torch.cat([states[s] for s in concat], dim=1), last[0], atol=1e-5)
            pooled = last[0].mean((2, 3))
            mean, std = pooled.mean(0), (pooled.var(0, unbiased=False) + 1e-5).sqrt()
            w = model.classifier.weight / std
            model.classifier.bias.data -= (w * mean).sum(1)
            model.classifier.weight.data.copy_(w)
            assert torch.allclose(net(x, g), model(x), atol=1e-4)
            assert not torch.allclose(logits, model(x), atol=1e-4)  # the folding did change them


def test_a_one_epoch_search_gives_an_exportable_enas_genotype(tmp_path):
    search = EnasSearch(epochs=1, C=4, layers=3, controller_samples=4, candidates=3, device="cpu")
    search = pickle.loads(pickle.dumps(search))  # it travels to a Ray worker
    reports = []
    result = search("", 0, lambda epoch, value: reports.append((epoch, value)))
    space = load_space("enas")
    g = space.parse(result["genotype"])
    assert reports == [(1, result["curve"][0])] and 0 <= result["curve"][0] <= 1
    assert result["derived"] == [result["genotype"]] and result["param_free"] == [param_free(g)]
    assert 0 <= result["value"] <= 1 and result["value"] >= result["curve"][0]  # the best of the candidates
    model = build_network(g.to_data(), "darts", 10, 1, 8, layers=3, C=16)
    assert result["params"] == sum(p.numel() for p in model.parameters()) and result["flops"] > 0
    path = write_module(g, {"skeleton": "darts", "num_classes": 10, "in_channels": 1, "image_size": 8,
                            "layers": 3, "C": 16}, tmp_path / "enas_net.py")
    assert result["genotype"] in path.read_text()


def test_settings_are_checked():
    with pytest.raises(NasError, match="unknown setting"):
        EnasSearch(learning_rate=0.1)
    with pytest.raises(NasError, match="two-input"):
        EnasSearch(space="nasbench201")
    with pytest.raises(NasError, match="controller"):
        EnasSearch(epochs=1, C=2, layers=3, controller_momentum=0.5)("", 0, lambda e, v: None)

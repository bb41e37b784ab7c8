"""DARTS: derivation from hand-set alphas, the fused supernet against the edge-by-edge one, the
second-order alpha gradient against a numerical derivative, the DARTS+ remedy, and short searches."""

import copy

import pytest
import torch
import torch.nn.functional as F

from nasengine.data import load_dataset
from nasengine.errors import NasError
from nasengine.oneshot.darts import DartsSearch, SearchStep, param_free
from nasengine.oneshot.mixed_ops import depthwise_conv
from nasengine.oneshot.supernet import Supernet, derive, edge_sources
from nasengine.spaces.cell import load_space

pytestmark = pytest.mark.usefixtures("one_thread")


def _weights(space, picks: dict[str, dict[int, tuple[str, float]]], base: float = 0.0) -> dict[str, torch.Tensor]:
    """Softmax-like rows: every op ``base``, the picked (edge -> (op, weight)) set."""
    n_edges = len(edge_sources(space.inputs, space.nodes))
    out = {}
    for name in space.cells:
        w = torch.full((n_edges, len(space.ops)), base)
        for edge, (op, value) in picks.get(name, {}).items():
            w[edge, space.ops.index(op)] = value
        out[name] = w
    return out


def test_derive_from_hand_set_alphas():
    space = load_space("darts")
    # edges: node 2 <- 0,1 (rows 0,1); node 3 <- 0,1,2 (2,3,4); node 4 <- 0..3 (5..8); node 5 <- 0..4 (9..13)
    normal = {0: ("sep_conv_3x3", 0.5), 1: ("skip_connect", 0.4),
              2: ("none", 0.9), 3: ("dil_conv_3x3", 0.3), 4: ("max_pool_3x3", 0.35),  # none never wins
              5: ("avg_pool_3x3", 0.2), 6: ("sep_conv_5x5", 0.6), 8: ("dil_conv_5x5", 0.25),
              9: ("sep_conv_3x3", 0.1), 12: ("skip_connect", 0.7), 13: ("max_pool_3x3", 0.65)}
    reduce = {0: ("max_pool_3x3", 0.5), 1: ("max_pool_3x3", 0.5), 2: ("avg_pool_3x3", 0.4),
              4: ("skip_connect", 0.3), 7: ("sep_conv_3x3", 0.9), 8: ("dil_conv_3x3", 0.8),
              10: ("sep_conv_5x5", 0.6), 11: ("sep_conv_5x5", 0.6), 12: ("sep_conv_5x5", 0.6)}  # tie: earlier edges
    g = derive(space, _weights(space, {"normal": normal, "reduce": reduce}, base=0.01))
    assert space.format(g) == (
        "normal: sep_conv_3x3~0 + skip_connect~1 | dil_conv_3x3~1 + max_pool_3x3~2 | "
        "sep_conv_5x5~1 + dil_conv_5x5~3 | skip_connect~3 + max_pool_3x3~4 > 2,3,4,5 ; "
        "reduce: max_pool_3x3~0 + max_pool_3x3~1 | avg_pool_3x3~0 + skip_connect~2 | "
        "sep_conv_3x3~2 + dil_conv_3x3~3 | sep_conv_5x5~1 + sep_conv_5x5~2 > 2,3,4,5")
    assert param_free(g) == 8

    nb201 = load_space("nasbench201")  # one op per edge, the argmax, 'none' included
    picks = {0: ("nor_conv_3x3", 0.6), 1: ("none", 0.5), 2: ("skip_connect", 0.4), 3: ("avg_pool_3x3", 0.3),
             4: ("nor_conv_1x1", 0.3), 5: ("none", 0.2)}
    g = derive(nb201, _weights(nb201, {"normal": picks}, base=0.1))
    assert nb201.format(g) == "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"


def test_derive_rejects_alphas_of_another_shape():
    space = load_space("darts")
    with pytest.raises(NasError, match="14 edges x 8 ops"):
        derive(space, {"normal": torch.zeros(14, 5), "reduce": torch.zeros(14, 8)})


@pytest.mark.parametrize("space_name,layers,size", [("darts", 3, 8), ("darts", 3, 7), ("nasbench201", 5, 8)])
def test_fused_supernet_is_the_edge_by_edge_supernet(space_name, layers, size):
    """Same loss, gradients and batch-norm running statistics (float64), odd sizes included."""
    torch.manual_seed(0)
    plain = Supernet(load_space(space_name), 10, 3, C=4, layers=layers).double()
    for a in plain.arch_parameters():
        a.data.normal_()
    fused = copy.deepcopy(plain)
    plain.fused, fused.fused = False, True
    x = torch.randn(6, 3, size, size, dtype=torch.float64)
    y = torch.randint(10, (6,))
    losses = []
    for net in (plain, fused):
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-12)
    for (name, p), q in zip(plain.named_parameters(), fused.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-12, msg=name)
    for (name, b), c in zip(plain.named_buffers(), fused.named_buffers()):
        if "num_batches_tracked" not in name:
            torch.testing.assert_close(b, c[1], rtol=1e-9, atol=1e-12, msg=name)
    plain.eval(), fused.eval()
    torch.testing.assert_close(plain(x), fused(x), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("k,dilation,stride,size", [(3, 1, 1, 8), (5, 1, 1, 7), (3, 2, 1, 6), (5, 2, 2, 8),
                                                    (3, 1, 2, 7), (5, 2, 2, 5)])
def test_depthwise_conv_gradients(k, dilation, stride, size):
    torch.manual_seed(0)
    x = torch.randn(3, 5, size, size, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 1, k, k, dtype=torch.float64, requires_grad=True)
    pad = dilation * (k - 1) // 2
    y = depthwise_conv(x, w, stride, pad, dilation)
    ref = F.conv2d(x, w, None, stride, pad, dilation, 5)
    g = torch.randn_like(ref)
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close(torch.autograd.grad(y, (x, w), g), torch.autograd.grad(ref, (x, w), g))


def _tiny(seed: int = 0):
    torch.manual_seed(seed)
    net = Supernet(load_space("darts"), 10, 3, C=4, layers=3).double()
    for a in net.arch_parameters():
        a.data.normal_(0, 0.5)
    batch = [torch.randn(4, 3, 6, 6, dtype=torch.float64), torch.randint(10, (4,)),
             torch.randn(4, 3, 6, 6, dtype=torch.float64), torch.randint(10, (4,))]
    return net, batch


def test_second_order_alpha_gradient_matches_a_numerical_derivative():
    """d/da L_val(w - xi dL_train(w, a)/dw, a) by central differences along random directions, against
    the unrolled gradient with the finite-difference Hessian-vector product (float64). The weight step
    of the difference quotient is r = 1e-6, not the paper's 0.01: ReLU kinks make the quotient at 0.01
    a rough approximation on so small a network (see nasengine/oneshot/darts.py)."""
    net, (tx, ty, vx, vy) = _tiny()
    xi = 0.5
    step = SearchStep(net, order=2, hessian_r=1e-6)
    alphas, weights = net.arch_parameters(), net.weights()
    w0 = [w.detach().clone() for w in weights]
    unrolled = step.second_order(tx, ty, vx, vy, xi)
    first = step.first_order(vx, vy)
    for w, v in zip(weights, w0):  # second_order restores the weights exactly
        assert torch.equal(w, v)

    def val_after_virtual_step(direction, h):
        with torch.no_grad():
            for a, d in zip(alphas, direction):
                a.add_(d, alpha=h)
        grads = torch.autograd.grad(F.cross_entropy(net(tx), ty), weights)
        with torch.no_grad():
            for w, v, g in zip(weights, w0, grads):
                w.copy_(v - xi * g)
            loss = F.cross_entropy(net(vx), vy).item()
            for w, v in zip(weights, w0):
                w.copy_(v)
            for a, d in zip(alphas, direction):
                a.sub_(d, alpha=h)
        return loss

    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        direction = [torch.randn(a.shape, generator=gen, dtype=torch.float64) for a in alphas]
        h = 1e-7  # ReLU and max-pool kinks lie within 1e-5 of these alphas (the quotient moved by 1e-3 there)
        numeric = (val_after_virtual_step(direction, h) - val_after_virtual_step(direction, -h)) / (2 * h)
        analytic = sum((g * d).sum().item() for g, d in zip(unrolled, direction))
        first_order = sum((g * d).sum().item() for g, d in zip(first, direction))
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9)
        # the Hessian term matters here: the first-order gradient would fail the same check
        assert abs(first_order - numeric) > 100 * abs(analytic - numeric)


def test_weight_step_trains_the_weights_only():
    net, (tx, ty, vx, vy) = _tiny()
    step = SearchStep(net, order=1, alpha_lr=0.0, alpha_weight_decay=0.0)
    alphas = [a.detach().clone() for a in net.arch_parameters()]
    before = F.cross_entropy(net(tx), ty).item()
    for _ in range(5):
        step(tx, ty, vx, vy, 0.05)
    assert all(torch.equal(a, b) for a, b in zip(net.arch_parameters(), alphas))
    assert F.cross_entropy(net(tx), ty).item() < before


def test_darts_plus_stops_a_search_whose_alphas_favour_skip():
    """DARTS+ (Liang et al. 2019): two skip connections in the normal cell stop the search."""
    space = load_space("darts")
    data = load_dataset("digits")
    settings = dict(epochs=2, C=4, layers=3, batch_size=128, device="cpu", alpha_lr=0.0, alpha_weight_decay=0.0)
    results = {}
    for remedy in (None, "darts+"):
        torch.manual_seed(0)
        net = Supernet(space, data.num_classes, data.in_channels, C=4, layers=3)
        with torch.no_grad():
            net.alphas["normal"][:, space.ops.index("skip_connect")] = 2.0  # skip leads every edge
        results[remedy] = DartsSearch("darts", remedy=remedy, **settings).search(net, space, data, 0)
    assert len(results[None]["curve"]) == 2 and results[None]["remedy_stop"] is None
    stopped = results["darts+"]
    assert stopped["remedy_stop"] == 1 and len(stopped["curve"]) == 1
    g = space.parse(stopped["genotype"])
    assert sum(e.op == "skip_connect" for node in g.normal.nodes for e in node) == 8
    assert stopped["param_free"] == [param_free(g)]


@pytest.mark.parametrize("space_name,order,layers", [("darts", 1, 3), ("darts", 2, 3), ("nasbench201", 1, 5)])
def test_one_epoch_search_returns_a_valid_genotype(space_name, order, layers):
    reports = []
    search = DartsSearch(space_name, epochs=1, order=order, C=4, layers=layers, batch_size=128, device="cpu")
    result = search("", 3, lambda epoch, acc: reports.append((epoch, acc)))
    space = load_space(space_name)
    g = space.parse(result["genotype"])
    assert space.format(g) == result["genotype"] == result["derived"][-1]
    assert reports == [(1, result["value"])] and result["curve"] == [result["value"]]
    assert 0.0 <= result["value"] <= 1.0
    assert result["ops"] == list(space.ops) and result["param_free"] == [param_free(g)]
    for name in space.cells:
        rows = result["alphas"][name]
        assert len(rows) == len(edge_sources(space.inputs, space.nodes))
        assert all(abs(sum(r) - 1) < 1e-5 for r in rows)
    assert result["params"] > 0 and result["flops"] > 0 and result["train_seconds"] > 0
    assert result["alphas_png"][:8] == b"\x89PNG\r\n\x1a\n"
    if order == 1 and space_name == "darts":  # deterministic for a seed on the CPU
        again = search("", 3, None)
        assert again["alphas"] == result["alphas"] and again["curve"] == result["curve"]


def test_bad_settings():
    with pytest.raises(NasError, match="unknown setting"):
        DartsSearch("darts", w_lrr=0.1)
    with pytest.raises(NasError, match="unknown remedy"):
        DartsSearch("darts", remedy="darts-")
    with pytest.raises(NasError, match="order"):
        DartsSearch("darts", order=3)
    with pytest.raises(NasError, match="layers must be"):
        Supernet(load_space("nasbench201"), layers=6)

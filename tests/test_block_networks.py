"""The mobile skeleton (models/blocks.py): layer specs and the network they make, EfficientNet's scaling
rules and compound scaling, sampled mnasnet genotypes, export where nasengine cannot be imported,
block diagrams and training through the CLI (with the batches resized to the network's resolution)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import subprocess
import sys
import textwrap

import pytest
import torch

from nasengine.cli.main import main
from nasengine.core.blocks import Block, Blocks
from nasengine.models.blocks import build_layer, layer_specs, round_filters, round_repeats
from nasengine.models.flops import count_flops, count_params
from nasengine.models.network import build_network
from nasengine.spaces import load_space
from nasengine.zoo.presets import published_settings
from nasengine.zoo.published import PUBLISHED

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"skeleton": "mobile", "num_classes": 10, "in_channels": 1, "image_size": 8, "width": 0.25,
         "stem_stride": 1}


def test_round_filters_and_repeats_are_efficientnets():
    # efficientnet_builder: B3 (width 1.2) has a 40-filter stem and a 1536-filter head, B2 (1.1) 32 and 1408
    assert (round_filters(32, 1.2), round_filters(1280, 1.2)) == (40, 1536)
    assert (round_filters(32, 1.1), round_filters(1280, 1.1)) == (32, 1408)
    assert round_filters(16, 0.25) == 8  # at least the divisor
    assert round_filters(40, 0.35) == 16  # 14 -> 16: the nearest multiple of 8
    assert round_filters(56, 0.55) == 32  # 30.8 -> 32
    assert round_filters(18, 1.0) == 18  # at width 1 the genotype's filters as written
    assert [round_repeats(n, 1.4) for n in (1, 2, 3, 4)] == [2, 3, 5, 6]


def test_the_network_is_its_layer_specs_in_sequence():
    g = Blocks.parse("conv k3 se0.25 c16 n2 s1 | dwconv k5 c24 n1 s2 | mbconv3 k3 se0.25 c24 n2 s1 noskip "
                     "| mbconv6 k5 c40 n2 s2")
    settings = {**SMALL, "image_size": 32, "width": 1.0, "activation": "swish"}
    specs = layer_specs(g.to_data(), **settings, dropout=0.2, drop_connect=0.1)
    assert [s["kind"] for s in specs] == ["stem", "conv", "conv", "dwconv", "mbconv", "mbconv", "mbconv", "mbconv",
                                          "head"]
    assert [s["size"] for s in specs] == [32, 32, 32, 32, 16, 16, 16, 8, 8]
    assert [s["skip"] for s in specs] == [False, False, True, False, False, False, False, True, False]
    assert len({tuple(sorted(s.items())) for s in specs}) == len(specs) - 1  # hashable; the noskip repeat is equal
    model = build_network(g.to_data(), **{k: v for k, v in settings.items() if k != "skeleton"},
                          skeleton="mobile", dropout=0.2, drop_connect=0.1).eval()
    assert model.specs == specs
    torch.manual_seed(0)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        out = x
        for spec, layer in zip(specs, model.layers):
            fresh = build_layer(spec)
            assert type(fresh) is type(layer) and count_params(fresh) == count_params(layer)
            out = layer(out)
        assert torch.equal(out, model(x))
    # the SE of a layer squeezes to max(1, int(its input * ratio)) channels of the expanded width
    se = model.layers[4].body[-3]  # the first mbconv3 layer: 24 in, 72 expanded
    assert (se.reduce.in_channels, se.reduce.out_channels) == (72, 6)
    # drop connect grows linearly over the block layers; only layers with a skip use it
    assert [round(layer.drop_connect, 3) for layer in model.layers[1:-1]] == [0.0, 0.014, 0.029, 0.043, 0.057,
                                                                             0.071, 0.086]
    assert model.layers[-1].dropout.p == 0.2
    model.train()
    assert model(x).shape == (2, 10)


def test_flops_count_depthwise_and_se_layers():
    """models/flops.py: a depthwise kxk conv costs k*k per output element, SE's 1x1 convs run on 1x1 maps."""
    g = Blocks.parse("mbconv6 k5 se0.25 c16 n1 s1")
    model = build_network(g.to_data(), "mobile", 10, 3, 16, stem=16, head=32, stem_stride=1)
    hw = 16 * 16
    expected = (hw * 9 * 3 * 16  # stem
                + hw * 16 * 96 + hw * 25 * 96 + (96 * 4 + 4 * 96) + hw * 96 * 16  # expand, dw, SE, project
                + hw * 16 * 32 + 32 * 10)  # head conv, classifier
    assert count_flops(model, (3, 16, 16)) == expected


@pytest.fixture(scope="module")
def compound_flops():
    """Mult-adds of EfficientNet-B0 scaled with the paper's coefficients (depth 1.2, width 1.1,
    resolution 1.15) at phi = 0..3, the resolution rounded to whole pixels."""
    b0 = PUBLISHED["efficientnet_b0"].to_data()
    base = published_settings("efficientnet_b0", "imagenet")
    flops = []
    for phi in range(4):
        settings = {**base, "depth": 1.2 ** phi, "width": 1.1 ** phi, "image_size": round(224 * 1.15 ** phi)}
        flops.append(count_flops(build_network(b0, **settings), (3, settings["image_size"], settings["image_size"])))
    return flops


ROUNDING = pytest.mark.xfail(strict=True, reason=(
    "EfficientNet's own rounding: ceil(layers * 1.2) doubles B0's one-layer blocks (the second 320-filter "
    "layer alone adds 16% of B0's mult-adds) and stride-2 stages round odd map sizes up (258 px ends at "
    "9x9, not 7 * 1.15), so phi = 1 and 2 give 2.57x and 4.69x, not 2x and 4x within 15%"))


@pytest.mark.parametrize("phi", [pytest.param(1, marks=ROUNDING), pytest.param(2, marks=ROUNDING), 3])
def test_compound_scaling_doubles_flops_per_phi(compound_flops, phi):
    assert compound_flops[phi] / compound_flops[0] == pytest.approx(2 ** phi, rel=0.15)


def test_compound_scaling_flops_measured(compound_flops):
    """The growth as measured (see ROUNDING): 2.57x, 4.69x, 8.43x for phi = 1, 2, 3."""
    assert [round(f / compound_flops[0], 2) for f in compound_flops] == [1.0, 2.57, 4.69, 8.43]


@pytest.fixture(scope="module")
def mnasnet():
    return load_space("mnasnet")


def test_sampled_mnasnet_genotypes_build_and_run(mnasnet):
    rng = random.Random(0)
    x = torch.randn(2, 1, 8, 8)
    kwargs = {k: v for k, v in SMALL.items() if k != "skeleton"}
    for _ in range(200):
        g = mnasnet.sample(rng)
        model = build_network(g.to_data(), "mobile", **kwargs).eval()
        with torch.no_grad():
            out = model(x)
        assert out.shape == (2, 10) and torch.isfinite(out).all(), str(g)


def test_params_grow_with_filters_and_layers(mnasnet):
    """All else fixed, a block's larger filter multiplier or extra layer means more parameters."""
    rng = random.Random(1)
    for _ in range(2):
        g = mnasnet.sample(rng)
        for i, b in enumerate(g.blocks):
            for key, choice in (("filters", "filters"), ("layers", "layers")):
                sizes = sorted(set(mnasnet.sizes[i][0 if choice == "filters" else 1].values()))
                counts = []
                for size in sizes:
                    blocks = list(g.blocks)
                    blocks[i] = Block(**{**b.__dict__, key: size})
                    model = build_network(Blocks(tuple(blocks)).to_data(), "mobile", 10, 3, 32, stem_stride=1)
                    counts.append(count_params(model))
                assert counts == sorted(set(counts)), (str(g), i, key, sizes, counts)


BLOCKER = 'raise ImportError("nasengine is blocked: an exported module must not need it")\n'
RUNNER = textwrap.dedent("""
    import json, runpy, sys
    try:
        import nasengine
    except ImportError as e:
        blocked = str(e)
    else:
        raise SystemExit("nasengine is importable here: " + str(nasengine.__file__))
    import torch
    torch.set_num_threads(1)
    report = {"blocked": blocked, "modules": {}}
    for path in sys.argv[1:]:
        ns = runpy.run_path(path)
        net = ns["Network"]().eval()
        s = ns["SETTINGS"]
        with torch.no_grad():
            out = net(torch.zeros(1, s["in_channels"], s["image_size"], s["image_size"]))
        report["modules"][path] = {"params": sum(p.numel() for p in net.parameters()), "shape": list(out.shape),
                                   "finite": bool(torch.isfinite(out).all()), "names": sorted(ns)}
    report["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] == "nasengine")
    print(json.dumps(report))
""")


def test_export_runs_without_nasengine(tmp_path, mnasnet):
    work, blocker = tmp_path / "work", tmp_path / "blocker" / "nasengine"
    work.mkdir()
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(BLOCKER)
    (work / "runner.py").write_text(RUNNER)
    sampled = mnasnet.sample(random.Random(5))
    jobs = {"a1": (["--genotype", "mnasnet_a1", "--preset", "imagenet"], PUBLISHED["mnasnet_a1"],
                   published_settings("mnasnet_a1", "imagenet")),
            "sampled": (["--genotype", str(sampled), "--preset", "digits", "--resolution", "16"], sampled,
                        {**SMALL, "image_size": 16, "activation": "relu", "dropout": 0.2})}
    expected = {}
    for name, (flags, g, settings) in jobs.items():
        path = work / f"{name}.py"
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["export", *flags, "--out", str(path)]) == 0
        source = path.read_text()
        assert "class MobileNetwork" in source and "class Cell" not in source  # only models/blocks.py
        expected[str(path)] = count_params(build_network(g.to_data(), **settings))
    env = {**os.environ, "PYTHONPATH": str(blocker.parent), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(work / "runner.py"), *expected], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "blocked" in report["blocked"] and report["loaded"] == []
    for path, params in expected.items():
        measured = report["modules"][path]
        assert measured["params"] == params and measured["finite"]
        assert "build_network" not in measured["names"]
    assert report["modules"][str(work / "a1.py")]["shape"] == [1, 1000]


def test_block_diagram(tmp_path, mnasnet):
    from nasengine.viz import block_rows, genotype_png

    g = PUBLISHED["mnasnet_a1"]
    assert block_rows(g)[2] == ("3", "MBConv3", "5x5", "0.25", "40", "3", "2", "identity")
    assert block_rows(g)[0][-1] == "none"
    assert genotype_png(mnasnet.sample(random.Random(2)), "sampled").startswith(b"\x89PNG")
    path = tmp_path / "a1.png"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["draw", "--genotype", "efficientnet_b3", "--out", str(path)]) == 0
    assert path.read_bytes().startswith(b"\x89PNG")


def test_block_diagrams_show_the_scaled_network(tmp_path):
    """EfficientNet-B3 is B0's blocks at width 1.2 and depth 1.4: the diagram gives the filters and layers
    its network builds (efficientnet_builder's B3: 24, 32, 48, 96, 136, 232, 384 filters; 2, 3, 3, 5, 5, 6,
    2 layers) and says the scaling under the title."""
    from nasengine.viz import block_rows, scaling_caption

    rows = block_rows(PUBLISHED["efficientnet_b3"], width=1.2, depth=1.4)
    assert [(r[4], r[5]) for r in rows] == [("24", "2"), ("32", "3"), ("48", "3"), ("96", "5"), ("136", "5"),
                                            ("232", "6"), ("384", "2")]
    assert scaling_caption({"width": 1.2, "depth": 1.4, "image_size": 300}) == "width 1.2, depth 1.4, 300x300 input"
    assert scaling_caption({"width": 1.0, "depth": 1.0, "image_size": 224}) is None
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert main(["draw", "--genotype", "nasnet_a", "--width", "2", "--out", str(tmp_path / "x.png")]) == 2
    assert "scale block genotypes" in err.getvalue()


def test_train_a_block_genotype_on_digits_through_the_cli(tmp_path, capsys):
    """One epoch of MobileNetV2 (the digits network: width 0.25, stride-1 stem) at resolution 12: the
    8x8 digits are resized to 12x12 batch by batch."""
    import optuna

    storage = f"sqlite:///{tmp_path / 'train.db'}"
    assert main(["train", "--genotype", "mobilenet_v2", "--epochs", "1", "--resolution", "12",
                 "--storage", storage, "--into", "mbv2"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    study = optuna.load_study(study_name="mbv2", storage=storage)
    network = study.user_attrs["network"]
    assert network["skeleton"] == "mobile" and network["image_size"] == 12 and network["activation"] == "relu6"
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    model = build_network(PUBLISHED["mobilenet_v2"].to_data(), **network)
    assert trial.user_attrs["flops"] == count_flops(model, (1, 12, 12))
    assert trial.user_attrs["params"] == count_params(model)

"""The published cells at their papers' sizes: ``nasengine export`` writes a module that, in a Python
process where nasengine cannot be imported, builds (``Network()``) a network with the builder's exact
parameter count and the paper's to within 3%; at ImageNet-mobile size the multiply-adds of one 224x224
image are within 5% of the paper's. Every built-in genotype builds and runs under both paper presets.

Papers count parameters without the auxiliary head (exported modules leave it out unless ``--aux``).
What does not match, and why: docs/cells.md, "Sizes".
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from nasengine.cli.main import main
from nasengine.models.flops import count_flops, count_params
from nasengine.models.network import build_network
from nasengine.zoo.blocks import BLOCK_NETWORKS
from nasengine.zoo.presets import published_settings
from nasengine.zoo.published import PAPER_FIGURES, PUBLISHED

# (genotype, preset, the size flags the papers give, paper parameters, paper mult-adds at 224x224)
ROWS = [
    ("nasnet_a", "cifar10", ["--N", "6", "--F", "32"], 3.3e6, None),
    ("amoebanet_a", "cifar10", ["--N", "6", "--F", "36"], 3.2e6, None),
    ("pnasnet_5", "cifar10", ["--N", "3", "--F", "48"], 3.2e6, None),
    ("darts_v2", "cifar10", ["--layers", "20", "--C", "36"], 3.3e6, None),
    ("nasnet_a", "imagenet-mobile", ["--N", "4", "--F", "44"], 5.3e6, 564e6),
    ("amoebanet_a", "imagenet-mobile", ["--N", "4", "--F", "50"], 5.1e6, 555e6),
    ("pnasnet_5", "imagenet-mobile", ["--N", "3", "--F", "54"], 5.1e6, 588e6),
    ("darts_v2", "imagenet-mobile", ["--layers", "14", "--C", "48"], 4.7e6, 574e6),
]
IDS = [f"{name}-{preset}" for name, preset, *_ in ROWS]

# Runs in a fresh interpreter whose PYTHONPATH puts BLOCKER first (a `nasengine` package that raises
# ImportError, shadowing the installed one) and whose cwd holds only the exported files.
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
        report["modules"][path] = {"params": sum(p.numel() for p in net.parameters()),
                                   "aux_head": net.aux_head is not None,
                                   "finite": bool(torch.isfinite(out).all()), "shape": list(out.shape)}
    report["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] == "nasengine")
    print(json.dumps(report))
""")


pytestmark = pytest.mark.usefixtures("one_thread")


def _module_settings(path: Path) -> dict:
    """The SETTINGS literal of an exported module."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["SETTINGS"]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path} defines no SETTINGS")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Export every row with the CLI, then build each module once in a process without nasengine.
    Returns {row id: (module path, what the CLI printed, what the isolated process measured)}."""
    root = tmp_path_factory.mktemp("paper_sizes")
    work, blocker = root / "work", root / "blocker" / "nasengine"
    work.mkdir()
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(BLOCKER)
    (work / "runner.py").write_text(RUNNER)
    paths, printed = {}, {}
    for row_id, (name, preset, size, _, _) in zip(IDS, ROWS):
        path = work / f"{row_id.replace('-', '_')}.py"
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["export", "--genotype", name, "--preset", preset, *size, "--out", str(path)]) == 0
        paths[row_id], printed[row_id] = path, out.getvalue()
    env = {**os.environ, "PYTHONPATH": str(blocker.parent), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(work / "runner.py"), *map(str, paths.values())], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-1000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "blocked" in report["blocked"] and report["loaded"] == []  # nasengine was not importable there
    return {row_id: (paths[row_id], printed[row_id], report["modules"][str(paths[row_id])]) for row_id in IDS}


@pytest.fixture(scope="module")
def builder_models():
    """The builder's network (aux head off) for every row, built once."""
    return {row_id: build_network(PUBLISHED[name].to_data(), **published_settings(name, preset, aux=False))
            for row_id, (name, preset, *_) in zip(IDS, ROWS)}


def test_rows_are_the_published_figures():
    for name, preset, _, params, macs in ROWS:
        assert PAPER_FIGURES[(name, preset)][:2] == (params, macs)


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_presets_default_to_the_paper_sizes(row):
    """``--preset`` alone gives the paper's network: the size flags are what the preset already holds."""
    name, preset, size, _, _ = row
    flags = dict(zip(size[::2], size[1::2]))
    settings = published_settings(name, preset)
    assert {k: str(settings[k.lstrip("-")]) for k in flags} == flags
    assert settings["image_size"] == (32 if preset == "cifar10" else 224)


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_exported_module_has_the_papers_parameter_count(row, exported, builder_models):
    name, preset, size, paper_params, _ = row
    row_id = f"{name}-{preset}"
    path, printed, measured = exported[row_id]
    model = builder_models[row_id]
    # the exported settings are the builder's, with the aux head off (no --aux)
    assert _module_settings(path) == published_settings(name, preset, aux=False)
    assert not measured["aux_head"] and model.aux_head is None
    # Network() in the nasengine-free process equals the builder's network exactly
    assert measured["params"] == count_params(model) == count_params(model, include_aux=True)
    assert f"parameters: {measured['params']:,}" in printed
    classes = 10 if preset == "cifar10" else 1000
    assert measured["shape"] == [1, classes] and measured["finite"]
    assert measured["params"] == pytest.approx(paper_params, rel=0.03)


DARTS_MACS = pytest.mark.xfail(
    strict=True, reason="DARTS's 574M is not reproduced by counting convs and FC (530M, -7.7%) nor by any "
                        "other convention tried; its counter was never published (docs/cells.md)")
MAC_ROWS = [pytest.param(row, id=f"{row[0]}-{row[1]}", marks=DARTS_MACS if row[0] == "darts_v2" else ())
            for row in ROWS if row[4] is not None]


@pytest.mark.parametrize("row", MAC_ROWS)
def test_imagenet_mobile_mult_adds(row, builder_models):
    name, preset, _, _, paper_macs = row
    macs = count_flops(builder_models[f"{name}-{preset}"], (3, 224, 224))
    assert macs == pytest.approx(paper_macs, rel=0.05)


def test_darts_imagenet_mult_adds_are_the_conv_and_fc_count(builder_models):
    """What nasengine reports for DARTS V2 at ImageNet-mobile size, pinned (see the xfail above):
    conv + FC multiply-adds of the quark0/darts NetworkImageNet, as counted independently."""
    assert count_flops(builder_models["darts_v2-imagenet-mobile"], (3, 224, 224)) == 529_911_552


# Published figures nasengine does not reach within 3% (docs/cells.md says why).
KNOWN_GAPS = [
    pytest.param("darts_v1", 3.3e6, id="darts_v1-cifar10", marks=pytest.mark.xfail(
        strict=True, reason="quark0/darts DARTS_V1 at 20 cells C=36 has 3.17M parameters (-4%)")),
    pytest.param("enas", 4.6e6, id="enas-cifar10", marks=pytest.mark.xfail(
        strict=True, reason="the released ENAS arc and script give 3.89M (nasengine's DARTS-skeleton "
                            "approximation 3.73M), not the paper's 4.6M")),
]


@pytest.mark.parametrize("name,paper_params", KNOWN_GAPS)
def test_known_gaps(name, paper_params):
    model = build_network(PUBLISHED[name].to_data(), **published_settings(name, "cifar10", aux=False))
    assert count_params(model) == pytest.approx(paper_params, rel=0.03)


@pytest.mark.parametrize("preset", ["cifar10", "imagenet-mobile"])
@pytest.mark.parametrize("name", [n for n in PUBLISHED if n not in BLOCK_NETWORKS])
def test_every_published_genotype_runs_under_both_presets(name, preset):
    """The preset's network as search or training would build it (aux head on), one image of the
    preset's size, eval mode."""
    settings = published_settings(name, preset)
    model = build_network(PUBLISHED[name].to_data(), **settings).eval()
    size = settings["image_size"]
    with torch.no_grad():
        out = model(torch.randn(1, 3, size, size))
    assert out.shape == (1, settings["num_classes"]) and torch.isfinite(out).all()


# ---- the mobile networks of blocks (zoo/blocks.py) at 1000 classes and their own resolution ------------
# (name, paper parameters, paper multiply-adds): MobileNetV2 (Sandler et al. 2018, Table 4), MnasNet-A1
# (Tan et al. 2019, Table 1), EfficientNet-B0..B3 (Tan & Le 2019, Table 2)
BLOCK_ROWS = [
    ("mnasnet_a1", 3.9e6, 312e6),
    ("efficientnet_b0", 5.3e6, 0.39e9),
    ("efficientnet_b1", 7.8e6, 0.70e9),
    ("efficientnet_b2", 9.2e6, 1.0e9),
    ("efficientnet_b3", 12e6, 1.8e9),
]


def _imagenet_model(name: str):
    settings = published_settings(name, "imagenet")
    return build_network(PUBLISHED[name].to_data(), **settings), settings["image_size"]


@pytest.mark.parametrize("name,paper_params,paper_macs", BLOCK_ROWS, ids=[r[0] for r in BLOCK_ROWS])
def test_block_networks_have_the_papers_sizes(name, paper_params, paper_macs):
    model, size = _imagenet_model(name)
    assert PAPER_FIGURES[(name, "imagenet")][:2] == (paper_params, paper_macs)
    assert count_params(model) == pytest.approx(paper_params, rel=0.03)
    assert count_flops(model, (3, size, size)) == pytest.approx(paper_macs, rel=0.05)


def test_mobilenet_v2_is_the_reference_network():
    """MobileNetV2: torchvision's and Keras's 3,504,872 parameters (3.1% above the paper's 3.4M) and
    300M mult-adds. The paper's figure is TF-slim's 3.47M (its README), which leaves out batch norm's
    parameters: 3,470,760 here, 2.1% above 3.4M."""
    model, size = _imagenet_model("mobilenet_v2")
    assert count_params(model) == 3_504_872
    bn = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters())
    assert count_params(model) - bn == 3_470_760 == pytest.approx(3.4e6, rel=0.03)
    assert count_flops(model, (3, size, size)) == pytest.approx(300e6, rel=0.05)


def test_params_prints_the_papers_sizes(capsys):
    assert main(["params", "--genotype", "mnasnet_a1", "--preset", "imagenet"]) == 0
    out = capsys.readouterr().out
    assert "parameters: 3,887,038 (3.89M)" in out and "mult-adds: 311,579,072 (312M)" in out
    assert "paper: 3.9M parameters, 312M mult-adds" in out


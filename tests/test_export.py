"""Exported modules are standalone (they run where nasengine cannot be imported), rebuild the same
network, and carry weights; the export and params commands."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from nasengine.cli.main import main
from nasengine.errors import NasError
from nasengine.export import module_source, write_module
from nasengine.models.flops import count_params
from nasengine.models.network import build_network
from nasengine.spaces.cell import load_space
from nasengine.zoo.presets import network_settings, published_settings
from nasengine.zoo.published import get_published

# Runs an exported file with nasengine made unimportable (the editable install would otherwise be found
# even under -I), then reports what the file built, as JSON.
RUNNER = textwrap.dedent("""
    import json, runpy, sys
    sys.modules["nasengine"] = None  # import nasengine -> ImportError
    import torch
    torch.set_num_threads(1)
    ns = runpy.run_path(sys.argv[1])
    net = ns["Network"]()
    report = {"params": sum(p.numel() for p in net.parameters()), "keys": sorted(net.state_dict())}
    if len(sys.argv) > 2:  # with weights: the outputs on a saved input
        net = ns["load_weights"]().eval()
        x = torch.load(sys.argv[2])
        with torch.no_grad():
            torch.save(net(x), sys.argv[3])
    else:
        net.eval()
        s = ns["SETTINGS"]
        with torch.no_grad():
            out = net(torch.zeros(2, s["in_channels"], s["image_size"], s["image_size"]))
        report["shape"] = list(out.shape)
    print(json.dumps(report))
""")


pytestmark = pytest.mark.usefixtures("one_thread")


def _run_isolated(tmp_path: Path, module: Path, *args: str) -> dict:
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    proc = subprocess.run([sys.executable, "-I", str(runner), str(module), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cases():
    return [
        ("nasnet_a", published_settings("nasnet_a", "digits", N=1, F=8, aux=True)),
        ("pnasnet_5", published_settings("pnasnet_5", "digits", dataset_shape=(10, 3, 32))),
        ("darts_v2", published_settings("darts_v2", "digits", stem="imagenet", image_size=32)),
        ("nb201", network_settings("nasbench201", "digits")),
    ]


@pytest.mark.parametrize("name,settings", _cases(), ids=[c[0] for c in _cases()])
def test_exported_module_is_standalone_and_equal(tmp_path, name, settings):
    if name == "nb201":
        g = load_space("nasbench201").sample(__import__("random").Random(3))
    else:
        g = get_published(name)
    path = write_module(g, settings, tmp_path / "exported_net.py")
    source = path.read_text()
    for node in ast.walk(ast.parse(source)):  # nothing but torch and the standard library
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for mod in mods:
                top = mod.split(".")[0]
                assert top in ("torch", "__future__") or top in sys.stdlib_module_names, mod
    assert str(g) in source  # the text form rides along
    model = build_network(g.to_data(), **settings)
    report = _run_isolated(tmp_path, path)
    assert report["params"] == count_params(model, include_aux=True)
    assert report["keys"] == sorted(model.state_dict())
    assert report["shape"] == [2, settings["num_classes"]]


def test_exported_weights_reproduce_the_outputs(tmp_path):
    g = get_published("darts_v2")
    settings = published_settings("darts_v2", "digits", aux=True)
    torch.manual_seed(0)
    model = build_network(g.to_data(), **settings)
    model.train()
    model(torch.randn(16, 1, 8, 8))  # move the batch-norm statistics off their defaults
    model.eval()
    path = write_module(g, settings, tmp_path / "darts_net.py", state_dict=model.state_dict())
    assert path.with_suffix(".pt").is_file()
    x = torch.randn(3, 1, 8, 8)
    torch.save(x, tmp_path / "x.pt")
    _run_isolated(tmp_path, path, str(tmp_path / "x.pt"), str(tmp_path / "y.pt"))
    with torch.no_grad():
        expect = model(x)
    assert torch.allclose(torch.load(tmp_path / "y.pt"), expect, atol=1e-6)


def test_exported_file_runs_as_a_script(tmp_path):
    path = write_module(get_published("amoebanet_a"), published_settings("amoebanet_a", "digits"),
                        tmp_path / "amoeba.py")
    proc = subprocess.run([sys.executable, "-I", "-c",
                           f"import sys, runpy; sys.modules['nasengine'] = None; "
                           f"runpy.run_path({str(path)!r}, run_name='__main__')"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "parameters" in proc.stdout and "(2, 10)" in proc.stdout


def test_write_module_errors(tmp_path):
    g = get_published("darts_v2")
    settings = published_settings("darts_v2", "digits")
    with pytest.raises(NasError, match=r"\.py"):
        write_module(g, settings, tmp_path / "net.txt")
    with pytest.raises(NasError, match="importable"):
        write_module(g, settings, tmp_path / "my-net.py")
    with pytest.raises(NasError, match="do not fit"):
        write_module(g, settings, tmp_path / "net.py", state_dict={"nonsense": torch.zeros(1)})
    with pytest.raises(NasError, match="skeleton"):
        module_source(g, {"layers": 3})


# ------------------------------------------------------------------------------------------ commands


def test_export_command(tmp_path, capsys):
    out = tmp_path / "pnas.py"
    assert main(["export", "--genotype", "pnasnet_5", "--preset", "digits", "--F", "8", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    model = build_network(get_published("pnasnet_5").to_data(), **published_settings("pnasnet_5", "digits", F=8))
    assert f"parameters: {count_params(model):,}" in printed and out.is_file()
    assert "SETTINGS" in out.read_text() and "'F': 8" in out.read_text()


def test_export_command_with_weights(tmp_path, capsys):
    settings = network_settings("darts", "digits")
    g = load_space("darts").sample(__import__("random").Random(1))
    model = build_network(g.to_data(), **settings)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    out = tmp_path / "net.py"
    assert main(["export", "--genotype", str(g), "--space", "darts", "--preset", "digits",
                 "--weights", str(tmp_path / "w.pt"), "--out", str(out)]) == 0
    assert out.with_suffix(".pt").is_file()
    assert "weights from" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["export", "--genotype", "darts_v2", "--out", "x.py"], "--preset"),
    (["export", "--genotype", "darts_v2", "--preset", "digits", "--N", "2", "--out", "x.py"], "does not take"),
    (["export", "--genotype", "not a genotype", "--preset", "digits", "--out", "x.py"], "published"),
    (["export", "--genotype", "darts_v2", "--preset", "digits", "--weights", "missing.pt", "--out", "x.py"],
     "does not exist"),
    (["export", "--storage", "sqlite:///nowhere.db", "--out", "x.py"], "--study-name"),
    (["params", "--genotype", "nasnet_a", "--preset", "nb201"], "nb201"),
])
def test_command_errors(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_params_command(capsys):
    assert main(["params", "--genotype", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                 "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|", "--preset", "nb201"]) == 0
    out = capsys.readouterr().out
    # NAS-Bench-201's largest cell on CIFAR-10: 1.531546M parameters, 220.11968M FLOPs in its tables
    assert "parameters: 1,531,546" in out and "mult-adds: 220,119,680" in out


def test_export_from_study(tmp_path, capsys):
    pytest.importorskip("nasengine.storage")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    space = load_space("darts")
    settings = network_settings(space, "digits")
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    study.set_user_attr("network", settings)
    study.set_user_attr("space", "darts")
    texts = [str(space.sample(__import__("random").Random(i))) for i in range(2)]
    for value, text in zip((0.5, 0.9), texts):
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={"genotype": text}))
    out = tmp_path / "best.py"
    assert main(["export", "--storage", storage, "--study-name", "s", "--out", str(out)]) == 0
    assert texts[1] in out.read_text()  # the best trial
    assert "trial 1" in capsys.readouterr().out
    assert main(["export", "--storage", storage, "--study-name", "s", "--trial", "0", "--C", "8",
                 "--out", str(out)]) == 0
    assert texts[0] in out.read_text() and "'C': 8" in out.read_text()
    assert main(["export", "--storage", storage, "--study-name", "s", "--weights", "--out", str(out)]) == 2
    assert "stored no weights" in capsys.readouterr().err


def test_export_leaves_the_aux_head_out_unless_asked(tmp_path, capsys):
    """The presets train with the aux head; an exported network has it only with --aux, and weights
    trained with it lose their aux-head tensors otherwise."""
    g = get_published("nasnet_a")
    trained = published_settings("nasnet_a", "digits", F=8, aux=True)
    model = build_network(g.to_data(), **trained)
    assert model.aux_head is not None
    torch.save(model.state_dict(), tmp_path / "w.pt")
    plain, with_aux = tmp_path / "plain.py", tmp_path / "with_aux.py"
    base = ["export", "--genotype", "nasnet_a", "--preset", "cifar10", "--N", "1", "--F", "8"]
    assert main([*base, "--out", str(plain)]) == 0
    assert "'aux': False" in plain.read_text() and "aux=False" in capsys.readouterr().out
    assert main([*base, "--aux", "--out", str(with_aux)]) == 0
    assert "'aux': True" in with_aux.read_text()
    capsys.readouterr()
    digits = ["export", "--genotype", "nasnet_a", "--preset", "digits", "--F", "8", "--weights", str(tmp_path / "w.pt")]
    assert main([*digits, "--out", str(plain)]) == 0
    assert "aux-head tensors left out" in capsys.readouterr().out
    saved = torch.load(plain.with_suffix(".pt"), weights_only=True)
    assert saved and not any(k.startswith("aux_head.") for k in saved)
    assert set(saved) == {k for k in model.state_dict() if not k.startswith("aux_head.")}
    assert main([*digits, "--aux", "--out", str(with_aux)]) == 0
    assert set(torch.load(with_aux.with_suffix(".pt"), weights_only=True)) == set(model.state_dict())
    # NAS-Bench-201 networks have no aux head to attach
    assert main(["export", "--genotype", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|"
                 "nor_conv_3x3~1|nor_conv_3x3~2|", "--preset", "nb201", "--aux", "--out", str(plain)]) == 2
    assert "no auxiliary head" in capsys.readouterr().err


def test_params_command_prints_the_papers_figures(capsys):
    assert main(["params", "--genotype", "pnasnet_5", "--preset", "imagenet-mobile"]) == 0
    out = capsys.readouterr().out
    assert "parameters: 5,064,487" in out and "mult-adds: 587,293,200" in out
    assert "paper: 5.1M parameters, 588M mult-adds" in out
    assert main(["params", "--genotype", "pnasnet_5", "--preset", "imagenet-mobile", "--F", "50"]) == 0
    assert "paper:" not in capsys.readouterr().out  # not the paper's network

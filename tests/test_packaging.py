"""The shipped YAML is found in a checkout and in an installed wheel, and the wheel carries every module.

The wheel is built the way a release is (``python -m build``: an sdist, then the wheel from the unpacked
sdist), from a copy of the build's inputs: setuptools also reads an old ``*.egg-info/SOURCES.txt`` and an
old ``build/`` folder, which would hide a file missing from MANIFEST.in or setup.py's copy step.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nasengine.resources import resource_dir

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("search_spaces", "studies")


def test_checkout_uses_the_top_level_folders():
    """In a checkout, users edit search_spaces/ and studies/ and the engine must read those, not a copy."""
    for kind in SHIPPED:
        assert resource_dir(kind) == ROOT / kind
    assert (resource_dir("search_spaces") / "nasnet.yaml").is_file()
    assert (resource_dir("studies") / "quick.yaml").is_file()


BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "nasengine", *SHIPPED)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (path,) = out.glob("nasengine-*.whl")
    return path


def _source_files(folder: Path, pattern: str) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob(pattern) if "__pycache__" not in p.parts}


def test_wheel_carries_every_module_and_the_shipped_yaml(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {n for n in names if n.endswith(".py")}
    # every module (export copies nasengine/models/*.py out of the installed package) and nothing else
    assert modules == {f"nasengine/{p}" for p in _source_files(ROOT / "nasengine", "*.py")}
    assert "nasengine/models/network.py" in modules
    for kind in SHIPPED:
        prefix = f"nasengine/_data/{kind}/"
        shipped = {n.removeprefix(prefix) for n in names if n.startswith(prefix)}
        assert shipped == _source_files(ROOT / kind, "*.yaml")
        assert shipped


def test_installed_wheel_finds_its_yaml(wheel, tmp_path):
    """Unpacked as pip installs it and imported from an empty folder: resource_dir points into the package."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    empty = tmp_path / "empty"
    empty.mkdir()
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import nasengine; from nasengine.resources import"
        " resource_dir; print(json.dumps([nasengine.__file__] + [str(resource_dir(k)) for k in sys.argv[2:]]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(site), *SHIPPED], cwd=empty, check=True, capture_output=True, text=True
    )
    package, *folders = json.loads(done.stdout)
    assert Path(package).parent == site / "nasengine"
    for kind, folder in zip(SHIPPED, folders):
        assert Path(folder) == site / "nasengine" / "_data" / kind
        for source in (ROOT / kind).glob("*.yaml"):
            assert (Path(folder) / source.name).read_bytes() == source.read_bytes()

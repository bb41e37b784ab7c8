"""Bad input, everywhere, before any work starts (issue 21, item 6): each case goes through the real
command line and must give exactly one line on stderr, exit status 2, a database left byte for byte as
it was, and no new file (no database created, no output written).

The study the cases aim at is written once by a real ``nasengine search`` (one trial of one epoch of a
NAS-Bench-201 cell in a 4-channel network on digits, in process: seconds). A handful of cases run as
``python -m nasengine`` subprocesses to prove the exit status the shell sees; the rest run in process."""

import argparse
import gc
import hashlib
import os
import pickle
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from nasengine import __version__
from nasengine.cli.main import build_parser, main
from nasengine.zoo.published import PUBLISHED

DARTS_V2 = str(PUBLISHED["darts_v2"])
NB201 = "|avg_pool_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|nor_conv_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|"
MOBILE = ("mbconv6 k5 c20 n2 s1 | mbconv6 k5 se0.25 c30 n1 s2 | dwconv k5 c40 n3 s2 noskip | dwconv k5 c80 n4 s2 "
          "noskip | mbconv6 k3 se0.25 c96 n4 s1 | dwconv k5 se0.25 c120 n4 s2 | conv k3 se0.25 c400 n2 s1 noskip")

FILES = {  # name -> contents, written into the world's folder
    "trails.yaml": "trails: 3\n",
    "type.yaml": "trials: many\n",
    "broken.yaml": "trials: [1\n",
    "list.yaml": "- trials\n",
    "train.yaml": "train: {lr: 0.1, epoch: 3}\n",
    "network.yaml": "space: nasbench201\nnetwork: {CC: 4}\n",
    "latency.yaml": "objectives: [accuracy, latency]\nlatency: {devic: cpu}\n",
    "algo.yaml": "algo_settings: {populaton: 5}\n",
    "space.yaml": "name: mine\nopps: [identity, conv_3x3]\n",
    "space-blocks.yaml": "kind: blocks\nname: mine\nbackbone: [conv k3 c8 n1 s1]\nops: [conv]\nkernel: [3]\n",
    "space-yaml.yaml": "name: mine\nops: [identity\n",
    "scale.yaml": "base: efficientnet_b0\ngrid_stepp: 0.1\n",
    "nasnet.yaml": "space: nasnet\ntrain: {batch_size: 256, threads: 1}\n",
    "table.csv": f"ArchitectureString,cifar10\n{NB201},0.9\n",
}

# (id, arguments, what the one line must contain). In arguments: {db} is the study's SQLite URL, {new} a
# URL of a file that must not come to exist, {dir} the world's folder, {out} a path that must not be
# written, {locked} a copy of the database another connection holds an exclusive lock on.
SEARCH = ["search", "--storage", "{db}", "--executor", "inprocess", "--trials", "2", "--epochs", "1"]
RESUME = [*SEARCH, "--study-name", "tiny", "--space", "nasbench201", "--config", "{dir}/tiny.yaml"]
CASES = [
    # search: flags
    ("search-trials-0", [*SEARCH, "--trials", "0"], "must be positive"),
    ("search-workers-text", [*SEARCH, "--workers", "two"], "'two' is not an integer"),
    ("search-unknown-flag", [*SEARCH, "--trails", "3"], "unrecognized arguments: --trails"),
    ("search-executor", [*SEARCH, "--executor", "threads"], "invalid choice: 'threads'"),
    ("search-algo", [*SEARCH, "--algo", "evolutoin"], "did you mean 'evolution'?"),
    ("search-space", [*SEARCH, "--space", "nasbench2O1"], "did you mean 'nasbench201'?"),
    ("search-dataset", [*SEARCH, "--dataset", "cifar11"], "did you mean 'cifar10'?"),
    ("search-preset", [*SEARCH, "--preset", "cifar"], "unknown preset 'cifar'"),
    ("search-objectives", [*SEARCH, "--objectives", "accuracy,sped"], "unknown objective 'sped'"),
    ("search-reward", [*SEARCH, "--objective", "reward"], "needs target_latency_ms"),
    ("search-storage-url", [*SEARCH, "--storage", "oracle2://a@b/c"], "unknown database kind"),
    ("search-init-name", [*SEARCH, "--init", "nasnet_b"], "did you mean 'nasnet_a'?"),
    # algorithm settings: the valid keys, not Python's "unexpected keyword"
    ("algo-setting-key", [*SEARCH, "--algo-setting", "populaton=5"], "did you mean 'population'?"),
    ("algo-setting-none", [*SEARCH, "--algo", "random", "--algo-setting", "x=1"], "unknown setting(s) x (known: none)"),
    ("algo-setting-value", [*SEARCH, "--algo-setting", "population=abc"], "algorithm evolution: invalid literal"),
    ("darts-space", [*SEARCH, "--algo", "darts"], "space nasnet: a DARTS supernet needs a zero op"),
    ("algo-setting-form", [*SEARCH, "--algo-setting", "population"], "expected KEY=VALUE"),
    ("algo-setting-reinforce", [*SEARCH, "--algo", "reinforce", "--algo-setting", "batchsize=2"],
     "did you mean 'batch'?"),
    ("algo-setting-darts", [*SEARCH, "--algo", "darts", "--algo-setting", "alpha_lrr=1"], "did you mean 'alpha_lr'?"),
    # configuration files
    ("config-unknown-key", [*SEARCH, "--config", "{dir}/trails.yaml"], "did you mean 'trials'?"),
    ("config-type", [*SEARCH, "--config", "{dir}/type.yaml"], "trials must be an integer, got 'many'"),
    ("config-yaml", [*SEARCH, "--config", "{dir}/broken.yaml"], "not valid YAML"),
    ("config-list", [*SEARCH, "--config", "{dir}/list.yaml"], "mapping"),
    ("config-missing", [*SEARCH, "--config", "{dir}/nope.yaml"], "no study configuration"),
    ("config-train-key", [*SEARCH, "--config", "{dir}/train.yaml"], "did you mean 'epochs'?"),
    ("config-network-key", [*SEARCH, "--config", "{dir}/network.yaml"], "did you mean 'C'?"),
    ("config-latency-key", [*SEARCH, "--config", "{dir}/latency.yaml"], "did you mean 'device'?"),
    ("config-algo-settings", [*SEARCH, "--config", "{dir}/algo.yaml"], "did you mean 'population'?"),
    # search spaces given as files
    ("space-file-key", [*SEARCH, "--space", "{dir}/space.yaml"], "did you mean 'ops'?"),
    ("space-file-blocks-key", [*SEARCH, "--space", "{dir}/space-blocks.yaml"], "did you mean 'kernels'?"),
    ("space-file-yaml", [*SEARCH, "--space", "{dir}/space-yaml.yaml"], "not valid YAML"),
    ("space-file-missing", [*SEARCH, "--space", "{dir}/nope.yaml"], "nope.yaml"),
    # genotype texts: the bad op and the space, with and without --space
    ("init-bad-op", [*SEARCH, "--space", "darts", "--init", DARTS_V2.replace("sep_conv_3x3", "sep_conv_9x9", 1)],
     "unknown op 'sep_conv_9x9' for space darts"),
    ("train-bad-op-space", ["train", "--genotype", DARTS_V2.replace("skip", "skp", 1), "--space", "darts",
                            "--storage", "{new}"], "unknown op 'skp_connect' for space darts"),
    ("train-bad-op", ["train", "--genotype", DARTS_V2.replace("sep_conv_3x3", "sep_conv_9x9", 1),
                      "--storage", "{new}"], "op 'sep_conv_9x9' is in no search space (did you mean 'sep_conv_"),
    ("train-bad-block-op", ["train", "--genotype", MOBILE.replace("dwconv", "mbconv9", 1), "--storage", "{new}"],
     "op 'mbconv9' is in no search space"),
    ("train-outside-space", ["train", "--genotype", DARTS_V2, "--space", "nasbench201", "--storage", "{new}"],
     "nasbench201"),
    ("train-published", ["train", "--genotype", "darts_v3", "--storage", "{new}"], "did you mean 'darts_v2'?"),
    ("params-bad-op", ["params", "--genotype", NB201.replace("nor_conv_3x3", "nor_conv_5x5"), "--preset", "digits"],
     "op 'nor_conv_5x5' is in no search space"),
    ("draw-bad-op", ["draw", "--genotype", NB201.replace("nor_conv_3x3", "nor_conv_5x5"), "--out", "{out}.png"],
     "op 'nor_conv_5x5' is in no search space"),
    ("draw-bad-op-space", ["draw", "--genotype", DARTS_V2.replace("sep_conv_3x3", "sep_conv_9x9", 1),
                           "--space", "darts", "--out", "{out}.png"], "unknown op 'sep_conv_9x9' for space darts"),
    # other commands' options
    ("train-epochs-0", ["train", "--genotype", "darts_v2", "--epochs", "0", "--storage", "{new}"], "must be positive"),
    ("train-width", ["train", "--genotype", "efficientnet_b0", "--width", "-1", "--storage", "{new}"],
     "must be positive"),
    ("train-dataset", ["train", "--genotype", "darts_v2", "--dataset", "mnist", "--storage", "{new}"],
     "unknown dataset 'mnist'"),
    ("export-no-preset", ["export", "--genotype", "nasnet_a", "--out", "{out}.py"], "--preset is needed"),
    ("export-N", ["export", "--genotype", "darts_v2", "--preset", "digits", "--N", "2", "--out", "{out}.py"],
     "does not take N"),
    ("params-layers", ["params", "--genotype", "darts_v2", "--preset", "digits", "--layers", "0"], "must be positive"),
    ("show-top", ["show", "--storage", "{db}", "--top", "0"], "must be positive"),
    ("plot-no-out", ["plot", "--storage", "{db}"], "--out"),
    ("bench-column", ["bench", "--space", "nasbench201", "--table", "{dir}/table.csv", "--column", "cifar1O",
                      "--quiet"], "cifar1O"),
    ("bench-table", ["bench", "--table", "{dir}/nope.csv", "--column", "x", "--quiet"], "nope.csv"),
    ("bench-setting", ["bench", "--space", "nasbench201", "--table", "{dir}/table.csv", "--column", "cifar10",
                       "--algo", "evolution:populaton=3", "--quiet"], "did you mean 'population'?"),
    ("dashboard-port", ["dashboard", "--storage", "{db}", "--port", "-1"], "must be positive"),
    ("dashboard-missing", ["dashboard", "--storage", "{new}"], "does not exist"),
    ("latency-genotype", ["latency", "--genotype", "mobilenet_v3"], "did you mean 'mobilenet_v2'?"),
    ("latency-threads", ["latency", "--genotype", "mobilenet_v2", "--threads", "0"], "must be positive"),
    ("scale-config", ["scale", "--config", "{dir}/scale.yaml", "--storage", "{new}"], "did you mean 'grid_step'?"),
    ("scale-grid", ["scale", "--base", "efficientnet_b0", "--grid-step", "-1", "--storage", "{new}"],
     "must be positive"),
    ("scale-base", ["scale", "--base", "efficientnet_b9", "--storage", "{new}"], "efficientnet_b9"),
    ("unknown-command", ["serch"], "invalid choice: 'serch'"),
    # dataset files
    ("cifar-missing", [*SEARCH, "--dataset", "cifar10", "--data-dir", "{dir}/empty"], "batch files not found"),
    ("cifar-truncated", [*SEARCH, "--dataset", "cifar10", "--data-dir", "{dir}/truncated"], "data_batch_2"),
    ("cifar-corrupt", [*SEARCH, "--dataset", "cifar10", "--data-dir", "{dir}/corrupt"], "data_batch_4"),
    ("cifar-shape", [*SEARCH, "--dataset", "cifar10", "--data-dir", "{dir}/shape"], "expected N x 3072"),
    # studies that are not there, or were made by another space, algorithm or dataset
    ("show-missing-study", ["show", "--storage", "{db}", "--study-name", "tiyn"], "did you mean 'tiny'?"),
    ("show-missing-file", ["show", "--storage", "{new}"], "does not exist"),
    ("plot-missing-study", ["plot", "--storage", "{db}", "--study-name", "nope", "--out", "{out}"], "'nope'"),
    ("export-missing-trial", ["export", "--storage", "{db}", "--study-name", "tiny", "--trial", "42",
                              "--out", "{out}.py"], "42"),
    ("export-missing-study", ["export", "--storage", "{db}", "--study-name", "tinyy", "--out", "{out}.py"],
     "did you mean 'tiny'?"),
    ("train-missing-trial", ["train", "--trial", "7", "--study-name", "tiny", "--storage", "{db}"], "7"),
    ("train-missing-study", ["train", "--trial", "0", "--study-name", "nope", "--storage", "{db}"], "'nope'"),
    ("draw-missing-trial", ["draw", "--storage", "{db}", "--study-name", "tiny", "--trial", "9", "--out",
                            "{out}.png"], "9"),
    ("resume-other-space", [*SEARCH, "--study-name", "tiny", "--config", "{dir}/nasnet.yaml"], "space"),
    ("resume-other-algo", [*RESUME, "--algo", "random"], "algo"),
    ("resume-other-dataset", [*RESUME, "--dataset", "synthetic"], "dataset"),
    # the database itself
    ("locked", [*RESUME[:2], "{locked}", *RESUME[3:]], "locked"),
]


def _write_cifar(folder: Path, n: int = 4) -> None:
    """CIFAR-10 batch files in the real format (pickled dicts of byte-string keys; see tests/test_data.py)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"labels": rng.integers(0, 10, n).tolist()}, f, protocol=2)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A folder with a study written by a real search, its read-only and locked copies, bad files."""
    import torch

    folder = tmp_path_factory.mktemp("bad-input")
    (folder / "tiny.yaml").write_text("space: nasbench201\nnetwork: {C: 4}\ntrain: {batch_size: 256, threads: 1}\n")
    threads = torch.get_num_threads()
    try:
        assert main(["search", "--config", str(folder / "tiny.yaml"), "--executor", "inprocess", "--trials", "1",
                     "--epochs", "1", "--workers", "1", "--storage", f"sqlite:///{folder / 'study.db'}",
                     "--study-name", "tiny", "--no-diagrams"]) == 0
    finally:
        torch.set_num_threads(threads)
    gc.collect()  # the search's connections closed: its log checkpointed into the file, so no later reader does it
    with sqlite3.connect(folder / "study.db") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for name, text in FILES.items():
        (folder / name).write_text(text)
    (folder / "empty").mkdir()
    for name in ("truncated", "corrupt", "shape"):
        _write_cifar(folder / name / "cifar-10-batches-py")
    batch = folder / "truncated" / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:-100])
    (folder / "corrupt" / "cifar-10-batches-py" / "data_batch_4").write_bytes(b"\x80\x02}q\x00garbage")
    with open(folder / "shape" / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 1024), np.uint8), b"labels": [0, 1, 2, 3]}, f)
    shutil.copy(folder / "study.db", folder / "locked.db")
    return folder


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (its path) and its contents' hash; of a SQLite database in WAL mode, the
    file and its log (``-wal``; an empty one as good as none: the last connection to close deletes it), not
    the shared-memory index (``-shm``), which readers write their read marks into
    (https://sqlite.org/walformat.html)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith("-shm") and not (p.name.endswith("-wal") and not p.stat().st_size)}


def _argv(args: list[str], folder: Path) -> list[str]:
    places = {"db": f"sqlite:///{folder / 'study.db'}", "new": f"sqlite:///{folder / 'new.db'}", "dir": str(folder),
              "out": str(folder / "out"),
              "locked": f"sqlite:///{folder / 'locked.db'}"}
    return [a.format(**places) for a in args]


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's errors
        return e.code


@pytest.mark.parametrize("args, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(world, args, expected, capsys, monkeypatch):
    monkeypatch.chdir(world)  # the default storage, if one were used, would be created here
    before = _snapshot(world)
    argv = _argv(args, world)
    lock = None
    if "{locked}" in args:  # another connection holds an exclusive lock
        lock = sqlite3.connect(world / "locked.db", isolation_level=None)
        lock.execute("PRAGMA locking_mode = EXCLUSIVE")
        lock.execute("BEGIN EXCLUSIVE")
    try:
        code = _run(argv)
    finally:
        if lock is not None:
            lock.execute("ROLLBACK")
            lock.close()
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.strip(), err
    assert expected in err, err
    assert _snapshot(world) == before


@pytest.mark.parametrize("args, expected", [
    (["search", "--trials", "0"], "must be positive"),
    (["search", "--config", "{dir}/trails.yaml", "--storage", "{new}"], "did you mean 'trials'?"),
    (["show", "--storage", "{db}", "--study-name", "tiyn"], "did you mean 'tiny'?"),
    (["train", "--genotype", NB201.replace("nor_conv_3x3", "nor_conv_5x5"), "--storage", "{new}"], "nor_conv_5x5"),
])
def test_the_shell_sees_exit_2_and_one_line(world, args, expected):
    before = _snapshot(world)
    out = subprocess.run([sys.executable, "-m", "nasengine", *_argv(args, world)], cwd=world, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and expected in out.stderr, out.stderr
    assert out.stderr.startswith("nasengine") and not out.stdout
    assert _snapshot(world) == before


def test_a_read_only_database(world, tmp_path_factory):
    """A study in a database file (and folder) that cannot be written: resuming it is one line, exit 2.
    File modes do not hold for root, so as root the command runs as the user nobody."""
    folder = Path(tempfile.mkdtemp(prefix="nasengine-read-only-"))  # not under pytest's private folder
    try:
        for name in ("study.db", "tiny.yaml"):
            shutil.copy(world / name, folder / name)
            (folder / name).chmod(0o444)
        folder.chmod(0o555)
        before = _snapshot(folder)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        args = [*SEARCH, "--study-name", "tiny", "--space", "nasbench201", "--config", "{dir}/tiny.yaml"]
        argv = [a.format(db=f"sqlite:///{folder / 'study.db'}", dir=folder) for a in args]
        out = subprocess.run([*as_nobody, sys.executable, "-m", "nasengine", *argv], cwd=folder, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 2, out.stderr
        assert out.stderr.count("\n") == 1 and re.search("read-?only", out.stderr), out.stderr
        assert _snapshot(folder) == before
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_version():
    out = subprocess.run([sys.executable, "-m", "nasengine", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == f"nasengine {__version__}\n"


def _options(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """``(command path, action)`` for every option and command of the parser tree."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield path, argparse.Action([name], name, help="a command" if name in helped else None)
                yield from _options(sub, (*path, name))
        else:
            yield path, action


def test_every_command_and_flag_has_help():
    missing = [f"{' '.join(path) or 'nasengine'} {'/'.join(a.option_strings) or a.dest}"
               for path, a in _options(build_parser())
               if not (a.help and a.help != argparse.SUPPRESS and a.help.split("(")[0].strip())]
    assert not missing, missing

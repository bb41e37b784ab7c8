"""A multi-node Ray cluster on one machine, set up and used with the README's own lines (section "A Ray
cluster with a shared PostgreSQL study"): `ray get-auth-token --generate`, `ray start --head`, `ray start
--address` as separate processes (two nodes of 1 CPU each), `nasengine search --ray-address` with the study
on the test PostgreSQL server, and every trial records the node it ran on: both nodes ran trials.

The README's lines are run as written but for the values a test must pick (a free port, 1 CPU a node,
a tiny study config, the test database) and two changes, so that the cluster touches no other Ray of the
machine: `ray start` gets `--block` and the cluster is stopped by ending those two processes (`ray stop`
ends every Ray of the machine), RAY_TMPDIR puts its files (also the `ray_current_cluster` file that a
bare `ray.init()` joins) in a folder of its own, and HOME one of its own, where the token is made and read
(the tests run with RAY_AUTH_MODE=token, conftest.py: without a token the head refuses to start)."""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from nasengine.storage import check_storage_url

optuna.logging.set_verbosity(optuna.logging.WARNING)

README = Path(__file__).resolve().parent.parent / "README.md"
BIN = Path(sys.executable).parent  # the venv's ray and nasengine commands
TINY = "space: nasbench201\nalgo: random\ntrials: 4\nepochs: 1\nnetwork: {C: 4}\ndiagrams: false\n"


def readme_cluster_lines() -> list[str]:
    """The commands of the README's cluster section, comments dropped."""
    text = README.read_text()
    section = text[text.index("### A Ray cluster with a shared PostgreSQL study"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive_nodes(address: str, env: dict) -> int:
    done = subprocess.run([str(BIN / "ray"), "status", f"--address={address}"], capture_output=True, text=True,
                          timeout=60, env=env)
    active = done.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
    return len(re.findall(r"\bnode_[0-9a-f]+", active))


def test_a_two_node_cluster_runs_the_readme_search(tmp_path, postgres_database):
    lines = readme_cluster_lines()
    assert [line.split()[:2] for line in lines] == [["ray", "get-auth-token"], ["ray", "start"], ["ray", "start"],
                                                     ["nasengine", "search"], ["ray", "stop"]]
    (tmp_path / "tiny.yaml").write_text(TINY)
    port = free_port()
    address = f"127.0.0.1:{port}"
    storage = postgres_database
    values = {"6379": str(port), "HEAD_IP": "127.0.0.1", "--num-cpus=8": "--num-cpus=1", "--config quick":
              "--config tiny.yaml", "--workers 16": "--workers 2",
              "postgresql://USER:PASSWORD@DB_HOST/nasengine": storage}
    commands = []
    for line in lines:
        for old, new in values.items():
            line = line.replace(old, new)
        commands.append(shlex.split(line))
    ray_tmp = tempfile.mkdtemp(prefix="rc")  # short: Ray's socket paths must stay under 108 characters
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_TMPDIR": ray_tmp, "HOME": str(tmp_path / "home")}
    token = subprocess.run([str(BIN / commands[0][0])] + commands[0][1:], capture_output=True, text=True, env=env,
                           timeout=60)
    assert token.returncode == 0 and (tmp_path / "home" / ".ray" / "auth_token").read_text().strip(), token.stderr
    nodes = []
    try:
        for command in commands[1:3]:  # the head, then the second node: each `ray start` a process of its own
            log = open(tmp_path / f"node{len(nodes)}.log", "w")
            nodes.append(subprocess.Popen([str(BIN / command[0])] + command[1:] + ["--block"], stdout=log,
                                          stderr=subprocess.STDOUT, env=env, start_new_session=True))
            end = time.monotonic() + 60
            while "Ray runtime started" not in (text := (tmp_path / f"node{len(nodes) - 1}.log").read_text()):
                assert time.monotonic() < end and nodes[-1].poll() is None, text
                time.sleep(0.2)
        end = time.monotonic() + 60
        while alive_nodes(address, env) < 2:  # both registered before the search looks at the cluster
            assert time.monotonic() < end, "the second node never joined"
            time.sleep(0.5)
        search = commands[3]
        done = subprocess.run([str(BIN / search[0])] + search[1:], cwd=tmp_path, capture_output=True, text=True,
                              env=env, timeout=240)
        assert done.returncode == 0, done.stderr
        assert f"Ray cluster at {address}" in done.stderr
    finally:
        for proc in nodes:  # `ray stop`, for this cluster only: ray start --block ends the processes it started
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in nodes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    trials = optuna.load_study(study_name="nasbench201-random-digits", storage=check_storage_url(storage)).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    ran_on = {t.user_attrs["node"] for t in trials}
    assert len(ran_on) == 2, ran_on  # both nodes trained
    assert all(re.fullmatch(r"[0-9.]+/[0-9a-f]{56}", node) for node in ran_on), ran_on  # IP/Ray node id

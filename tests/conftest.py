"""Test-session set-up that must happen before any test module imports Ray.

Ray reads ``RAY_AUTH_MODE`` once per process, when it is first imported. Local clusters started by
``ray.init()`` use token authentication by default (Ray >= 2.59), so the test process and the Ray
clusters the tests start in other processes must agree on it from the start.
"""

import os

os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


import pytest  # after the environment is set: Ray reads RAY_AUTH_MODE once, at import


@pytest.fixture
def one_thread():
    """One torch thread for tiny tensors: more threads only add overhead, and spin badly on a busy
    machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

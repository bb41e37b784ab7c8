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


# ------------------------------------------------------------------------------------------ storages

POSTGRES_ENV = "NASENGINE_TEST_POSTGRES"


def postgres_server() -> str:
    """The PostgreSQL server URL the tests may use (``.ci/run`` starts one and exports it). Without one
    the PostgreSQL tests skip, except under ``CI=true``, where a missing server is a failure."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true but {POSTGRES_ENV} is not set: .ci/run starts a PostgreSQL server and sets it")
    pytest.skip(f"no PostgreSQL server: set {POSTGRES_ENV}=postgresql://USER@HOST:PORT/DB (.ci/run does)")


def fresh_postgres_database():
    """A new, empty database on the test server (its URL), dropped again when the generator closes."""
    import uuid

    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from nasengine.storage import check_storage_url

    server = check_storage_url(postgres_server())
    name = f"nasengine_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield make_url(postgres_server()).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:  # FORCE: connections a killed test process left open
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request, tmp_path):
    """An empty storage of each kind: a SQLite file in the test's folder, or a database of its own on the
    test PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'study.db'}"
    else:
        yield from fresh_postgres_database()


@pytest.fixture
def postgres_database():
    """A new database of its own on the test PostgreSQL server (its URL)."""
    yield from fresh_postgres_database()

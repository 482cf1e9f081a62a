"""Backend fixtures shared by every test directory.

- ``sqlite_store``: a migrated SQLite store in the test's own temporary file.
- ``any_store``: a real store of each backend (the test runs once per backend;
  Cassandra only when CLAIMANT_TEST_CASSANDRA names a node, else skipped).
- ``cassandra_session_store``: the Cassandra store behind ``any_store``.

A directory's conftest names these for its tests (``store`` is ``any_store``
in tests/store and tests/e2e, ``sqlite_store`` in tests/api and
tests/scheduler).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from claimant.store import Store, open_store

CASSANDRA_ENV = "CLAIMANT_TEST_CASSANDRA"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("cassandra", id="cassandra", marks=pytest.mark.cassandra),
]


def sqlite_url(path: Path) -> str:
    return "sqlite:///" + str(path).lstrip("/")


def cassandra_hosts_or_skip() -> str:
    hosts = os.environ.get(CASSANDRA_ENV, "").strip()
    if not hosts:
        pytest.skip(f"Cassandra backend not tested: set {CASSANDRA_ENV}=host[,host...] to run it")
    return hosts


@pytest.fixture(scope="session")
def cassandra_session_store() -> Iterator[Store]:
    # One keyspace per session (per xdist worker): schema changes are slow in
    # Cassandra, truncates are not. Each test that takes it resets it.
    hosts = cassandra_hosts_or_skip()
    st = open_store(f"cassandra://{hosts}/claimant_test_{secrets.token_hex(4)}?rf=1")
    try:
        st.migrate()
        yield st
    finally:
        # A failed migrate must not leave a half-made keyspace behind; its
        # error is the one that matters.
        with contextlib.suppress(Exception):
            st.drop()
        st.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    st = open_store(sqlite_url(tmp_path / "claimant.db"))
    st.migrate()
    try:
        yield st
    finally:
        st.close()


@pytest.fixture(params=BACKENDS)
def any_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_store")
        return
    st = request.getfixturevalue("cassandra_session_store")
    st.reset()
    yield st

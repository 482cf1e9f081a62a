"""Fixtures of the scheduler tests: a real SQLite store in a temporary file;
``any_store`` runs a test on every backend."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from claimant.store import Store, open_store


def sqlite_url(path: Path) -> str:
    return "sqlite:///" + str(path).lstrip("/")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = open_store(sqlite_url(tmp_path / "s.db"))
    st.migrate()
    try:
        yield st
    finally:
        st.close()


CASSANDRA_ENV = "CLAIMANT_TEST_CASSANDRA"


@pytest.fixture(scope="session")
def cassandra_session_store() -> Iterator[Store]:
    hosts = os.environ.get(CASSANDRA_ENV, "").strip()
    if not hosts:
        pytest.skip(f"Cassandra backend not tested: set {CASSANDRA_ENV}=host[,host...] to run it")
    st = open_store(f"cassandra://{hosts}/claimant_sched_{secrets.token_hex(4)}?rf=1")
    try:
        st.migrate()
        yield st
    finally:
        with contextlib.suppress(Exception):
            st.drop()
        st.close()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("cassandra", id="cassandra", marks=pytest.mark.cassandra),
    ]
)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A real store of each backend (Cassandra when CLAIMANT_TEST_CASSANDRA is set)."""
    if request.param == "sqlite":
        st = open_store(sqlite_url(tmp_path / "any.db"))
        st.migrate()
        try:
            yield st
        finally:
            st.close()
        return
    st = request.getfixturevalue("cassandra_session_store")
    st.reset()
    yield st

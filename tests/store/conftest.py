"""Fixtures of the store conformance suite: ``store`` runs every test once per
backend; ``clock`` lets a test move time forward instead of sleeping."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator

import pytest

from claimant.store import Store, open_store

from .builders import FakeClock

CASSANDRA_ENV = "CLAIMANT_TEST_CASSANDRA"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("cassandra", id="cassandra", marks=pytest.mark.cassandra),
]


@pytest.fixture(scope="session")
def cassandra_session_store() -> Iterator[Store]:
    hosts = os.environ.get(CASSANDRA_ENV, "").strip()
    if not hosts:
        pytest.skip(f"Cassandra backend not tested: set {CASSANDRA_ENV}=host[,host...] to run it")
    # One keyspace per session: schema changes are slow in Cassandra, truncates are not.
    keyspace = "claimant_test_" + secrets.token_hex(4)
    st = open_store(f"cassandra://{hosts}/{keyspace}?rf=1")
    try:
        st.migrate()
    except BaseException:
        # Do not leave a half-made keyspace behind; the migrate error is what matters.
        with contextlib.suppress(Exception):
            st.drop()
        st.close()
        raise
    try:
        yield st
    finally:
        st.drop()
        st.close()


@pytest.fixture(params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("store") / "claimant.db"
        st = open_store("sqlite:///" + str(path).lstrip("/"))
        st.migrate()
        try:
            yield st
        finally:
            st.close()
        return
    st = request.getfixturevalue("cassandra_session_store")
    st.reset()
    yield st


@pytest.fixture
def clock(store: Store) -> Iterator[FakeClock]:
    fake = FakeClock(float(int(time.time())))
    saved = vars(store).get("clock")
    store.clock = fake
    try:
        yield fake
    finally:
        if saved is not None:
            store.clock = saved
        else:
            # Back to the class's clock (the session Cassandra store outlives this test).
            del store.clock

"""Fixtures of the Cassandra backend's own tests: a throw-away keyspace on the
node named by CLAIMANT_TEST_CASSANDRA, and a clock the test moves."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator

import pytest

from claimant.store import open_store
from claimant.store.cassandra import CassandraStore

CASSANDRA_ENV = "CLAIMANT_TEST_CASSANDRA"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture(scope="session")
def cassandra_hosts() -> str:
    hosts = os.environ.get(CASSANDRA_ENV, "").strip()
    if not hosts:
        pytest.skip(f"Cassandra backend not tested: set {CASSANDRA_ENV}=host[,host...]")
    return hosts


@pytest.fixture(scope="session")
def session_store(cassandra_hosts: str) -> Iterator[CassandraStore]:
    st = open_store(f"cassandra://{cassandra_hosts}/claimant_ct_{secrets.token_hex(4)}?rf=1")
    assert isinstance(st, CassandraStore)
    st.migrate()
    try:
        yield st
    finally:
        st.drop()
        st.close()


@pytest.fixture
def cstore(session_store: CassandraStore) -> Iterator[CassandraStore]:
    session_store.reset()
    fake = FakeClock(float(int(time.time())))
    session_store.clock = fake
    try:
        yield session_store
    finally:
        del session_store.clock


@pytest.fixture
def clock(cstore: CassandraStore) -> FakeClock:
    assert isinstance(cstore.clock, FakeClock)
    return cstore.clock

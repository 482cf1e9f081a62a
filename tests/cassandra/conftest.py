"""Fixtures of the Cassandra backend's own tests: ``cstore``, the session
keyspace (``cassandra_session_store``, tests/conftest.py) emptied, with a clock
the test moves."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from claimant.store import Store
from claimant.store.cassandra import CassandraStore


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def cstore(cassandra_session_store: Store) -> Iterator[CassandraStore]:
    session_store = cassandra_session_store
    assert isinstance(session_store, CassandraStore)
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

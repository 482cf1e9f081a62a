"""Stores for the simulator runs (tests/conftest.py): ``store`` a SQLite file,
``cassandra_store`` the Cassandra session store (skipped unless
CLAIMANT_TEST_CASSANDRA names a node)."""

from __future__ import annotations

import pytest

from claimant.store import Store


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    return sqlite_store


# The session keyspace, not reset here: each simulator run wipes the store.
@pytest.fixture
def cassandra_store(cassandra_session_store: Store) -> Store:
    return cassandra_session_store

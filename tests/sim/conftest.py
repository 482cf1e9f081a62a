"""A Cassandra store for the one simulator run on it (skipped unless
CLAIMANT_TEST_CASSANDRA names a node, as in tests/store)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import pytest

from claimant.store import Store, open_store

CASSANDRA_ENV = "CLAIMANT_TEST_CASSANDRA"


# One keyspace per session: schema changes are slow; each run wipes the store.
@pytest.fixture(scope="session")
def cassandra_store() -> Iterator[Store]:
    hosts = os.environ.get(CASSANDRA_ENV, "").strip()
    if not hosts:
        pytest.skip(f"Cassandra backend not tested: set {CASSANDRA_ENV}=host[,host...] to run it")
    st = open_store(f"cassandra://{hosts}/claimant_sim_{secrets.token_hex(4)}?rf=1")
    try:
        st.migrate()
        yield st
    finally:
        with contextlib.suppress(Exception):
            st.drop()
        st.close()

"""``store``: a real SQLite store in a temporary file (tests/conftest.py)."""

from __future__ import annotations

import pytest

from claimant.store import Store


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    return sqlite_store

"""Fixtures of the scheduler tests: ``store`` is a real SQLite store in a
temporary file; ``any_store`` (tests/conftest.py) runs a test on every
backend."""

from __future__ import annotations

import pytest

from claimant.store import Store


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    return sqlite_store

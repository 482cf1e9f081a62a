"""Fixtures of the store conformance suite: ``store`` runs every test once per
backend (tests/conftest.py); ``clock`` lets a test move time forward instead
of sleeping."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from claimant.store import Store

from .builders import FakeClock


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


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

"""Fixtures of the scheduler tests: a real SQLite store in a temporary file."""

from __future__ import annotations

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

"""Fixtures of the importer tests: a Placement 16 database made by Placement
itself (``data/placement16.sql``, see its header), loaded into a SQLite file;
the store fixtures of the conformance suite (every backend)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.store.conftest import cassandra_session_store, store  # noqa: F401

DUMP = Path(__file__).parent / "data" / "placement16.sql"


@pytest.fixture
def placement_db(tmp_path: Path) -> Path:
    path = tmp_path / "placement.db"
    conn = sqlite3.connect(path)
    conn.executescript(DUMP.read_text())
    conn.close()
    return path


@pytest.fixture
def placement_url(placement_db: Path) -> str:
    return "sqlite:///" + str(placement_db)

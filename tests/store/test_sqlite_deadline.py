"""Issue 16 on SQLite: a statement still running at the request's deadline is
interrupted (the progress handler), mapped to DeadlineExceeded without driver
text, and a write transaction it was part of rolls back whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from claimant.model import deadline
from claimant.model.errors import DeadlineExceeded
from claimant.store.sqlite import SQLiteStore

# Seconds of work for SQLite, unless interrupted: 3e7 rows of a recursive CTE.
SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000000) "
SLOW_COUNT = SLOW + "SELECT count(*) FROM c"


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    st = SQLiteStore(str(tmp_path / "claimant.db"))
    st.migrate()
    try:
        yield st
    finally:
        st.close()


def test_a_long_query_is_interrupted_at_the_deadline(sqlite_store: SQLiteStore) -> None:
    with (
        deadline.deadline(0.2, "GET /slow"),
        pytest.raises(DeadlineExceeded) as err,
        sqlite_store._read() as conn,
    ):
        conn.execute(SLOW_COUNT).fetchone()
    assert err.value.details["reason"] == "deadline"
    assert "interrupt" not in err.value.message
    assert "sqlite" not in err.value.message.lower()
    # The connection is fine afterwards.
    assert sqlite_store.list_providers() == []


def test_an_interrupted_write_rolls_back_whole(sqlite_store: SQLiteStore) -> None:
    with (
        deadline.deadline(0.2, "PUT /slow") as d,
        pytest.raises(DeadlineExceeded),
        sqlite_store._write() as conn,
    ):
        conn.execute("INSERT INTO meta(key, value) VALUES ('half', 'written')")
        conn.execute(SLOW_COUNT).fetchone()
    assert d is not None and d.tripped is not None
    with sqlite_store._read() as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'half'").fetchone() is None


def test_a_cancelled_deadline_interrupts_too(sqlite_store: SQLiteStore) -> None:
    with deadline.deadline(60, "GET /slow") as d, pytest.raises(DeadlineExceeded) as err:
        assert d is not None
        d.cancel("client disconnected")
        with sqlite_store._read() as conn:
            conn.execute(SLOW_COUNT).fetchone()
    assert err.value.details["reason"] == "cancelled"

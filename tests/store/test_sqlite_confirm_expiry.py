"""SQLite decides a confirm on the clock read *after* it holds the write lock
(issue 8, scenario 4).

Another connection (another process, in production) holds the write lock
while the claim's expiry passes; the confirm that was waiting for the lock
must then find the claim expired. Ordering is made deterministic with the
waiting connection's statement trace: the clock moves only once the confirm
is blocked on ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from claimant.model import ClaimNotActive, ClaimStatus
from claimant.store.sqlite import SQLiteStore

from .builders import FakeClock, make_provider, take


def test_confirm_after_waiting_for_the_lock_sees_the_expiry(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "expiry.db"))
    store.migrate()
    clock = FakeClock(1_000_000.0)
    store.clock = clock
    p = make_provider(store)
    claim = take(store, p, ttl=10)

    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the other writer
    waiting = threading.Event()
    outcome: list[object] = []

    def confirm() -> None:
        conn = store._conn()  # this thread's connection: trace it
        conn.set_trace_callback(lambda sql: waiting.set() if sql == "BEGIN IMMEDIATE" else None)
        try:
            outcome.append(store.confirm_claim(claim.uuid))
        except Exception as exc:
            outcome.append(exc)
        finally:
            conn.set_trace_callback(None)

    t = threading.Thread(target=confirm)
    t.start()
    try:
        assert waiting.wait(30), "the confirm never reached BEGIN IMMEDIATE"
        clock.advance(11)  # expires while the confirm waits for the lock
    finally:
        holder.execute("COMMIT")
        holder.close()
    t.join(30)
    assert len(outcome) == 1
    assert isinstance(outcome[0], ClaimNotActive), outcome[0]
    with pytest.raises(ClaimNotActive):
        store.confirm_claim(claim.uuid)
    assert store.list_claims(status=ClaimStatus.CONFIRMED) == []
    store.close()

"""SQLite keeps the newest EVENTS_PER_SUBJECT events of each subject (issue 11)."""

from __future__ import annotations

from pathlib import Path

from claimant.model import new_uuid
from claimant.model.events import EVENTS_PER_SUBJECT, Event, Subject
from claimant.store import open_store


def test_events_capped_per_subject(tmp_path: Path) -> None:
    store = open_store("sqlite:///" + str(tmp_path / "c.db").lstrip("/"))
    store.migrate()
    try:
        busy, quiet = new_uuid(), new_uuid()
        store.add_events([Event(Subject.PROVIDER, quiet, 1.0, "only")])
        n = EVENTS_PER_SUBJECT + 30
        for i in range(0, n, 10):
            store.add_events(
                [Event(Subject.PROVIDER, busy, float(j), f"e{j}") for j in range(i, i + 10)]
            )
        kept = store.list_events(Subject.PROVIDER, busy, limit=10 * n)
        assert len(kept) == EVENTS_PER_SUBJECT
        assert kept[0].event == f"e{n - EVENTS_PER_SUBJECT}"
        assert kept[-1].event == f"e{n - 1}"
        assert [e.event for e in store.list_events(Subject.PROVIDER, quiet)] == ["only"]
    finally:
        store.close()

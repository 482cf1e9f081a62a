"""Events on the SQLite store (the ``events`` table, schema migration 2).

Written in the transaction of the change they record, so an event exists
exactly when its change committed. Capped per subject at
``EVENTS_PER_SUBJECT`` (the oldest go on insert): a cap, not a TTL, because
trimming one subject is one index range delete here, and a quiet provider
keeps its last story however old it is.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from claimant.model import Claim
from claimant.model.events import EVENTS_PER_SUBJECT, Event, Subject, claim_events

if TYPE_CHECKING:
    from claimant.store.sqlite import SQLiteStore

_LEDGER = (
    "SELECT l.uuid, p.uuid, l.consumer_uuid, l.request_uuid, l.amounts, l.project_id"
    " FROM ledger l JOIN providers p ON p.id = l.provider_id"
)


def insert(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    """Insert inside the caller's write transaction, then trim each subject."""
    if not events:
        return
    conn.executemany(
        "INSERT INTO events (subject, subject_id, at, event, details) VALUES (?, ?, ?, ?, ?)",
        [
            (e.subject.value, e.subject_id, e.at, e.event, json.dumps(e.details, sort_keys=True))
            for e in events
        ],
    )
    for subject, subject_id in {(e.subject.value, e.subject_id) for e in events}:
        conn.execute(
            "DELETE FROM events WHERE subject = ? AND subject_id = ? AND id <= ("
            " SELECT id FROM events WHERE subject = ? AND subject_id = ?"
            " ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (subject, subject_id, subject, subject_id, EVENTS_PER_SUBJECT),
        )


def _claims(conn: sqlite3.Connection, where: str, params: tuple[object, ...]) -> list[Claim]:
    return [
        Claim(
            uuid=r[0],
            provider_uuid=r[1],
            consumer_uuid=r[2],
            request_uuid=r[3],
            amounts={rc: -n for rc, n in json.loads(r[4]).items()},
            project_id=r[5],
        )
        for r in conn.execute(f"{_LEDGER} WHERE {where}", params)
    ]


def ledger_step(conn: sqlite3.Connection, claim_uuid: str, event: str, now: float) -> None:
    """Record a step of one ledger entry (call it before a delete)."""
    for c in _claims(conn, "l.uuid = ?", (claim_uuid,)):
        insert(conn, claim_events(c, event, now))


def expiring(conn: sqlite3.Connection, now: float) -> int:
    """Record the claims a sweep at ``now`` is about to delete; how many."""
    claims = _claims(conn, "l.status = 'claimed' AND l.expires_at <= ?", (now,))
    for c in claims:
        insert(conn, claim_events(c, "expired", now))
    return len(claims)


def add_events(store: SQLiteStore, events: Sequence[Event]) -> None:
    if events:
        store._group(lambda conn: insert(conn, events))


def list_events(
    store: SQLiteStore, subject: Subject, subject_id: str, limit: int = 100
) -> list[Event]:
    rows = store._select(
        "SELECT at, event, details FROM events WHERE subject = ? AND subject_id = ?"
        " ORDER BY id DESC LIMIT ?",
        (Subject(subject).value, subject_id, int(limit)),
    )
    return [
        Event(Subject(subject), subject_id, r[0], r[1], json.loads(r[2])) for r in reversed(rows)
    ]

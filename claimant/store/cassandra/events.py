"""Events on the Cassandra store: one partition per subject, newest first.

Bounded by a TTL (``EVENT_TTL``, the table's default_time_to_live), not by a
count: a cap would need a read before every write, and these writes ride on
the claim path. Reads take the newest ``limit`` rows of one partition.

Written after the change they record has been applied (a plain write, not
part of the change's Paxos round): an event that cannot be written is logged
and dropped, never turned into a failure of a change that happened.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from claimant.model import ClaimantError
from claimant.model.events import EVENT_TTL, Event, Subject

if TYPE_CHECKING:
    from claimant.store.cassandra.statements import Statements

log = logging.getLogger("claimant.store.events")

TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS {ks}.events (subject text, subject_id text, at double,"
    " id timeuuid, event text, details text, PRIMARY KEY ((subject, subject_id), at, id))"
    " WITH CLUSTERING ORDER BY (at DESC, id DESC)"
    f" AND default_time_to_live = {EVENT_TTL}"
)

INSERT: Final = (
    "INSERT INTO events (subject, subject_id, at, id, event, details) VALUES (?, ?, ?, now(), ?, ?)"
)
SELECT: Final = "SELECT at, event, details FROM events WHERE subject = ? AND subject_id = ? LIMIT ?"


def add_events(store: Statements, events: Sequence[Event]) -> None:
    if not events:
        return
    params = [
        [e.subject.value, e.subject_id, e.at, e.event, json.dumps(e.details, sort_keys=True)]
        for e in events
    ]
    try:
        store._run_many(INSERT, params)
    except ClaimantError as exc:
        log.warning("dropped %d event(s) (%s): %s", len(events), events[0].event, exc.message)


def list_events(
    store: Statements, subject: Subject, subject_id: str, limit: int = 100
) -> list[Event]:
    rows = store._run(SELECT, [Subject(subject).value, subject_id, int(limit)])
    return [
        Event(Subject(subject), subject_id, r.at, r.event, json.loads(r.details))
        for r in reversed(rows)
    ]

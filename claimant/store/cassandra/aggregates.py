"""Aggregate names on the Cassandra store (schema V6, V7).

Two lookup tables, each written only by LWT (as ``provider_names``):
``aggregate_names`` (name -> uuid) makes names unique, ``aggregate_uuids``
(uuid -> name) gives a uuid at most one name. Membership stays on the
providers, keyed by uuid, and is never touched here.

No LWT spans both tables, so a crash or timeout can leave one *dangling
half* (a row whose other half does not point back). It heals itself; the
argument (also in docs/cassandra.md):

create is three LWTs, each under a per-attempt id (``attempt``):
  1. name row ``(uuid, attempt, pending=true) IF NOT EXISTS``
  2. uuid row ``(name, attempt) IF NOT EXISTS``
  3. ``SET pending = false IF attempt = mine AND pending = true`` -- the commit.
A pair is visible only once 3 applies, so a crash before it leaves nothing
visible, only dangling halves. A pending name row may be taken over (its
owner's step 3 then fails and it reports AlreadyExists, leaving its uuid row
as a dangling half or as the taker's, if the same uuid).
A uuid row may be taken over only if its name row does not point back, after
deleting a pending name row that does, so a committed name row always has
its uuid row and a live pair is never broken. A bare ``IF uuid = <seen>``
takeover would not do: it cannot see the other partition, so it could break
a pair its live owner completed just after the takeover's read.

delete drops the name row first (the pair stops being visible), then the
uuid row; a crash between leaves a dangling uuid row that the next create
of that uuid takes over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from claimant.model import AlreadyExists, new_uuid
from claimant.store.base import (
    AggregateName,
    aggregate_key,
    aggregate_not_found,
    check_aggregate_name,
)

if TYPE_CHECKING:
    from claimant.store.cassandra.store import CassandraStore

MIGRATION: Final[list[str]] = [
    "CREATE TABLE IF NOT EXISTS {ks}.aggregate_names"
    " (name text PRIMARY KEY, uuid text, created_at double)",
    "CREATE TABLE IF NOT EXISTS {ks}.aggregate_uuids (uuid text PRIMARY KEY, name text)",
]
# V6 rows have no attempt and pending null: committed (V6 wrote both halves).
MIGRATION_V7: Final[list[str]] = [
    "ALTER TABLE {ks}.aggregate_names ADD IF NOT EXISTS (attempt text, pending boolean)",
    "ALTER TABLE {ks}.aggregate_uuids ADD IF NOT EXISTS attempt text",
]
TABLES: Final = ("aggregate_names", "aggregate_uuids")

_RESERVE_NAME: Final = (
    "INSERT INTO aggregate_names (name, uuid, created_at, attempt, pending)"
    " VALUES (?, ?, ?, ?, true) IF NOT EXISTS"
)
_TAKE_NAME: Final = (
    "UPDATE aggregate_names SET uuid = ?, created_at = ?, attempt = ?"
    " WHERE name = ? IF attempt = ? AND pending = true"
)
_COMMIT_NAME: Final = (
    "UPDATE aggregate_names SET pending = false WHERE name = ? IF attempt = ? AND pending = true"
)
_DROP_PENDING_NAME: Final = (
    "DELETE FROM aggregate_names WHERE name = ? IF attempt = ? AND pending = true"
)
_FREE_NAME: Final = "DELETE FROM aggregate_names WHERE name = ? IF uuid = ?"
_RESERVE_UUID: Final = (
    "INSERT INTO aggregate_uuids (uuid, name, attempt) VALUES (?, ?, ?) IF NOT EXISTS"
)
_TAKE_UUID: Final = "UPDATE aggregate_uuids SET name = ?, attempt = ? WHERE uuid = ? IF attempt = ?"
_FREE_UUID: Final = "DELETE FROM aggregate_uuids WHERE uuid = ? IF name = ?"
_BY_NAME: Final = (
    "SELECT name, uuid, created_at, attempt, pending FROM aggregate_names WHERE name = ?"
)
_BY_UUID: Final = "SELECT name, attempt FROM aggregate_uuids WHERE uuid = ?"
_ALL: Final = "SELECT name, uuid, created_at, pending FROM aggregate_names"


def _committed(row: Any) -> bool:
    return row is not None and not row.pending


def _one(store: CassandraStore, cql: str, key: str) -> Any:
    rows = store._run(cql, [key], serial=True)
    return rows[0] if rows else None


def create(store: CassandraStore, name: str, uuid: str | None) -> AggregateName:
    check_aggregate_name(name)
    agg = AggregateName(name, uuid or new_uuid(), store.clock())
    mine = new_uuid()
    # 1. the name: new, or a pending one taken over (a crashed or slower create)
    if not _reserve_name(store, agg, mine):
        raise AlreadyExists(f"aggregate name {name!r} is taken", field="name")
    # 2. the uuid: new, or a dangling one taken over
    if not _reserve_uuid(store, agg, mine):
        store._lwt(_DROP_PENDING_NAME, [agg.name, mine])
        raise AlreadyExists(f"aggregate uuid {agg.uuid!r} is taken", field="uuid")
    # 3. the commit; it fails only if another create took the pending name over
    applied, _ = store._lwt(_COMMIT_NAME, [agg.name, mine])
    if not applied:
        # Our uuid row is left as it is: if the taker named the same uuid it
        # is the taker's pair's half now, else it is a dangling half that
        # the next create of that uuid takes over. Dropping it could break
        # the taker's pair once committed.
        raise AlreadyExists(f"aggregate name {name!r} was taken meanwhile", field="name")
    return agg


# A takeover fails when the row changed since it was read (another taker won,
# or a loser dropped its half); that row is read again, a few times, so a
# race of creators cannot leave every one of them refused.
_ROUNDS: Final = 8


def _reserve_name(store: CassandraStore, agg: AggregateName, mine: str) -> bool:
    for _ in range(_ROUNDS):
        applied, row = store._lwt(_RESERVE_NAME, [agg.name, agg.uuid, agg.created_at, mine])
        if applied:
            return True
        if _committed(row):
            return False
        applied, _ = store._lwt(_TAKE_NAME, [agg.uuid, agg.created_at, mine, agg.name, row.attempt])
        if applied:
            return True
    return False


def _reserve_uuid(store: CassandraStore, agg: AggregateName, mine: str) -> bool:
    for _ in range(_ROUNDS):
        applied, row = store._lwt(_RESERVE_UUID, [agg.uuid, agg.name, mine])
        if applied:
            return True
        if row.name != agg.name:
            other = _one(store, _BY_NAME, row.name)
            if other is not None and other.uuid == agg.uuid:
                if _committed(other):
                    return False  # a live pair
                # Its create is pending: stop its commit before taking the uuid.
                dropped, _ = store._lwt(_DROP_PENDING_NAME, [other.name, other.attempt])
                if not dropped:
                    continue
        # A dangling uuid row (or ours by name from an earlier attempt): take
        # it, under its attempt id so one taker wins.
        applied, _ = store._lwt(_TAKE_UUID, [agg.name, mine, agg.uuid, row.attempt])
        if applied:
            return True
    return False


def get(store: CassandraStore, ref: str) -> AggregateName:
    field, key = aggregate_key(ref)
    name = key
    if field == "uuid":
        rows = store._run(_BY_UUID, [key])
        if not rows:
            raise aggregate_not_found(ref)
        name = rows[0].name
    rows = store._run(_BY_NAME, [name])
    # Only a committed name row is visible; its uuid row points back.
    if not rows or rows[0].pending or (field == "uuid" and rows[0].uuid != key):
        raise aggregate_not_found(ref)
    return AggregateName(rows[0].name, rows[0].uuid, rows[0].created_at)


def list_all(store: CassandraStore) -> list[AggregateName]:
    rows = [r for r in store._run(_ALL) if not r.pending]
    return sorted((AggregateName(r.name, r.uuid, r.created_at) for r in rows), key=lambda a: a.name)


def delete(store: CassandraStore, ref: str) -> None:
    agg = get(store, ref)
    # Name row first: the pair stops being visible at once; a crash before the
    # uuid row goes leaves a dangling uuid row, which the next create heals.
    applied, _ = store._lwt(_FREE_NAME, [agg.name, agg.uuid])
    if not applied:
        raise aggregate_not_found(ref)
    store._lwt(_FREE_UUID, [agg.uuid, agg.name])

"""Aggregate names on the Cassandra store (schema V6).

Two lookup tables, each written only by LWT (as ``provider_names``):
``aggregate_names`` (name -> uuid) makes names unique by insert-if-not-exists,
``aggregate_uuids`` (uuid -> name) gives a uuid at most one name. Create takes
the name, then the uuid, and gives the name back if the uuid is taken; delete
drops the uuid row, then the name row. Membership stays on the providers,
keyed by uuid, and is never touched here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

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
TABLES: Final = ("aggregate_names", "aggregate_uuids")

_RESERVE_NAME: Final = (
    "INSERT INTO aggregate_names (name, uuid, created_at) VALUES (?, ?, ?) IF NOT EXISTS"
)
_FREE_NAME: Final = "DELETE FROM aggregate_names WHERE name = ? IF uuid = ?"
_RESERVE_UUID: Final = "INSERT INTO aggregate_uuids (uuid, name) VALUES (?, ?) IF NOT EXISTS"
_FREE_UUID: Final = "DELETE FROM aggregate_uuids WHERE uuid = ? IF name = ?"
_BY_NAME: Final = "SELECT name, uuid, created_at FROM aggregate_names WHERE name = ?"
_BY_UUID: Final = "SELECT name FROM aggregate_uuids WHERE uuid = ?"
_ALL: Final = "SELECT name, uuid, created_at FROM aggregate_names"


def create(store: CassandraStore, name: str, uuid: str | None) -> AggregateName:
    check_aggregate_name(name)
    agg = AggregateName(name, uuid or new_uuid(), store.clock())
    applied, row = store._lwt(_RESERVE_NAME, [agg.name, agg.uuid, agg.created_at])
    if not applied:
        raise AlreadyExists(f"aggregate name {name!r} is taken", field="name")
    applied, row = store._lwt(_RESERVE_UUID, [agg.uuid, agg.name])
    if not applied:
        store._lwt(_FREE_NAME, [agg.name, agg.uuid])
        raise AlreadyExists(f"aggregate uuid {agg.uuid!r} is taken (by {row.name!r})", field="uuid")
    return agg


def get(store: CassandraStore, ref: str) -> AggregateName:
    field, key = aggregate_key(ref)
    name = key
    if field == "uuid":
        rows = store._run(_BY_UUID, [key])
        if not rows:
            raise aggregate_not_found(ref)
        name = rows[0].name
    rows = store._run(_BY_NAME, [name])
    # A name row whose uuid differs is another create's, half done.
    if not rows or (field == "uuid" and rows[0].uuid != key):
        raise aggregate_not_found(ref)
    return AggregateName(rows[0].name, rows[0].uuid, rows[0].created_at)


def list_all(store: CassandraStore) -> list[AggregateName]:
    rows = store._run(_ALL)
    return sorted((AggregateName(r.name, r.uuid, r.created_at) for r in rows), key=lambda a: a.name)


def delete(store: CassandraStore, ref: str) -> None:
    agg = get(store, ref)
    store._lwt(_FREE_UUID, [agg.uuid, agg.name])
    applied, _ = store._lwt(_FREE_NAME, [agg.name, agg.uuid])
    if not applied:
        raise aggregate_not_found(ref)

"""Aggregate names on the SQLite store (the ``aggregate_names`` table, schema
migration 3). Membership stays in ``provider_aggregates``, keyed by uuid."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from claimant.model import AlreadyExists, new_uuid
from claimant.store.base import (
    AggregateName,
    aggregate_key,
    aggregate_not_found,
    check_aggregate_name,
)

if TYPE_CHECKING:
    from claimant.store.sqlite.connection import SQLiteBase

_COLUMNS = "SELECT name, uuid, created_at FROM aggregate_names"


def create(store: SQLiteBase, name: str, uuid: str | None) -> AggregateName:
    check_aggregate_name(name)
    agg = AggregateName(name, uuid or new_uuid(), store.clock())
    with store._write() as conn:
        for field, value in (("name", agg.name), ("uuid", agg.uuid)):
            taken = conn.execute(f"{_COLUMNS} WHERE {field} = ?", (value,)).fetchone()
            if taken is not None:
                raise AlreadyExists(
                    f"aggregate {field} {value!r} is taken (by {taken[0]!r})", field=field
                )
        conn.execute(
            "INSERT INTO aggregate_names VALUES (?, ?, ?)", (agg.name, agg.uuid, agg.created_at)
        )
    return agg


def _get(conn: sqlite3.Connection, ref: str) -> AggregateName:
    field, key = aggregate_key(ref)
    row = conn.execute(f"{_COLUMNS} WHERE {field} = ?", (key,)).fetchone()
    if row is None:
        raise aggregate_not_found(ref)
    return AggregateName(*row)


def get(store: SQLiteBase, ref: str) -> AggregateName:
    with store._read() as conn:
        return _get(conn, ref)


def list_all(store: SQLiteBase) -> list[AggregateName]:
    with store._read() as conn:
        return [AggregateName(*r) for r in conn.execute(f"{_COLUMNS} ORDER BY name")]


def delete(store: SQLiteBase, ref: str) -> None:
    with store._write() as conn:
        agg = _get(conn, ref)
        conn.execute("DELETE FROM aggregate_names WHERE name = ?", (agg.name,))

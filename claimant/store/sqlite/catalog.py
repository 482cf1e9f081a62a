"""Resource classes, traits, resource types and aggregate names on the
SQLite store: the catalog every provider refers to."""

from __future__ import annotations

import sqlite3

import orjson

from claimant.model import (
    BUILTIN_TYPES,
    AlreadyExists,
    InUse,
    InvalidInput,
    NotFound,
    ResourceClass,
    ResourceType,
)
from claimant.model.names import validate_custom_name
from claimant.store._common import (
    check_type_deletable,
    custom_type,
    type_from_json,
    type_taken,
    type_to_json,
)
from claimant.store.base import AggregateName
from claimant.store.sqlite import aggregates
from claimant.store.sqlite.connection import SQLiteBase


class CatalogMixin(SQLiteBase):
    # -- resource classes --------------------------------------------------
    def list_resource_classes(self) -> list[ResourceClass]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT name, discrete, standard FROM resource_classes ORDER BY name"
            ).fetchall()
        return [ResourceClass(n, bool(d), bool(s)) for n, d, s in rows]

    def get_resource_class(self, name: str) -> ResourceClass:
        row = self._one(
            "SELECT name, discrete, standard FROM resource_classes WHERE name = ?", (name,)
        )
        if row is None:
            raise NotFound(f"no resource class {name!r}", kind="resource_class", name=name)
        return ResourceClass(row[0], bool(row[1]), bool(row[2]))

    def create_resource_class(self, rc: ResourceClass) -> ResourceClass:
        validate_custom_name(rc.name)
        now = self.clock()
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO resource_classes VALUES (?, ?, 0, ?, ?)",
                    (rc.name, int(rc.discrete), now, now),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(
                    f"resource class {rc.name} already exists", name=rc.name
                ) from None
        return ResourceClass(rc.name, rc.discrete, False)

    def delete_resource_class(self, name: str) -> None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT standard FROM resource_classes WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no resource class {name!r}", kind="resource_class", name=name)
            if row[0]:
                raise InvalidInput(f"{name} is a standard resource class and cannot be deleted")
            if conn.execute("SELECT 1 FROM inventories WHERE rc = ? LIMIT 1", (name,)).fetchone():
                raise InUse(f"resource class {name} is in use by inventories", name=name)
            conn.execute("DELETE FROM resource_classes WHERE name = ?", (name,))

    # -- traits ------------------------------------------------------------
    def list_traits(self) -> list[str]:
        # One row, not one per trait: each row stepped releases the GIL.
        (packed,) = self._one(
            "SELECT json_group_array(name) FROM (SELECT name FROM traits ORDER BY name)"
        )
        names: list[str] = orjson.loads(packed)
        return names

    def create_trait(self, name: str) -> bool:
        validate_custom_name(name, "trait")
        now = self.clock()
        with self._write() as conn:
            cur = conn.execute("INSERT OR IGNORE INTO traits VALUES (?, 0, ?, ?)", (name, now, now))
            return cur.rowcount == 1

    def delete_trait(self, name: str) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT standard FROM traits WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFound(f"no trait {name!r}", kind="trait", name=name)
            if row[0]:
                raise InvalidInput(f"{name} is a standard trait and cannot be deleted")
            if conn.execute(
                "SELECT 1 FROM provider_traits WHERE trait = ? LIMIT 1", (name,)
            ).fetchone():
                raise InUse(f"trait {name} is in use by providers", name=name)
            conn.execute("DELETE FROM traits WHERE name = ?", (name,))

    def traits_in_use(self) -> set[str]:
        return {r[0] for r in self._select("SELECT DISTINCT trait FROM provider_traits")}

    # -- resource types ----------------------------------------------------
    def list_resource_types(self) -> list[ResourceType]:
        rows = self._select("SELECT body FROM resource_types ORDER BY name")
        return list(BUILTIN_TYPES.values()) + [type_from_json(r[0]) for r in rows]

    def get_resource_type(self, name: str) -> ResourceType:
        with self._read() as conn:
            return get_type(conn, name)

    def create_resource_type(self, rtype: ResourceType) -> ResourceType:
        custom = custom_type(rtype)
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO resource_types VALUES (?, ?, ?)",
                    (custom.name, type_to_json(custom), self.clock()),
                )
            except sqlite3.IntegrityError:
                raise type_taken(rtype.name) from None
        return custom

    def delete_resource_type(self, name: str) -> None:
        check_type_deletable(name)
        with self._write() as conn:
            get_type(conn, name)
            if conn.execute("SELECT 1 FROM providers WHERE type = ? LIMIT 1", (name,)).fetchone():
                raise InUse(f"resource type {name} is in use by providers", name=name)
            conn.execute("DELETE FROM resource_types WHERE name = ?", (name,))

    # -- aggregate names ---------------------------------------------------
    def create_aggregate(self, name: str, uuid: str | None = None) -> AggregateName:
        return aggregates.create(self, name, uuid)

    def get_aggregate(self, ref: str) -> AggregateName:
        return aggregates.get(self, ref)

    def list_aggregates(self) -> list[AggregateName]:
        return aggregates.list_all(self)

    def delete_aggregate(self, ref: str) -> None:
        aggregates.delete(self, ref)


def get_type(conn: sqlite3.Connection, name: str) -> ResourceType:
    if name in BUILTIN_TYPES:
        return BUILTIN_TYPES[name]
    row = conn.execute("SELECT body FROM resource_types WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFound(f"no resource type {name!r}", kind="resource_type", name=name)
    return type_from_json(row[0])

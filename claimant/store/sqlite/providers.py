"""Providers on the SQLite store: create, read, list, update, delete, and
their inventories, traits, aggregates and attributes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from claimant.model import (
    InUse,
    InvalidInput,
    Inventory,
    NotFound,
    Provider,
    ProviderUsage,
    Usage,
)
from claimant.model.events import DISABLED, ENABLED, Event, Subject
from claimant.store._common import provider_taken
from claimant.store.base import UNSET, ProviderFilter, Unset
from claimant.store.sqlite import conditions, events, ledger, reads
from claimant.store.sqlite.catalog import get_type
from claimant.store.sqlite.connection import SQLiteBase


class ProvidersMixin(SQLiteBase):
    # -- providers ---------------------------------------------------------
    def create_provider(self, provider: Provider) -> Provider:
        self.home_of(provider.cell)  # one cell: any other is unknown_cell
        now = self.clock()
        with self._write() as conn:
            rtype = get_type(conn, provider.type)
            attributes = rtype.validate_attributes(provider.attributes)
            parent_id = None
            root_id = None
            if provider.parent_uuid:
                parent = conn.execute(
                    "SELECT id, root_id FROM providers WHERE uuid = ?", (provider.parent_uuid,)
                ).fetchone()
                if parent is None:
                    raise NotFound(
                        f"parent provider {provider.parent_uuid} not found",
                        kind="provider",
                        uuid=provider.parent_uuid,
                    )
                parent_id, root_id = parent
            clash = conn.execute(
                "SELECT uuid, name FROM providers WHERE uuid = ? OR name = ?",
                (provider.uuid, provider.name),
            ).fetchone()
            if clash:
                what = "uuid" if clash[0] == provider.uuid else "name"
                value = provider.uuid if what == "uuid" else provider.name
                raise provider_taken(what, value)
            cur = conn.execute(
                "INSERT INTO providers (uuid, name, type, parent_id, root_id, enabled, generation,"
                " heartbeat_at, attributes, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 0, ?, 0, ?, ?, ?, ?)",
                (
                    provider.uuid,
                    provider.name,
                    provider.type,
                    parent_id,
                    int(provider.enabled),
                    provider.heartbeat_at,
                    json.dumps(attributes, sort_keys=True),
                    now,
                    now,
                ),
            )
            pid = int(cur.lastrowid or 0)
            conn.execute(
                "UPDATE providers SET root_id = ? WHERE id = ?",
                (root_id if root_id is not None else pid, pid),
            )
            write_attributes(conn, pid, attributes)
            replace_inventories(conn, pid, provider.inventories, check_usage=False)
            replace_traits(conn, pid, provider.traits)
            replace_aggregates(conn, pid, provider.aggregates)
            return reads.load_provider(conn, pid)

    def get_provider(self, uuid: str) -> Provider:
        with self._read() as conn:
            return reads.load_provider(conn, ledger.pid(conn, uuid))

    def list_providers(self, flt: ProviderFilter | None = None) -> list[Provider]:
        return [p for p, _ in self._list_rows(flt)]

    def list_usages(self, flt: ProviderFilter | None = None) -> list[ProviderUsage]:
        return [ProviderUsage(p, u) for p, u in self._list_rows(flt)]

    def _list_rows(self, flt: ProviderFilter | None) -> list[tuple[Provider, dict[str, Usage]]]:
        flt = flt or ProviderFilter()
        now = self.clock()
        where: list[str] = []
        params: list[Any] = []
        joins = ""
        if flt.uuid:
            where.append("p.uuid = ?")
            params.append(flt.uuid)
        if flt.name:
            where.append("p.name = ?")
            params.append(flt.name)
        if flt.in_tree:
            where.append("p.root_id = (SELECT root_id FROM providers WHERE uuid = ?)")
            params.append(flt.in_tree)
        if flt.group is not None:
            joins, jparams = conditions.resource_joins(flt.group.resources)
            params = jparams + params
            gw, gp = conditions.group_conditions(flt.group, None)
            where += gw
            params += gp
            if flt.group.required_traits:
                # Lets SQLite start from the trait's providers (a rowid IN
                # list) instead of probing every provider's traits: the
                # Placement API asks for sharing providers on every request.
                where.append("p.id IN (SELECT provider_id FROM provider_traits WHERE trait = ?)")
                params.append(min(flt.group.required_traits))
        sql = "SELECT p.id FROM providers p" + joins
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY p.id"
        self._sweep_if_due(now)
        with self._read() as conn:
            ids = [r[0] for r in conn.execute(sql, params)]
            return reads.load_rows(conn, ids)

    def update_provider(
        self,
        uuid: str,
        expected_generation: int | None,
        *,
        name: str | Unset = UNSET,
        parent_uuid: str | Unset | None = UNSET,
        attributes: dict[str, Any] | Unset = UNSET,
        enabled: bool | Unset = UNSET,
    ) -> Provider:
        now = self.clock()
        with self._write() as conn:
            pid, _ = ledger.check_generation(conn, uuid, expected_generation)
            self._rename_reparent(conn, pid, name, parent_uuid)
            if not isinstance(attributes, Unset):
                ptype = conn.execute("SELECT type FROM providers WHERE id = ?", (pid,)).fetchone()
                checked = get_type(conn, ptype[0]).validate_attributes(attributes)
                conn.execute(
                    "UPDATE providers SET attributes = ? WHERE id = ?",
                    (json.dumps(checked, sort_keys=True), pid),
                )
                write_attributes(conn, pid, checked)
            if not isinstance(enabled, Unset):
                was = conn.execute("SELECT enabled FROM providers WHERE id = ?", (pid,)).fetchone()
                conn.execute("UPDATE providers SET enabled = ? WHERE id = ?", (int(enabled), pid))
                if bool(was[0]) != bool(enabled):
                    event = Event(Subject.PROVIDER, uuid, now, ENABLED if enabled else DISABLED)
                    events.insert(conn, [event])
            ledger.bump(conn, pid, now)
            return reads.load_provider(conn, pid)

    def _rename_reparent(
        self,
        conn: sqlite3.Connection,
        pid: int,
        name: str | Unset,
        parent_uuid: str | Unset | None,
    ) -> None:
        if not isinstance(name, Unset):
            clash = conn.execute(
                "SELECT 1 FROM providers WHERE name = ? AND id != ?", (name, pid)
            ).fetchone()
            if clash:
                raise provider_taken("name", name)
            conn.execute("UPDATE providers SET name = ? WHERE id = ?", (name, pid))
        if not isinstance(parent_uuid, Unset):
            self._reparent(conn, pid, parent_uuid)

    def _reparent(self, conn: sqlite3.Connection, pid: int, parent_uuid: str | None) -> None:
        if parent_uuid is None:
            new_parent, new_root = None, pid
        else:
            row = conn.execute(
                "SELECT id, root_id FROM providers WHERE uuid = ?", (parent_uuid,)
            ).fetchone()
            if row is None:
                raise NotFound(f"parent provider {parent_uuid} not found", kind="provider")
            new_parent, new_root = row
            # Walk up from the new parent: meeting ourselves means a cycle.
            cursor: int | None = new_parent
            while cursor is not None:
                if cursor == pid:
                    raise InvalidInput("a provider cannot be its own ancestor", field="parent")
                cursor = conn.execute(
                    "SELECT parent_id FROM providers WHERE id = ?", (cursor,)
                ).fetchone()[0]
        conn.execute("UPDATE providers SET parent_id = ? WHERE id = ?", (new_parent, pid))
        # The whole subtree moves to the new root.
        conn.execute(
            "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL"
            " SELECT p.id FROM providers p JOIN sub ON p.parent_id = sub.id)"
            " UPDATE providers SET root_id = ? WHERE id IN (SELECT id FROM sub)",
            (pid, new_root),
        )

    def delete_provider(self, uuid: str) -> None:
        now = self.clock()
        with self._write() as conn:
            pid = ledger.pid(conn, uuid)
            if conn.execute(
                "SELECT 1 FROM providers WHERE parent_id = ? LIMIT 1", (pid,)
            ).fetchone():
                raise InUse(f"provider {uuid} has children", uuid=uuid)
            if conn.execute(
                f"SELECT 1 FROM ledger l WHERE l.provider_id = ? AND {ledger.LIVE} LIMIT 1",
                (pid, now),
            ).fetchone():
                raise InUse(f"provider {uuid} has claims or allocations", uuid=uuid)
            conn.execute("DELETE FROM ledger WHERE provider_id = ?", (pid,))
            conn.execute("DELETE FROM providers WHERE id = ?", (pid,))

    def set_inventories(
        self,
        uuid: str,
        expected_generation: int | None,
        inventories: dict[str, Inventory],
        *,
        allow_overcapacity: bool = False,
    ) -> Provider:
        now = self.clock()
        with self._write() as conn:
            self._sweep(conn, now)
            pid, _ = ledger.check_generation(conn, uuid, expected_generation)
            replace_inventories(
                conn, pid, inventories, check_usage=True, allow_overcapacity=allow_overcapacity
            )
            ledger.bump(conn, pid, now)
            return reads.load_provider(conn, pid)

    def set_traits(
        self, uuid: str, expected_generation: int | None, traits: Iterable[str]
    ) -> Provider:
        now = self.clock()
        with self._write() as conn:
            pid, _ = ledger.check_generation(conn, uuid, expected_generation)
            replace_traits(conn, pid, traits)
            ledger.bump(conn, pid, now)
            return reads.load_provider(conn, pid)

    def set_aggregates(
        self, uuid: str, expected_generation: int | None, aggregates: Iterable[str]
    ) -> Provider:
        now = self.clock()
        with self._write() as conn:
            pid, _ = ledger.check_generation(conn, uuid, expected_generation)
            replace_aggregates(conn, pid, aggregates)
            ledger.bump(conn, pid, now)
            return reads.load_provider(conn, pid)

    def heartbeat(self, uuid: str, at: float | None = None) -> None:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE providers SET heartbeat_at = ? WHERE uuid = ?",
                (self.clock() if at is None else at, uuid),
            )
            if cur.rowcount == 0:
                raise NotFound(f"provider {uuid} not found", kind="provider", uuid=uuid)

    # -- Placement compatibility ---------------------------------------------
    def update_provider_quietly(
        self,
        uuid: str,
        *,
        name: str | Unset = UNSET,
        parent_uuid: str | Unset | None = UNSET,
    ) -> Provider:
        now = self.clock()
        with self._write() as conn:
            pid = ledger.pid(conn, uuid)
            self._rename_reparent(conn, pid, name, parent_uuid)
            conn.execute("UPDATE providers SET updated_at = ? WHERE id = ?", (now, pid))
            return reads.load_provider(conn, pid)

    def has_nested_providers(self) -> bool:
        row = self._one("SELECT 1 FROM providers WHERE parent_id IS NOT NULL LIMIT 1")
        return row is not None


def write_attributes(conn: sqlite3.Connection, pid: int, attributes: dict[str, Any]) -> None:
    conn.execute("DELETE FROM provider_attributes WHERE provider_id = ?", (pid,))
    conn.executemany(
        "INSERT INTO provider_attributes VALUES (?, ?, ?, ?)",
        [
            (pid, k, None, v) if isinstance(v, str) else (pid, k, float(v), None)
            for k, v in attributes.items()
        ],
    )


def replace_inventories(
    conn: sqlite3.Connection,
    pid: int,
    inventories: dict[str, Inventory],
    *,
    check_usage: bool,
    allow_overcapacity: bool = False,
) -> None:
    classes = {
        r[0]: bool(r[1])
        for r in conn.execute("SELECT name, discrete FROM resource_classes").fetchall()
    }
    for rc, inv in inventories.items():
        if rc != inv.resource_class:
            raise InvalidInput(f"inventory keyed {rc} is for {inv.resource_class}")
        if rc not in classes:
            raise NotFound(f"no resource class {rc!r}", kind="resource_class", name=rc)
        inv.validate(discrete=classes[rc])
    used = {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT rc, used FROM inventories WHERE provider_id = ?", (pid,)
        ).fetchall()
    }
    if check_usage:
        for rc, amount in used.items():
            if amount <= 0:
                continue
            if rc not in inventories:
                raise InUse(f"cannot remove {rc} inventory: {amount} in use", resource_class=rc)
            if not allow_overcapacity and inventories[rc].capacity < amount:
                raise InUse(
                    f"{rc}: new capacity {inventories[rc].capacity} is below the {amount} in use",
                    resource_class=rc,
                )
    conn.execute("DELETE FROM inventories WHERE provider_id = ?", (pid,))
    conn.executemany(
        "INSERT INTO inventories (provider_id, rc, total, reserved, min_unit, max_unit,"
        " step_size, allocation_ratio, capacity, used) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [
            (
                pid,
                rc,
                inv.total,
                inv.reserved,
                inv.min_unit,
                inv.max_unit,
                inv.step_size,
                float(inv.allocation_ratio),
                inv.capacity,
                max(used.get(rc, 0), 0),
            )
            for rc, inv in inventories.items()
        ],
    )


def replace_traits(conn: sqlite3.Connection, pid: int, traits: Iterable[str]) -> None:
    wanted = sorted(set(traits))
    if wanted:
        marks = ",".join("?" * len(wanted))
        known = {
            r[0] for r in conn.execute(f"SELECT name FROM traits WHERE name IN ({marks})", wanted)
        }
        missing = [t for t in wanted if t not in known]
        if missing:
            raise NotFound(f"no such traits: {', '.join(missing)}", kind="trait", names=missing)
    conn.execute("DELETE FROM provider_traits WHERE provider_id = ?", (pid,))
    conn.executemany("INSERT INTO provider_traits VALUES (?, ?)", [(pid, t) for t in wanted])


def replace_aggregates(conn: sqlite3.Connection, pid: int, aggregates: Iterable[str]) -> None:
    wanted = sorted(set(aggregates))
    for agg in wanted:
        if not isinstance(agg, str) or not agg or len(agg) > 255:
            raise InvalidInput(f"aggregate {agg!r} must be a non-empty string")
    conn.execute("DELETE FROM provider_aggregates WHERE provider_id = ?", (pid,))
    conn.executemany("INSERT INTO provider_aggregates VALUES (?, ?)", [(pid, a) for a in wanted])

"""Bulk import into the SQLite store (``Store.import_providers`` and
``Store.import_allocations``): state written as given, one write
transaction per call, so a batch is all or nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from claimant.model import (
    AlreadyExists,
    Claim,
    ClaimStatus,
    InvalidInput,
    NotFound,
    Provider,
)
from claimant.store.base import ImportedConsumer
from claimant.store.importing import check_amounts, imported_entry_uuid
from claimant.store.sqlite import ledger
from claimant.store.sqlite.catalog import get_type
from claimant.store.sqlite.providers import (
    replace_aggregates,
    replace_inventories,
    replace_traits,
    write_attributes,
)

if TYPE_CHECKING:
    from claimant.store.sqlite import SQLiteStore


def import_providers(store: SQLiteStore, providers: Sequence[Provider]) -> int:
    written = 0
    with store._write() as conn:
        for p in providers:
            if conn.execute("SELECT 1 FROM providers WHERE uuid = ?", (p.uuid,)).fetchone():
                continue
            attributes = get_type(conn, p.type).validate_attributes(p.attributes)
            if conn.execute("SELECT 1 FROM providers WHERE name = ?", (p.name,)).fetchone():
                raise AlreadyExists(f"a provider named {p.name!r} already exists", field="name")
            parent_id = root_id = None
            if p.parent_uuid:
                row = conn.execute(
                    "SELECT id, root_id FROM providers WHERE uuid = ?", (p.parent_uuid,)
                ).fetchone()
                if row is None:
                    raise NotFound(
                        f"parent provider {p.parent_uuid} of {p.uuid} is not imported yet",
                        kind="provider",
                        uuid=p.parent_uuid,
                    )
                parent_id, root_id = row
            cur = conn.execute(
                "INSERT INTO providers (uuid, name, type, parent_id, root_id, enabled, generation,"
                " heartbeat_at, attributes, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
                (
                    p.uuid,
                    p.name,
                    p.type,
                    parent_id,
                    int(p.enabled),
                    p.generation,
                    p.heartbeat_at,
                    json.dumps(attributes, sort_keys=True),
                    p.created_at,
                    p.updated_at or p.created_at,
                ),
            )
            pid = int(cur.lastrowid or 0)
            conn.execute(
                "UPDATE providers SET root_id = ? WHERE id = ?",
                (root_id if root_id is not None else pid, pid),
            )
            write_attributes(conn, pid, attributes)
            replace_inventories(conn, pid, p.inventories, check_usage=False)
            replace_traits(conn, pid, p.traits)
            replace_aggregates(conn, pid, p.aggregates)
            written += 1
    return written


def import_allocations(store: SQLiteStore, consumers: Sequence[ImportedConsumer]) -> int:
    written = 0
    with store._write() as conn:
        for ic in consumers:
            c = ic.consumer
            if conn.execute("SELECT 1 FROM consumers WHERE uuid = ?", (c.uuid,)).fetchone():
                continue
            for puuid, amounts in sorted(ic.allocations.items()):
                check_amounts(c.uuid, puuid, amounts)
                pid = ledger.pid(conn, puuid)
                have = ledger.inventories(conn, pid)
                missing = sorted(set(amounts) - set(have))
                if missing:
                    raise InvalidInput(
                        f"consumer {c.uuid} holds {', '.join(missing)} on provider {puuid},"
                        " which has no inventory of it",
                        uuid=puuid,
                    )
                ledger.insert_ledger(
                    conn,
                    pid,
                    Claim(
                        uuid=imported_entry_uuid(puuid, c.uuid),
                        provider_uuid=puuid,
                        consumer_uuid=c.uuid,
                        amounts=dict(amounts),
                        status=ClaimStatus.CONFIRMED,
                        project_id=c.project_id,
                        user_id=c.user_id,
                        created_at=ic.created_at,
                    ),
                )
                ledger.add_used(conn, pid, amounts)
            conn.execute(
                "INSERT INTO consumers VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    c.uuid,
                    c.project_id,
                    c.user_id,
                    c.consumer_type or None,
                    c.generation,
                    ic.created_at,
                    ic.created_at,
                ),
            )
            written += 1
    return written

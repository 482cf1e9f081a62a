"""The ledger and provider rows every section of the SQLite store writes:
ids, generations, ledger entries and the denormalised ``used`` column. Plain
functions of a connection inside the caller's transaction."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import orjson

from claimant.model import (
    Claim,
    ClaimStatus,
    Inventory,
    NotFound,
)
from claimant.store._common import generation_conflict
from claimant.store.sqlite import events

LIVE = "(l.status = 'confirmed' OR l.expires_at > ?)"
# Any claim past its expiry (one lookup in the partial index ledger_expiry;
# confirmed entries have no expiry).
DUE = "SELECT 1 FROM ledger WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT 1"
# How long a released or expired claim is remembered (for ClaimNotActive).
TOMBSTONE_TTL = 86400.0


def pid(conn: sqlite3.Connection, uuid: str) -> int:
    row = conn.execute("SELECT id FROM providers WHERE uuid = ?", (uuid,)).fetchone()
    if row is None:
        raise NotFound(f"provider {uuid} not found", kind="provider", uuid=uuid)
    return int(row[0])


def check_generation(conn: sqlite3.Connection, uuid: str, expected: int | None) -> tuple[int, int]:
    row = conn.execute("SELECT id, generation FROM providers WHERE uuid = ?", (uuid,)).fetchone()
    return generation_matches(row, uuid, expected), int(row[1])


def generation_matches(row: Any, uuid: str, expected: int | None) -> int:
    """The provider id of a ``(id, generation, ...)`` row, unless the row is
    missing or at another generation than ``expected``."""
    if row is None:
        raise NotFound(f"provider {uuid} not found", kind="provider", uuid=uuid)
    if expected is not None and row[1] != expected:
        raise generation_conflict(uuid, row[1], expected)
    return int(row[0])


def bump(conn: sqlite3.Connection, pid: int, now: float) -> None:
    conn.execute(
        "UPDATE providers SET generation = generation + 1, updated_at = ? WHERE id = ?",
        (now, pid),
    )


def insert_ledger(conn: sqlite3.Connection, pid: int, c: Claim) -> None:
    conn.execute(
        "INSERT INTO ledger (uuid, provider_id, consumer_uuid, request_uuid, grp, status,"
        " amounts, project_id, user_id, created_at, expires_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            c.uuid,
            pid,
            c.consumer_uuid,
            c.request_uuid,
            c.group,
            c.status.value,
            orjson.dumps(c.ledger_amounts(), option=orjson.OPT_SORT_KEYS).decode(),
            c.project_id,
            c.user_id,
            c.created_at,
            c.expires_at,
        ),
    )


def add_used(conn: sqlite3.Connection, pid: int, amounts: dict[str, int]) -> None:
    # One statement for every class: one step instead of one per class.
    if not amounts:
        return
    cases = " ".join("WHEN ? THEN ?" for _ in amounts)
    marks = ",".join("?" * len(amounts))
    conn.execute(
        f"UPDATE inventories SET used = used + CASE rc {cases} END"
        f" WHERE provider_id = ? AND rc IN ({marks})",
        [*(x for item in amounts.items() for x in item), pid, *amounts],
    )


def inventories(conn: sqlite3.Connection, pid: int) -> dict[str, Inventory]:
    return {
        row[0]: Inventory(*row)
        for row in conn.execute(
            "SELECT rc, total, reserved, min_unit, max_unit, step_size, allocation_ratio"
            " FROM inventories WHERE provider_id = ?",
            (pid,),
        )
    }


def select_claims(
    conn: sqlite3.Connection,
    where: str,
    params: list[Any],
    now: float,
    *,
    live_only: bool = True,
) -> list[Claim]:
    sql = (
        "SELECT l.uuid, p.uuid, l.consumer_uuid, l.amounts, l.status, l.request_uuid,"
        " l.grp, l.project_id, l.user_id, l.created_at, l.expires_at"
        " FROM ledger l JOIN providers p ON p.id = l.provider_id WHERE " + where
    )
    if live_only:
        sql += f" AND {LIVE}"
        params = [*params, now]
    sql += " ORDER BY l.id"
    return [
        Claim(
            uuid=r[0],
            provider_uuid=r[1],
            consumer_uuid=r[2],
            amounts={rc: -n for rc, n in json.loads(r[3]).items()},
            status=ClaimStatus(r[4]),
            request_uuid=r[5],
            group=r[6],
            project_id=r[7],
            user_id=r[8],
            created_at=r[9],
            expires_at=r[10],
        )
        for r in conn.execute(sql, params)
    ]


def sweep(conn: sqlite3.Connection, now: float) -> tuple[int, int]:
    """Delete expired claims inside the caller's write transaction; (events
    recorded, claims deleted). No generation bump: an expired claim already
    counted for nothing, so the provider's state as anyone may read it does
    not change. Every claim and release sweeps first: a probe of the expiry
    index keeps that to one statement when nothing is due."""
    if not conn.execute(DUE, (now,)).fetchone():
        return 0, 0
    seen = events.expiring(conn, now)
    rows = conn.execute(
        "DELETE FROM ledger WHERE status = 'claimed' AND expires_at <= ?"
        " RETURNING provider_id, amounts, uuid",
        (now,),
    ).fetchall()
    for pid, amounts, _ in rows:
        add_used(conn, pid, json.loads(amounts))
    if rows:
        conn.executemany(
            "INSERT OR REPLACE INTO ledger_tombstones VALUES (?, 'expired', ?)",
            [(r[2], now) for r in rows],
        )
        conn.execute("DELETE FROM ledger_tombstones WHERE at < ?", (now - TOMBSTONE_TTL,))
    return seen, len(rows)

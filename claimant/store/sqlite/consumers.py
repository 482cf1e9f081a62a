"""Consumers and their confirmed allocations on the SQLite store
(Placement's allocation model): write, reshape, remove, and usage per
project."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from claimant.model import (
    Claim,
    ClaimStatus,
    Consumer,
    ConsumerAllocations,
    InsufficientCapacity,
    InUse,
    InvalidInput,
    new_uuid,
)
from claimant.store._common import check_amounts, check_consumer_generation, does_not_fit
from claimant.store.base import ReshapeSpec
from claimant.store.sqlite import ledger
from claimant.store.sqlite.connection import SQLiteBase
from claimant.store.sqlite.providers import replace_inventories


class ConsumersMixin(SQLiteBase):
    # -- consumers ---------------------------------------------------------
    def get_consumer(self, uuid: str) -> Consumer | None:
        row = self._one(
            "SELECT uuid, project_id, user_id, consumer_type, generation FROM consumers"
            " WHERE uuid = ?",
            (uuid,),
        )
        if row is None:
            return None
        return Consumer(row[0], row[1], row[2], row[3] or "", row[4])

    def write_allocations(self, writes: list[ConsumerAllocations]) -> None:
        now = self.clock()

        def write(conn: sqlite3.Connection) -> None:
            self._sweep(conn, now)
            self._write_allocations(conn, writes, now)

        self._group(write)

    def _write_allocations(
        self, conn: sqlite3.Connection, writes: list[ConsumerAllocations], now: float
    ) -> set[int]:
        """Apply every write; returns the provider ids touched."""
        touched: set[int] = set()
        added: dict[int, set[str]] = {}
        for w in writes:
            _write_consumer(conn, w, now, touched, added)
        _check_added(conn, added)
        for pid in sorted(touched):
            ledger.bump(conn, pid, now)
        return touched

    def reshape(self, spec: ReshapeSpec) -> None:
        now = self.clock()
        with self._write() as conn:
            self._sweep(conn, now)
            # Inventories first (usage checked after the allocations moved),
            # then allocations: the end state is checked whole.
            for puuid, (gen, invs) in spec.inventories.items():
                pid, _ = ledger.check_generation(conn, puuid, gen)
                replace_inventories(conn, pid, invs, check_usage=False)
                ledger.bump(conn, pid, now)
            writes = [
                ConsumerAllocations(
                    consumer_uuid=w.consumer_uuid,
                    project_id=w.project_id,
                    user_id=w.user_id,
                    allocations=w.allocations,
                    consumer_type=w.consumer_type,
                    expected_generation=w.expected_generation,
                    provider_generations={},
                )
                for w in spec.allocations
            ]
            self._write_allocations(conn, writes, now)
            for puuid in spec.inventories:
                pid = ledger.pid(conn, puuid)
                over = conn.execute(
                    "SELECT rc, used, capacity FROM inventories WHERE provider_id = ?"
                    " AND used > capacity",
                    (pid,),
                ).fetchall()
                orphan = conn.execute(
                    "SELECT 1 FROM ledger l, json_each(l.amounts) j WHERE l.provider_id = ?"
                    " AND NOT EXISTS (SELECT 1 FROM inventories i WHERE i.provider_id = ?"
                    " AND i.rc = j.key) LIMIT 1",
                    (pid, pid),
                ).fetchone()
                if over or orphan:
                    raise InUse(
                        f"reshape would leave provider {puuid} with allocations beyond its "
                        "inventory",
                        uuid=puuid,
                    )

    def usages_by_project(
        self, project_id: str, user_id: str | None = None, consumer_type: str | None = None
    ) -> dict[str, dict[str, int]]:
        # "all" sums every consumer type into one bucket (Placement 1.38).
        kind = "'all'" if consumer_type == "all" else "COALESCE(c.consumer_type, 'unknown')"
        sql = (
            f"SELECT {kind}, j.key, -SUM(j.value),"
            " COUNT(DISTINCT l.consumer_uuid) FROM ledger l JOIN json_each(l.amounts) j"
            " LEFT JOIN consumers c ON c.uuid = l.consumer_uuid"
            f" WHERE l.project_id = ? AND {ledger.LIVE}"
        )
        params: list[Any] = [project_id, self.clock()]
        if user_id is not None:
            sql += " AND l.user_id = ?"
            params.append(user_id)
        if consumer_type not in (None, "all"):
            sql += " AND COALESCE(c.consumer_type, 'unknown') = ?"
            params.append(consumer_type)
        sql += " GROUP BY 1, 2"
        out: dict[str, dict[str, int]] = {}
        counts = self._consumer_counts(project_id, user_id)
        if consumer_type == "all":
            counts = {"all": sum(counts.values())}
        with self._read() as conn:
            for ctype, rc, amount, _ in conn.execute(sql, params):
                bucket = out.setdefault(ctype, {"consumer_count": counts.get(ctype, 0)})
                bucket[rc] = amount
        return out

    def _consumer_counts(self, project_id: str, user_id: str | None) -> dict[str, int]:
        sql = (
            "SELECT COALESCE(c.consumer_type, 'unknown'), COUNT(DISTINCT l.consumer_uuid)"
            " FROM ledger l LEFT JOIN consumers c ON c.uuid = l.consumer_uuid"
            f" WHERE l.project_id = ? AND {ledger.LIVE}"
        )
        params: list[Any] = [project_id, self.clock()]
        if user_id is not None:
            sql += " AND l.user_id = ?"
            params.append(user_id)
        sql += " GROUP BY 1"
        return {r[0]: r[1] for r in self._select(sql, params)}

    def remove_consumer_allocations(self, consumer_uuid: str) -> bool:
        now = self.clock()
        with self._write() as conn:
            self._sweep(conn, now)
            rows = conn.execute(
                "SELECT id, provider_id, amounts FROM ledger WHERE consumer_uuid = ?"
                " AND status = 'confirmed'",
                (consumer_uuid,),
            ).fetchall()
            for lid, pid, amounts in rows:
                conn.execute("DELETE FROM ledger WHERE id = ?", (lid,))
                ledger.add_used(conn, pid, json.loads(amounts))
            conn.execute("DELETE FROM consumers WHERE uuid = ?", (consumer_uuid,))
            return bool(rows)


def _write_consumer(
    conn: sqlite3.Connection,
    w: ConsumerAllocations,
    now: float,
    touched: set[int],
    added: dict[int, set[str]],
) -> None:
    """One consumer's write: its generation checked, what it holds given
    back, its new allocations written, its record bumped (or deleted when it
    is left with nothing). Adds to ``touched`` and ``added`` (provider id ->
    classes allocated)."""
    row = conn.execute(
        "SELECT generation FROM consumers WHERE uuid = ?", (w.consumer_uuid,)
    ).fetchone()
    check_consumer_generation(
        w.consumer_uuid, w.expected_generation, None if row is None else row[0]
    )
    for puuid, gen in w.provider_generations.items():
        ledger.check_generation(conn, puuid, gen)
    touched.update(_give_back(conn, w.consumer_uuid))
    adds = _checked_adds(conn, w)
    for pid, puuid, amounts in adds:
        ledger.insert_ledger(
            conn,
            pid,
            Claim(
                uuid=new_uuid(),
                provider_uuid=puuid,
                consumer_uuid=w.consumer_uuid,
                amounts=dict(amounts),
                status=ClaimStatus.CONFIRMED,
                project_id=w.project_id,
                user_id=w.user_id,
                created_at=now,
            ),
        )
        ledger.add_used(conn, pid, amounts)
        touched.add(pid)
        added.setdefault(pid, set()).update(amounts)
    if adds:
        if row is None:
            conn.execute(
                "INSERT INTO consumers VALUES (?, ?, ?, ?, 1, ?, ?)",
                (w.consumer_uuid, w.project_id, w.user_id, w.consumer_type, now, now),
            )
        else:
            conn.execute(
                "UPDATE consumers SET generation = generation + 1, project_id = ?,"
                " user_id = ?, consumer_type = COALESCE(?, consumer_type),"
                " updated_at = ? WHERE uuid = ?",
                (w.project_id, w.user_id, w.consumer_type, now, w.consumer_uuid),
            )
    elif row is not None:
        conn.execute("DELETE FROM consumers WHERE uuid = ?", (w.consumer_uuid,))


def _give_back(conn: sqlite3.Connection, consumer_uuid: str) -> set[int]:
    """Delete the consumer's confirmed allocations; the provider ids."""
    touched: set[int] = set()
    for lid, pid, amounts in conn.execute(
        "SELECT id, provider_id, amounts FROM ledger WHERE consumer_uuid = ?"
        " AND status = 'confirmed'",
        (consumer_uuid,),
    ).fetchall():
        conn.execute("DELETE FROM ledger WHERE id = ?", (lid,))
        ledger.add_used(conn, pid, json.loads(amounts))
        touched.add(pid)
    return touched


def _checked_adds(
    conn: sqlite3.Connection, w: ConsumerAllocations
) -> list[tuple[int, str, dict[str, int]]]:
    """(provider id, uuid, amounts) of each non-empty allocation of ``w``,
    its amounts checked against the provider's inventories' units (capacity
    is checked once the whole batch is written: ``_check_added``)."""
    adds: list[tuple[int, str, dict[str, int]]] = []
    for puuid, amounts in w.allocations.items():
        if not amounts:
            continue
        pid = ledger.pid(conn, puuid)
        invs = ledger.inventories(conn, pid)
        check_amounts(amounts, "an allocation")
        for rc, amount in amounts.items():
            if rc not in invs:
                raise InsufficientCapacity(
                    f"provider {puuid} has no inventory of {rc}",
                    uuid=puuid,
                    reasons=[f"{rc}: provider has no inventory of this class"],
                )
            problems = invs[rc].amount_problems(amount)
            if problems:
                raise InvalidInput("; ".join(problems), field=rc, uuid=puuid)
        adds.append((pid, puuid, amounts))
    return adds


def _check_added(conn: sqlite3.Connection, added: dict[int, set[str]]) -> None:
    """Checked after the whole batch, so moving amounts between consumers of
    one provider never fails spuriously. Only classes being allocated are
    checked: a provider an operator shrank below its usage (Placement allows
    that) can still have its other allocations rewritten."""
    for pid in sorted(added):
        classes = sorted(added[pid])
        marks = ",".join("?" * len(classes))
        over = conn.execute(
            "SELECT rc, used, capacity FROM inventories WHERE provider_id = ?"
            f" AND rc IN ({marks}) AND used > capacity",
            [pid, *classes],
        ).fetchall()
        if over:
            puuid = conn.execute("SELECT uuid FROM providers WHERE id = ?", (pid,)).fetchone()
            reasons = [f"{rc}: used {u} would exceed capacity {c}" for rc, u, c in over]
            raise does_not_fit(puuid[0], reasons)

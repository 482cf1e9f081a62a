"""Claims on the SQLite store: the compare-and-set write of a claim, its
confirm and release, and the reads of the ledger."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from claimant.model import (
    AlreadyExists,
    Claim,
    ClaimNotActive,
    ClaimStatus,
    Inventory,
    NotFound,
    Request,
    deadline,
)
from claimant.model.events import CLAIMED, CONFIRMED, RELEASED, claim_events
from claimant.store._common import new_claim, raise_unless_fits
from claimant.store.base import ClaimSpec
from claimant.store.sqlite import events, ledger, reads
from claimant.store.sqlite.connection import SQLiteBase
from claimant.store.sqlite.requests import insert_request, request_row


class ClaimsMixin(SQLiteBase):
    def claim(self, spec: ClaimSpec) -> Claim:
        _, write = self._claim_write(spec, self.clock())
        return self._group(write)

    def claim_and_record(
        self, spec: ClaimSpec, record: Callable[[Claim], Request]
    ) -> tuple[Claim, Request]:
        # One transaction (one group-commit entry): a placement's only write.
        now = self.clock()
        claim, write_claim = self._claim_write(spec, now)
        saved, row = request_row(record(claim), now)

        def write(conn: sqlite3.Connection) -> Claim:
            insert_request(conn, saved, row)
            return write_claim(conn)

        return self._group(write), saved

    def _claim_write(
        self, spec: ClaimSpec, now: float
    ) -> tuple[Claim, Callable[[sqlite3.Connection], Claim]]:
        """The claim ``spec`` makes at ``now``, and the write that takes it."""
        claim = new_claim(spec, now)

        def write(conn: sqlite3.Connection) -> Claim:
            self._sweep(conn, now)
            # Generation and inventories in one row: each row stepped is a
            # GIL release, a thread switch when schedulers contend.
            row = conn.execute(
                "SELECT p.id, p.generation, (SELECT json_group_array(json_array(i.rc, i.total,"
                f" i.reserved, i.min_unit, i.max_unit, i.step_size, {reads.RATIO}, i.used))"
                " FROM inventories i WHERE i.provider_id = p.id) FROM providers p WHERE p.uuid = ?",
                (spec.provider_uuid,),
            ).fetchone()
            pid = ledger.generation_matches(row, spec.provider_uuid, spec.expected_generation)
            invs: dict[str, Inventory] = {}
            in_use: dict[str, int] = {}
            for rc, *fields, n in orjson.loads(row[2]):
                invs[rc] = reads.inventory((rc, *fields))
                in_use[rc] = n
            raise_unless_fits(spec.provider_uuid, invs, in_use, spec.amounts)
            try:
                ledger.insert_ledger(conn, pid, claim)
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"claim {claim.uuid} already exists", uuid=claim.uuid) from None
            ledger.add_used(conn, pid, spec.amounts)
            ledger.bump(conn, pid, now)
            events.insert(conn, claim_events(claim, CLAIMED, now))
            return claim

        return claim, write

    def confirm_claim(self, claim_uuid: str) -> Claim:
        def write(conn: sqlite3.Connection) -> Claim:
            # Read the clock only once we hold the write lock: waiting for it
            # can take long enough for the claim to expire meanwhile.
            now = self.clock()
            claim = self._get_claim(conn, claim_uuid, now)
            if claim.status == ClaimStatus.CONFIRMED:
                return claim
            conn.execute(
                "UPDATE ledger SET status = 'confirmed', expires_at = NULL WHERE uuid = ?",
                (claim_uuid,),
            )
            events.insert(conn, claim_events(claim, CONFIRMED, now))
            return claim.evolve(status=ClaimStatus.CONFIRMED, expires_at=None)

        return self._group(write)

    def release_claim(self, claim_uuid: str) -> None:
        now = self.clock()

        def write(conn: sqlite3.Connection) -> None:
            self._sweep(conn, now)
            row = conn.execute(
                "SELECT provider_id, amounts FROM ledger WHERE uuid = ?", (claim_uuid,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no live claim {claim_uuid}", kind="claim", uuid=claim_uuid)
            events.ledger_step(conn, claim_uuid, RELEASED, now)
            conn.execute("DELETE FROM ledger WHERE uuid = ?", (claim_uuid,))
            conn.execute(
                "INSERT OR REPLACE INTO ledger_tombstones VALUES (?, 'released', ?)",
                (claim_uuid, now),
            )
            ledger.add_used(conn, row[0], json.loads(row[1]))
            ledger.bump(conn, row[0], now)

        # Giving back is never cut by a deadline: it is how a request that ran
        # out of time leaves nothing behind.
        with deadline.shielded():
            self._group(write)

    def _get_claim(self, conn: sqlite3.Connection, claim_uuid: str, now: float) -> Claim:
        rows = ledger.select_claims(conn, "l.uuid = ?", [claim_uuid], now, live_only=False)
        if not rows:
            gone = conn.execute(
                "SELECT reason FROM ledger_tombstones WHERE uuid = ?", (claim_uuid,)
            ).fetchone()
            if gone:
                raise ClaimNotActive(f"claim {claim_uuid} was {gone[0]}", uuid=claim_uuid)
            raise NotFound(f"no claim {claim_uuid}", kind="claim", uuid=claim_uuid)
        claim = rows[0]
        if not claim.is_live(now):
            raise ClaimNotActive(f"claim {claim_uuid} has expired", uuid=claim_uuid)
        return claim

    def get_claim(self, claim_uuid: str) -> Claim:
        with self._read() as conn:
            rows = ledger.select_claims(conn, "l.uuid = ?", [claim_uuid], self.clock())
        if not rows:
            raise NotFound(f"no live claim {claim_uuid}", kind="claim", uuid=claim_uuid)
        return rows[0]

    def list_claims(
        self,
        *,
        provider_uuid: str | None = None,
        consumer_uuid: str | None = None,
        request_uuid: str | None = None,
        group: str | None = None,
        status: ClaimStatus | None = None,
    ) -> list[Claim]:
        where = ["1 = 1"]
        params: list[Any] = []
        for column, value in (
            ("p.uuid", provider_uuid),
            ("l.consumer_uuid", consumer_uuid),
            ("l.request_uuid", request_uuid),
            ("l.grp", group),
            ("l.status", status.value if status else None),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        with self._read() as conn:
            return ledger.select_claims(conn, " AND ".join(where), params, self.clock())

    def expire_claims(self) -> int:
        with self._write() as conn:
            return self._sweep(conn, self.clock())

    def providers_of_consumers(self, consumer_uuids: Iterable[str]) -> set[str]:
        uuids = sorted(set(consumer_uuids))
        if not uuids:
            return set()
        with self._read() as conn:
            return {
                c.provider_uuid
                for chunk in reads.chunks(uuids)
                for c in ledger.select_claims(
                    conn,
                    f"l.consumer_uuid IN ({','.join('?' * len(chunk))})",
                    list(chunk),
                    self.clock(),
                )
            }

    def providers_of_group(self, group: str) -> dict[str, int]:
        rows = self._select(
            "SELECT p.uuid, COUNT(DISTINCT l.consumer_uuid) FROM ledger l"
            f" JOIN providers p ON p.id = l.provider_id WHERE l.grp = ? AND {ledger.LIVE}"
            " GROUP BY p.uuid",
            (group, self.clock()),
        )
        return {r[0]: r[1] for r in rows}

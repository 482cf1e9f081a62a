"""Settling transactions (txn.py): deciding a transaction, rolling a
decided one forward or back on its providers and consumers, and the reads
that first settle what they look at."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from cassandra.cluster import EXEC_PROFILE_DEFAULT

from claimant.model import (
    CellUnavailable,
    ClaimantError,
    ClaimStatus,
    Consumer,
    NotFound,
    StoreUnavailable,
)
from claimant.store.cassandra import fast
from claimant.store.cassandra import queries as q
from claimant.store.cassandra.catalog import Catalog
from claimant.store.cassandra.errors import (
    _DRIVER_ERRORS,
    OutcomeUnknown,
    _backoff,
    _is_unknown_outcome,
    _pause,
)
from claimant.store.cassandra.state import (
    _GLOBAL,
    RESOLVE_ATTEMPTS,
    TOMBSTONE_TTL,
    _Change,
    _ConsumerHome,
    _Entry,
    _Partition,
    _State,
    _without,
)
from claimant.store.cassandra.statements import _applied
from claimant.store.cassandra.txn import (
    ABORTED,
    COMMITTED,
    PENDING,
    TXN_RECORD_TTL,
    ConsumerPlan,
    Plan,
    entry_uuid,
    home_param,
    is_fast,
    txn_cell,
)

log = logging.getLogger(__name__)


class Settling(Catalog):
    def _bury(self, claim_uuid: str, provider_uuid: str, why: str) -> None:
        self._run(
            q.BURY_LOCATOR,
            [claim_uuid, provider_uuid, why, int(TOMBSTONE_TTL)],
            cell=self._home(provider_uuid),
        )

    def _consumer_txn(self, uuid: str, cell: str | None) -> str | None:
        rows = self._run(q.GET_CONSUMER, [uuid], serial=True, cell=cell)
        return rows[0].txn if rows else None

    def _consumer_home(self, uuid: str) -> _ConsumerHome:
        """Where a consumer's compare-and-sets go, by plain reads of its row
        (docs/cells.md, "A consumer has a home cell"): here first, then each
        other cell. A copy of a row names its home, and the home's own read
        decides (a copy left by a row its home dropped is stale)."""
        if len(self.dcs) < 2:
            return _GLOBAL
        here = [self.dc] if self.dc in self.dcs else []
        absent: set[str] = set()
        unreachable: list[str] = []
        for cell in [*here, *(c for c in self.dcs if c not in here)]:
            if cell in absent:
                continue
            try:
                rows = self._run(q.FIND_CONSUMER, [uuid], cell=cell)
            except CellUnavailable:
                unreachable.append(cell)
                continue
            home = rows[0].cell if rows else None
            if not rows:
                absent.add(cell)
            elif home is None:
                return _GLOBAL
            elif home == cell:
                return _ConsumerHome(home)
            elif home not in absent:
                try:
                    there = self._run(q.FIND_CONSUMER, [uuid], cell=home)
                except CellUnavailable:
                    # Its home is down: writes of it fail there, as they should.
                    return _ConsumerHome(home)
                if there and there[0].cell == home:
                    return _ConsumerHome(home)
                absent.add(home)
        return _ConsumerHome(None, new=True, unreachable=tuple(unreachable))

    def _consumer_cell(self, home: _ConsumerHome) -> str | None:
        """Where a consumer's entries are read: its home; a new one's (it may
        have claims, no row) here."""
        return self.local_cell() if home.new else home.cell

    def _read_consumer(
        self, uuid: str, *, serial: bool = False, home: _ConsumerHome | None = None
    ) -> tuple[Consumer | None, str | None]:
        """The consumer as committed, and the transaction that still holds its
        lock. A lock of a decided or abandoned transaction is finished first,
        so a reader never sees half of a committed write."""
        home = home or self._consumer_home(uuid)
        if home.new:
            # In no cell that answered. Its lock's condition decides the rest.
            return None, None
        for _ in range(3):
            rows = self._run(q.GET_CONSUMER, [uuid], serial=serial, cell=home.cell)
            r = rows[0] if rows else None
            if r is None or r.txn is None or self._finish(r.txn, consumer=uuid) == PENDING:
                break
            # finished: read what it left
        if r is None or r.generation is None:
            # No row, or a consumer a pending transaction is creating.
            return None, (r.txn if r is not None else None)
        return (
            Consumer(r.uuid, r.project_id, r.user_id, r.consumer_type or "", r.generation),
            r.txn,
        )

    def _decide(self, txn: str, status: str) -> str:
        """Commit or abort by ONE LWT on the record (``IF status = 'pending'``);
        returns the status the record ends with, whoever set it."""
        stmt = self._prep(q.DECIDE_TXN)
        cell = txn_cell(txn)
        route = self._route(cell)
        for attempt in range(RESOLVE_ATTEMPTS):
            _backoff(attempt)
            try:
                row = (
                    self._use_keyspace()
                    .execute(
                        stmt.bind([TXN_RECORD_TTL, status, txn]),
                        execution_profile=route or EXEC_PROFILE_DEFAULT,
                    )
                    .one()
                )
            except _DRIVER_ERRORS as exc:
                if not _is_unknown_outcome(exc):
                    raise self._fail(exc, route) from exc
                self.stats["unknown"] += 1
                try:
                    rows = self._run(q.READ_TXN, [txn], serial=True, cell=cell)
                except StoreUnavailable:
                    continue
                if rows and rows[0].status != PENDING:
                    return str(rows[0].status)
                _pause(attempt)
                continue  # not applied: the LWT is tried again
            if _applied(row):
                return status
            return str(row.status) if row.status else ABORTED
        raise OutcomeUnknown(
            f"deciding transaction {txn} timed out and re-reading it failed", uuid=txn
        )

    def _abandon(self, txn: str, plan: Plan) -> str | None:
        """Abort and roll back what was written; what cannot be done now is
        left to whoever meets it after the deadline (never forced). Returns
        the status the record ended with (None: not known)."""
        status = None
        try:
            status = self._decide(txn, ABORTED)
            self._finish_decided(txn, plan, commit=status == COMMITTED)
        except ClaimantError as exc:
            log.warning("transaction %s left to its deadline: %s", txn, exc)
        return status

    def _finish(self, txn: str, *, provider: str | None = None, consumer: str | None = None) -> str:
        """Resolve a transaction met on a provider or a consumer: roll it
        forward if committed; abort it if pending past its deadline; roll it
        back if aborted. Idempotent. Returns its status (PENDING: left alone)."""
        if is_fast(txn):
            # Only consumers are locked by a fast-path write.
            return fast.finish(self, txn, consumer) if consumer is not None else PENDING
        cell = txn_cell(txn)
        rows = self._run(q.READ_TXN, [txn], serial=True, cell=cell)
        if not rows:
            self._lwt_sure(
                q.ABORT_LOST_TXN,
                [txn, self.clock(), TXN_RECORD_TTL],
                done=lambda: bool(self._run(q.READ_TXN, [txn], serial=True, cell=cell)),
                cell=cell,
            )
            rows = self._run(q.READ_TXN, [txn], serial=True, cell=cell)
            if not rows:
                raise StoreUnavailable(f"transaction record {txn} could not be read")
        status, plan = str(rows[0].status), Plan.from_text(rows[0].plan)
        if status == PENDING:
            if (rows[0].deadline or 0.0) > self.clock():
                return PENDING
            log.warning("transaction %s is past its deadline: aborting it", txn)
            status = self._decide(txn, ABORTED)
        commit = status == COMMITTED
        if plan is not None:
            self._finish_decided(txn, plan, commit=commit)
        if provider is not None and (plan is None or provider not in plan.providers):
            self._settle_provider(provider, txn, commit)
        if consumer is not None and (plan is None or consumer not in plan.consumers):
            self._settle_consumer(consumer, txn, commit, None)
        self.stats["txns_resolved"] += 1
        return status

    def _finish_decided(
        self,
        txn: str,
        plan: Plan,
        *,
        commit: bool,
        known: dict[str, _Partition | None] | None = None,
    ) -> None:
        # Providers first: the consumer's lock, released last, keeps sending
        # its readers here until every provider is done.
        for puuid in plan.providers:
            self._settle_provider(puuid, txn, commit, (known or {}).get(puuid))
        for uuid in sorted(plan.consumers):
            self._settle_consumer(uuid, txn, commit, plan.consumers[uuid])

    def _settle_provider(
        self, puuid: str, txn: str, commit: bool, first: _Partition | None = None
    ) -> None:
        """Roll one provider's part forward (it becomes allocations, the old
        entries it replaces go; no bump) or back (it goes; a bump if the
        pending write bumped). Nothing to do once the part is gone."""
        gone: list[_Entry] = []
        located: list[bool] = []

        def change(part: _Partition, now: float) -> _Change | None:
            item = part.state.pending_part(txn)
            if item is None:
                return None
            rest = tuple(p for p in part.state.pending if p.txn != txn)
            extra: list[tuple[str, list[Any]]] = [(q.DELETE_ROW, [puuid, "t:" + txn])]
            if not commit:
                gen = part.state.generation + (1 if item.bump else 0)
                return replace(part.state, pending=rest, generation=gen), extra
            if item.add and not located:
                # Before the entries exist, so that whoever finishes the write
                # leaves them findable by uuid (the uuids are derived).
                self._run_many(
                    q.WRITE_LOCATOR,
                    [[entry_uuid(txn, puuid, c), puuid, 0] for c in sorted(item.add)],
                    cell=self._home(puuid),
                )
                located.append(True)
            gone[:] = [e for e in part.entries.values() if e.uuid in item.old]
            state = _without(part.state, gone)
            alloc = dict(state.alloc_used)
            extra += [(q.DELETE_ROW, [puuid, "l:" + e.uuid]) for e in gone]
            for c, (project, user, amounts) in sorted(item.add.items()):
                entry = _Entry(
                    uuid=entry_uuid(txn, puuid, c),
                    provider_uuid=puuid,
                    consumer_uuid=c,
                    amounts=dict(amounts),
                    status=ClaimStatus.CONFIRMED,
                    request_uuid=None,
                    group=None,
                    project_id=project,
                    user_id=user,
                    created_at=now,
                    expires_at=None,
                )
                extra.append(self._entry_stmt(entry, now))
                for rc, n in amounts.items():
                    alloc[rc] = alloc.get(rc, 0) + n
            state = replace(state, alloc_used={rc: n for rc, n in alloc.items() if n}, pending=rest)
            if item.inventories is not None:
                state = replace(state, inventories=item.inventories)
            return state, extra

        try:
            self._update(
                puuid,
                None,
                change,
                bump=False,
                need_entries=commit,
                absent_key="t:" + txn,
                first=first,
            )
        except NotFound:
            return
        for e in gone:
            self._bury(e.uuid, puuid, "released")

    def _settle_consumer(
        self, uuid: str, txn: str, commit: bool, plan: ConsumerPlan | None
    ) -> None:
        """Release a consumer's lock: committed, it takes its new generation
        (or goes, holding nothing); aborted, it is as before (a consumer the
        transaction was creating goes)."""
        if plan is None and commit:
            # A committed record always carries its plan: nothing to go on.
            log.error("transaction %s committed without a plan for consumer %s", txn, uuid)
            return
        cell = txn_cell(txn)
        if plan is None:
            rows = self._run(q.GET_CONSUMER, [uuid], serial=True, cell=cell)
            if not rows or rows[0].txn != txn:
                return
            created = rows[0].generation is None
        else:
            created = plan.generation is None
        if commit and plan is not None and plan.keep:
            cql = q.COMMIT_CONSUMER
            params: list[Any] = [
                plan.project_id,
                plan.user_id,
                plan.consumer_type,
                (plan.generation or 0) + 1,
                home_param(cell),
                uuid,
                txn,
            ]
        elif commit or created:
            cql, params = q.DROP_CONSUMER, [uuid, txn]
        else:
            cql, params = q.UNLOCK_CONSUMER, [home_param(cell), uuid, txn]
        self._lwt_sure(cql, params, done=lambda: self._consumer_txn(uuid, cell) != txn, cell=cell)

    def _settle_consumers(self, uuids: Iterable[str]) -> bool:
        """Resolve the transactions holding these consumers' locks (rolled
        forward if committed); True if any was finished (the caller reads
        again). A live pending one is left: the consumer is as it was."""
        uuids = sorted(set(uuids))
        if not uuids:
            return False
        moved = False
        for uuid, rows in zip(
            uuids, self._run_many(q.GET_CONSUMER, [[u] for u in uuids]), strict=True
        ):
            if rows and rows[0].txn is not None:
                moved |= self._finish(rows[0].txn, consumer=uuid) != PENDING
        return moved

    def _settle_met(self, state: _State) -> bool:
        """Resolve the transactions pending on a provider a reader met;
        True if any was finished (the caller reads again)."""
        moved = False
        for item in state.pending:
            if self._finish(item.txn, provider=state.uuid) != PENDING:
                moved = True
        return moved

    def _settled_state(self, uuid: str, *, serial: bool = False) -> _State:
        """A provider as committed: a transaction met there that is decided
        (or abandoned) is finished first."""
        state = self._read_state(uuid, serial=serial)
        if state.pending and self._settle_met(state):
            state = self._read_state(uuid, serial=serial)
        return state

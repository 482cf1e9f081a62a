"""Claims: make, confirm, release, read and expire them; the claim locator
rows that find a claim's provider."""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from cassandra.cluster import EXEC_PROFILE_DEFAULT

from claimant.model import (
    AlreadyExists,
    CellUnavailable,
    Claim,
    ClaimNotActive,
    ClaimStatus,
    GenerationConflict,
    NotFound,
    StoreUnavailable,
    new_uuid,
)
from claimant.model.events import CLAIMED, CONFIRMED, EXPIRED, RELEASED, claim_events
from claimant.store._common import (
    check_claim_spec,
    generation_conflict,
    new_claim,
    raise_unless_fits,
)
from claimant.store.base import ClaimSpec
from claimant.store.cassandra import events as _events
from claimant.store.cassandra import queries as q
from claimant.store.cassandra.errors import _DRIVER_ERRORS, _backoff, _never_cut, _uncut
from claimant.store.cassandra.providers import Providers
from claimant.store.cassandra.state import (
    CAS_ATTEMPTS,
    RESOLVE_ATTEMPTS,
    TOMBSTONE_TTL,
    Hold,
    _Entry,
    _entry_from_row,
    _without,
)
from claimant.store.cassandra.txn import PENDING, TXN_DEADLINE

log = logging.getLogger(__name__)


class Claims(Providers):
    # -- claims -----------------------------------------------------------------------
    def claim(self, spec: ClaimSpec) -> Claim:
        check_claim_spec(spec)
        claim_uuid = spec.claim_uuid or new_uuid()
        if spec.claim_uuid and self._locator_rows(claim_uuid):
            raise AlreadyExists(f"claim {claim_uuid} already exists", uuid=claim_uuid)
        # Every attempt makes the same claim.
        spec = replace(spec, claim_uuid=claim_uuid)
        session = self._use_keyspace()
        locator = None
        state = self._states.get(spec.provider_uuid)
        if state is not None and state.generation != spec.expected_generation:
            state = None
        with self._lock(spec.provider_uuid):
            for attempt in range(CAS_ATTEMPTS):
                _backoff(attempt)
                now = self.clock()
                if state is None:
                    state = self._read_state(spec.provider_uuid, serial=True)
                if state.generation != spec.expected_generation:
                    raise generation_conflict(
                        spec.provider_uuid, state.generation, spec.expected_generation
                    )
                raise_unless_fits(
                    spec.provider_uuid, state.fit_inventories(), state.used(now), spec.amounts
                )
                entry = _Entry.of(new_claim(spec, now))
                if locator is None:
                    # In parallel with the transaction: a claim is found by
                    # uuid later. In the provider's home, as the claim is.
                    locator = session.execute_async(
                        self._prep(q.WRITE_LOCATOR).bind(
                            [
                                claim_uuid,
                                spec.provider_uuid,
                                self._ttl(entry.expires_at, now) + int(TOMBSTONE_TTL),
                            ]
                        ),
                        execution_profile=self._route(state.cell) or EXEC_PROFILE_DEFAULT,
                    )
                hold: Hold = (claim_uuid, now + spec.ttl, dict(spec.amounts))
                new = self._next_state(
                    state, replace(state, holds=(*state.holds, hold)), now, bump=True
                )
                if self._cas(
                    state, new, now, [self._entry_stmt(entry, now)], entry_key="l:" + claim_uuid
                ):
                    self._wait_locator(locator, claim_uuid, spec.provider_uuid, entry, now)
                    _events.add_events(self, claim_events(entry.claim(), CLAIMED, now))
                    return entry.claim()
                state = None
        raise GenerationConflict(
            f"provider {spec.provider_uuid} kept changing: retry", uuid=spec.provider_uuid
        )

    def _wait_locator(
        self, future: Any, claim_uuid: str, provider_uuid: str, entry: _Entry, now: float
    ) -> None:
        try:
            future.result()
            return
        except _DRIVER_ERRORS:
            pass
        # The claim is written; its locator must be too, or nobody finds it.
        ttl = self._ttl(entry.expires_at, now) + int(TOMBSTONE_TTL)
        self._run(q.WRITE_LOCATOR, [claim_uuid, provider_uuid, ttl], cell=self._home(provider_uuid))

    def _write_locator_sure(self, claim_uuid: str, provider_uuid: str) -> None:
        """The locator of a confirmed allocation, without TTL. Retried: left
        with the claim's TTL, the allocation could not be released by uuid
        once it ran out (issue 8)."""
        for attempt in range(RESOLVE_ATTEMPTS):
            _backoff(attempt)
            try:
                self._run(
                    q.WRITE_LOCATOR, [claim_uuid, provider_uuid, 0], cell=self._home(provider_uuid)
                )
                return
            except StoreUnavailable:
                if attempt == RESOLVE_ATTEMPTS - 1:
                    raise

    def _locate(self, claim_uuid: str) -> str | None:
        """The claim's provider; None if unknown or gone."""
        rows = self._locator_rows(claim_uuid)
        return rows[0].provider_uuid if rows and not rows[0].gone else None

    def _locator_rows(self, claim_uuid: str) -> list[Any]:
        """A claim's locator row (written plainly in the provider's home
        cell, or where the write that made it ran: docs/cells.md)."""
        return self._in_any_cell(q.LOCATE, [claim_uuid])

    @_uncut
    def confirm_claim(self, claim_uuid: str) -> Claim:
        rows = self._locator_rows(claim_uuid)
        if not rows:
            raise NotFound(f"no claim {claim_uuid}", kind="claim", uuid=claim_uuid)
        if rows[0].gone:
            raise ClaimNotActive(f"claim {claim_uuid} was {rows[0].gone}", uuid=claim_uuid)
        provider_uuid = rows[0].provider_uuid
        # A transaction writing the claim's consumer replaces the allocations
        # it saw: the claim is confirmed once it is decided, never under it
        # (docs/cassandra.md, "A claim confirmed during a write"). Waited for
        # outside the provider's lock: the writer may be this process.
        give_up = time.monotonic() + TXN_DEADLINE
        for attempt in itertools.count():
            done = self._confirm_once(claim_uuid, provider_uuid)
            if isinstance(done, Claim):
                return done
            consumer, blocking = done
            if not any(
                self._finish(t, provider=provider_uuid, consumer=consumer) == PENDING
                for t in blocking
            ):
                continue
            if time.monotonic() > give_up:
                raise GenerationConflict(
                    f"consumer {consumer} is being written by another request: retry",
                    uuid=consumer,
                )
            _backoff(min(attempt + 1, 6))
        raise AssertionError("unreachable")

    def _writes_of(self, consumer: str, cell: str | None) -> list[str]:
        """The transaction holding the consumer's lock, if any, as far as a
        claim on a provider homed in ``cell`` is concerned: a write that
        could replace that claim is homed in ``cell`` too (it may touch no
        other), so its lock is read there (docs/cells.md)."""
        if cell is not None and len(self.dcs) > 1:
            rows = self._run(q.FIND_CONSUMER, [consumer], cell=cell)
            if not rows or rows[0].cell not in (None, cell):
                return []  # none, or homed elsewhere: never writes here
            if rows[0].cell == cell:
                return [rows[0].txn] if rows[0].txn else []
        rows = self._run(q.GET_CONSUMER, [consumer])  # a global consumer
        return [rows[0].txn] if rows and rows[0].txn else []

    def _confirm_once(self, claim_uuid: str, provider_uuid: str) -> Claim | tuple[str, list[str]]:
        """Confirm unless a transaction writes the claim's consumer: then its
        consumer and those transactions."""
        with self._lock(provider_uuid):
            for attempt in range(CAS_ATTEMPTS):
                _backoff(attempt)
                now = self.clock()
                try:
                    part = self._read_partition(provider_uuid)
                except NotFound:
                    raise NotFound(
                        f"no claim {claim_uuid}", kind="claim", uuid=claim_uuid
                    ) from None
                entry = part.entries.get(claim_uuid)
                if entry is None:
                    # Located but not in the ledger: Cassandra's TTL removed it.
                    raise ClaimNotActive(f"claim {claim_uuid} has expired", uuid=claim_uuid)
                if not entry.live(now):
                    raise ClaimNotActive(f"claim {claim_uuid} has expired", uuid=claim_uuid)
                if entry.status == ClaimStatus.CONFIRMED:
                    # A confirm whose locator rewrite failed is repeated by its caller.
                    self._write_locator_sure(claim_uuid, provider_uuid)
                    return entry.claim()
                old = part.state
                # A pending part naming the consumer: a write that saw this
                # claim unconfirmed. Else the consumer's lock, read after the
                # claim was made and before the LWT: a write that took it
                # later finds the claim and plans a part here.
                blocking = [p.txn for p in old.pending if entry.consumer_uuid in p.consumers]
                if not blocking:
                    blocking = self._writes_of(entry.consumer_uuid, old.cell)
                if blocking:
                    return entry.consumer_uuid, blocking
                confirmed = replace(entry, status=ClaimStatus.CONFIRMED, expires_at=None)
                alloc = dict(old.alloc_used)
                for rc, n in entry.amounts.items():
                    alloc[rc] = alloc.get(rc, 0) + n
                # No generation bump: what the provider holds does not change (as SQLite).
                new = self._next_state(
                    old,
                    replace(
                        old,
                        alloc_used=alloc,
                        holds=tuple(h for h in old.holds if h[0] != claim_uuid),
                    ),
                    now,
                    bump=False,
                )
                if self._cas(old, new, now, [self._entry_stmt(confirmed, now)]):
                    self._write_locator_sure(claim_uuid, provider_uuid)
                    _events.add_events(self, claim_events(confirmed.claim(), CONFIRMED, now))
                    return confirmed.claim()
        raise GenerationConflict(f"provider {provider_uuid} kept changing: retry")

    @_never_cut
    def release_claim(self, claim_uuid: str) -> None:
        provider_uuid = self._locate(claim_uuid)
        if provider_uuid is None:
            raise NotFound(f"no live claim {claim_uuid}", kind="claim", uuid=claim_uuid)
        with self._lock(provider_uuid):
            for attempt in range(CAS_ATTEMPTS):
                _backoff(attempt)
                now = self.clock()
                try:
                    part = self._read_partition(provider_uuid)
                except NotFound:
                    raise NotFound(f"no live claim {claim_uuid}", kind="claim") from None
                entry = part.entries.get(claim_uuid)
                if entry is None or not entry.live(now):
                    raise NotFound(f"no live claim {claim_uuid}", kind="claim", uuid=claim_uuid)
                old = part.state
                state = _without(old, [entry])
                if any(claim_uuid in p.old for p in old.pending):
                    # A pending transaction was to replace this entry: it now
                    # reserves its new amounts whole.
                    state = replace(
                        state,
                        pending=tuple(
                            replace(p, old={k: v for k, v in p.old.items() if k != claim_uuid})
                            for p in old.pending
                        ),
                    )
                new = self._next_state(old, state, now, bump=True)
                if self._cas(old, new, now, [(q.DELETE_ROW, [provider_uuid, "l:" + claim_uuid])]):
                    self._bury(claim_uuid, provider_uuid, "released")
                    _events.add_events(self, claim_events(entry.claim(), RELEASED, now))
                    return
        raise GenerationConflict(f"provider {provider_uuid} kept changing: retry")

    def get_claim(self, claim_uuid: str) -> Claim:
        provider_uuid = self._locate(claim_uuid)
        rows = []
        if provider_uuid:
            # In the provider's home, where the claim was decided: a global
            # QUORUM would fail this cell's agents while another DC is down.
            home = self._home(provider_uuid)
            rows = self._run(q.READ_ENTRY, [provider_uuid, "l:" + claim_uuid], cell=home)
        entry = _entry_from_row(rows[0]) if rows else None
        if entry is None or not entry.live(self.clock()):
            raise NotFound(f"no live claim {claim_uuid}", kind="claim", uuid=claim_uuid)
        return entry.claim()

    def list_claims(
        self,
        *,
        provider_uuid: str | None = None,
        consumer_uuid: str | None = None,
        request_uuid: str | None = None,
        group: str | None = None,
        status: ClaimStatus | None = None,
    ) -> list[Claim]:
        now = self.clock()
        if provider_uuid is not None:
            try:
                part = self._read_partition(provider_uuid, serial=False)
                if part.state.pending and self._settle_met(part.state):
                    part = self._read_partition(provider_uuid, serial=False)
            except NotFound:
                return []
            entries = list(part.entries.values())
        elif consumer_uuid is not None:
            # Finishes a decided transaction still holding the consumer first.
            home = self._consumer_home(consumer_uuid)
            self._read_consumer(consumer_uuid, home=home)
            entries = self._entries_by(
                "consumer_uuid", consumer_uuid, cell=self._consumer_cell(home)
            )
        elif request_uuid is not None or group is not None:
            column, value = (
                ("request_uuid", request_uuid) if request_uuid is not None else ("grp", group)
            )
            entries = self._entries_by(column, value or "")
            # A transaction writes no entry of a request or group, but may
            # replace one; the replaced entry's consumer stays locked until
            # every provider is rolled forward.
            if self._settle_consumers(e.consumer_uuid for e in entries):
                entries = self._entries_by(column, value or "")
        else:
            entries = [e for e in map(_entry_from_row, self._run(q.ALL_ENTRIES)) if e]
        out = [
            e
            for e in entries
            if e.live(now)
            and (provider_uuid is None or e.provider_uuid == provider_uuid)
            and (consumer_uuid is None or e.consumer_uuid == consumer_uuid)
            and (request_uuid is None or e.request_uuid == request_uuid)
            and (group is None or e.group == group)
            and (status is None or e.status == status)
        ]
        out.sort(key=lambda e: (e.created_at, e.seq, e.uuid))
        return [e.claim() for e in out]

    def expire_claims(self) -> int:
        now = self.clock()
        # Locks of writers that died before writing any pending part are
        # found only here (no provider names them).
        for r in self._run(q.STALE_LOCKS, [now]):
            if r.txn is not None:
                with self._unless_cell_lost("a lock of consumer " + r.uuid):
                    self._finish(r.txn, consumer=r.uuid)
        providers = {r.provider_uuid for r in self._run(q.STALE_HOLDS, [now])}
        providers |= {r.provider_uuid for r in self._run(q.EXPIRED_ENTRIES, [now])}
        removed = 0
        for uuid in sorted(providers):
            with self._unless_cell_lost("provider " + uuid):
                removed += self._sweep(uuid)
        return removed

    @contextlib.contextmanager
    def _unless_cell_lost(self, what: str) -> Iterator[None]:
        """The sweep goes on past what is homed in a cell that is down: the
        next sweep after it is back finds it again (docs/cells.md)."""
        try:
            yield
        except CellUnavailable as exc:
            log.warning("expiry sweep: %s left for later: %s", what, exc.message)

    def _sweep(self, uuid: str) -> int:
        """Finish the transactions a dead writer left past their deadline,
        then drop the provider's expired claims (rows and holds), no
        generation bump: an expired claim already counted for nothing."""
        try:
            self._settled_state(uuid, serial=True)
        except NotFound:
            return 0
        return self._sweep_claims(uuid)

    def _sweep_claims(self, uuid: str) -> int:
        with self._lock(uuid):
            for attempt in range(CAS_ATTEMPTS):
                _backoff(attempt)
                now = self.clock()
                try:
                    part = self._read_partition(uuid)
                except NotFound:
                    return 0
                old = part.state
                dead = {h[0] for h in old.holds if h[1] <= now}
                dead |= {
                    e.uuid
                    for e in part.entries.values()
                    if e.status == ClaimStatus.CLAIMED and not e.live(now)
                }
                if not dead:
                    return 0
                new = self._next_state(old, old, now, bump=False)
                extra = [(q.DELETE_ROW, [uuid, "l:" + d]) for d in dead]
                if self._cas(old, new, now, extra):
                    for d in dead:
                        self._bury(d, uuid, "expired")
                    self.expired_seen += len(dead)
                    gone = [e.claim() for e in part.entries.values() if e.uuid in dead]
                    _events.add_events(
                        self, [x for c in gone for x in claim_events(c, EXPIRED, now)]
                    )
                    return len(dead)
        return 0

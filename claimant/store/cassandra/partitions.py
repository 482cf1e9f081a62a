"""A provider partition's compare-and-set: reading its state (and the
cache of it), the statements of a new state, the CAS and the re-read of a
write whose outcome is unknown."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT
from cassandra.query import BatchStatement, BatchType

from claimant.model import CellUnavailable, GenerationConflict, NotFound, StoreUnavailable, new_uuid
from claimant.store._common import generation_conflict
from claimant.store.cassandra import queries as q
from claimant.store.cassandra.errors import (
    _DRIVER_ERRORS,
    OutcomeUnknown,
    _backoff,
    _CellLostMidWrite,
    _is_unknown_outcome,
    _pause,
)
from claimant.store.cassandra.state import (
    CAS_ATTEMPTS,
    MAX_TTL,
    RESOLVE_ATTEMPTS,
    SHARING_TRAIT,
    TTL_GRACE,
    _Change,
    _Entry,
    _entry_from_row,
    _inv_to_json,
    _Partition,
    _State,
    _state_from_row,
)
from claimant.store.cassandra.statements import Statements, _applied
from claimant.store.cassandra.txn import pending_to_text

log = logging.getLogger(__name__)


class Partitions(Statements):
    # -- reading provider partitions --------------------------------------------------------
    def _remember(self, state: _State) -> _State:
        if len(self._states) > 200_000:
            self._states.clear()
        self._states[state.uuid] = state
        return state

    def _from_row_cached(self, row: Any) -> _State | None:
        """A row's state, reusing the parsed one already held for its version
        (one version is one state; only the heartbeat lives outside it)."""
        known = self._states.get(row.provider_uuid)
        if known is not None and known.version == row.version:
            if known.heartbeat_at != row.heartbeat_at:
                known = self._remember(replace(known, heartbeat_at=row.heartbeat_at))
            return known
        state = _state_from_row(row)
        return self._remember(state) if state is not None else None

    def _read_state(self, uuid: str, *, serial: bool = False) -> _State:
        # A plain read is local (may be stale); a SERIAL one goes home.
        cell = self._home(uuid, found=True) if serial else None
        rows = self._run(q.READ_STATE, [uuid], serial=serial, cell=cell)
        state = _state_from_row(rows[0]) if rows else None
        if state is None:
            self._states.pop(uuid, None)
            raise NotFound(f"provider {uuid} not found", kind="provider", uuid=uuid)
        return self._remember(state)

    def _read_partition(self, uuid: str, *, serial: bool = True) -> _Partition:
        cell = self._home(uuid, found=True) if serial else None
        rows = self._run(q.READ_PARTITION, [uuid], serial=serial, cell=cell)
        state = _state_from_row(rows[0]) if rows else None
        if state is None:
            self._states.pop(uuid, None)
            raise NotFound(f"provider {uuid} not found", kind="provider", uuid=uuid)
        part = _Partition(self._remember(state))
        for row in rows:
            entry = _entry_from_row(row)
            if entry is not None:
                part.entries[entry.uuid] = entry
            elif row.ckey is not None and row.ckey.startswith("f:"):
                part.fences.add(row.ckey[2:])
        return part

    def _all_states(self) -> list[_State]:
        return [s for s in map(_state_from_row, self._run(q.ALL_STATES)) if s is not None]

    # -- writing provider partitions ----------------------------------------------------------
    def _index_rows(self, state: _State, now: float) -> list[tuple[str, list[Any]]]:
        """The candidate index rows of ``state``: free counting live claims
        (conservative once they expire), free without them, and when the
        last of those claims expires."""
        until: dict[str, float] = {}
        for _, expires, amounts in state.live_holds(now):
            for rc in amounts:
                until[rc] = max(until.get(rc, 0.0), expires)
        used = state.used(now)
        fit = state.fit_inventories()
        out = []
        for rc in state.inventories:
            cap = fit[rc].capacity if rc in fit else 0
            out.append(
                (
                    q.WRITE_INDEX_ROW,
                    [
                        cap - used.get(rc, 0),
                        cap - state.alloc_used.get(rc, 0),
                        until.get(rc),
                        state.uuid,
                        "i:" + rc,
                    ],
                )
            )
        return out

    def _next_state(self, old: _State | None, new: _State, now: float, *, bump: bool) -> _State:
        return replace(
            new,
            generation=(old.generation + 1 if bump and old is not None else new.generation),
            version=new_uuid(),
            prev_version=old.version if old is not None else None,
            updated_at=now,
            holds=tuple(new.live_holds(now)),
        )

    def _state_params(self, state: _State, old: _State | None = None) -> list[Any]:
        """Values of WRITE_STATE; the last one is the version the write expects."""
        return [
            state.generation,
            state.version,
            state.prev_version,
            state.name,
            state.type,
            state.parent_uuid,
            state.root_uuid,
            json.dumps(state.attributes, sort_keys=True),
            set(state.traits) or None,
            set(state.aggregates) or None,
            state.enabled,
            state.created_at,
            state.seq,
            state.updated_at,
            _inv_to_json(state.inventories),
            {rc: n for rc, n in state.alloc_used.items() if n} or None,
            json.dumps([list(h) for h in state.holds]),
            pending_to_text(state.pending),
            state.cell,
            state.uuid,
            old.version if old is not None else None,
        ]

    def _cas(
        self,
        old: _State | None,
        new: _State,
        now: float,
        extra: list[tuple[str, list[Any]]] = (),  # type: ignore[assignment]
        *,
        entry_key: str | None = None,
        absent_key: str | None = None,
    ) -> bool:
        """Write ``new`` (whose version is fresh) if the partition is still at
        ``old``'s version: ONE conditional batch on the provider's partition.
        An unknown outcome is resolved by a SERIAL re-read."""
        # One Paxos group per provider: its home cell's (docs/cells.md).
        route = self._route(new.cell)
        batch = BatchStatement(
            batch_type=BatchType.LOGGED,
            consistency_level=ConsistencyLevel.LOCAL_QUORUM if route else self.consistency,
            serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL if route else self.serial,
        )
        batch.add(self._prep(q.WRITE_STATE), self._state_params(new, old))
        # Claims that expired leave the ledger with this write.
        if old is not None:
            kept = {h[0] for h in new.holds}
            for h in old.holds:
                if h[0] not in kept and h[1] <= now:
                    extra = [*extra, (q.DELETE_ROW, [new.uuid, "l:" + h[0]])]
            for rc in old.inventories.keys() - new.inventories.keys():
                extra = [*extra, (q.DELETE_ROW, [new.uuid, "i:" + rc])]
        for cql, params in [*self._index_rows(new, now), *extra]:
            batch.add(self._prep(cql), params)
        shared_before = old is not None and SHARING_TRAIT in old.traits
        shares = SHARING_TRAIT in new.traits
        if shares and not shared_before:
            # Before the write, so that the index is never short of a provider
            # that shares (a stale row only costs the candidates' shortcut).
            self._run(q.ADD_SHARING, [new.uuid])
        self.stats["cas"] += 1
        try:
            rs = self._use_keyspace().execute(
                batch, execution_profile=route or EXEC_PROFILE_DEFAULT
            )
            applied = _applied(rs.one())
        except _DRIVER_ERRORS as exc:
            if not _is_unknown_outcome(exc):
                raise self._fail(exc, route) from exc
            self.stats["unknown"] += 1
            log.warning("outcome of a write to provider %s unknown (%s): re-reading", new.uuid, exc)
            applied = self._resolve(new, entry_key, absent_key)
        if applied:
            self._remember(new)
            if shared_before and not shares:
                self._run(q.DROP_SHARING, [new.uuid])
        else:
            self.stats["cas_lost"] += 1
            self._states.pop(new.uuid, None)
        return applied

    def _resolve(self, new: _State, entry_key: str | None, absent_key: str | None = None) -> bool:
        """Did a CAS whose reply was lost apply? A SERIAL read finishes or
        supersedes any Paxos round still in flight, so what it sees is final:
        the claim row is there (or the partition carries the new version, or
        the one after it, or still the one the write expected: not applied)
        exactly when the write applied."""
        last: BaseException | None = None
        home = new.cell
        for attempt in range(2):
            try:
                if entry_key is not None:
                    return bool(
                        self._run(q.READ_ENTRY_KEY, [new.uuid, entry_key], serial=True, cell=home)
                    )
                if absent_key is not None:
                    return not self._run(
                        q.READ_ENTRY_KEY, [new.uuid, absent_key], serial=True, cell=home
                    )
                rows = self._run(q.READ_VERSION, [new.uuid], serial=True, cell=home)
                if not rows:
                    return False
                if new.version in (rows[0].version, rows[0].prev_version):
                    return True
                if rows[0].version is None or rows[0].version == new.prev_version:
                    return False
                raise OutcomeUnknown(
                    f"a write to provider {new.uuid} timed out and the provider has moved on "
                    "since: re-read it before retrying",
                    uuid=new.uuid,
                )
            except OutcomeUnknown:
                raise
            except StoreUnavailable as exc:
                last = exc
                _pause(attempt)
        if isinstance(last, CellUnavailable):
            raise _CellLostMidWrite(
                f"cell {home} became unreachable during a write to provider {new.uuid};"
                " an unconfirmed claim it may have written expires with its TTL",
                uuid=new.uuid,
                cell=home,
            )
        raise OutcomeUnknown(
            f"a write to provider {new.uuid} timed out and re-reading it failed: {last}; "
            "an unconfirmed claim it may have written expires with its TTL",
            uuid=new.uuid,
        )

    def _ttl(self, expires_at: float | None, now: float) -> int:
        if expires_at is None:
            return 0
        # Cassandra counts TTLs on its own clock, the contract on ``self.clock``:
        # keep the row until both agree it is gone.
        left = max(expires_at - now, expires_at - time.time(), 0.0)
        return min(math.ceil(left) + TTL_GRACE, MAX_TTL)

    def _entry_stmt(self, e: _Entry, now: float) -> tuple[str, list[Any]]:
        return (
            q.INSERT_ENTRY,
            [
                e.provider_uuid,
                "l:" + e.uuid,
                e.consumer_uuid,
                {rc: -n for rc, n in e.amounts.items()},
                e.status.value,
                e.request_uuid,
                e.group,
                e.project_id,
                e.user_id,
                e.created_at,
                e.expires_at,
                e.seq or time.time(),
                self._ttl(e.expires_at, now),
            ],
        )

    def _update(
        self,
        uuid: str,
        expected_generation: int | None,
        change: Callable[[_Partition, float], _Change | None],
        *,
        bump: bool = True,
        need_entries: bool = False,
        entry_key: str | None = None,
        absent_key: str | None = None,
        first: _Partition | None = None,
    ) -> _State:
        """Read at SERIAL, check the generation, apply ``change``, CAS; a CAS
        lost to a write that left the generation alone (a heartbeat does
        not write here; an expiry sweep does) is retried. ``change`` returning
        None means there is nothing (left) to do. ``entry_key`` / ``absent_key``
        name a row whose presence / absence shows the write applied, should
        its outcome be unknown. ``first``: the partition as last read or
        written by this process, tried before reading (a read that returned
        a version returned exactly that version's partition)."""
        with self._lock(uuid):
            for attempt in range(CAS_ATTEMPTS):
                _backoff(attempt)
                now = self.clock()
                if first is not None:
                    part, first = first, None
                elif need_entries:
                    part = self._read_partition(uuid)
                else:
                    part = _Partition(self._read_state(uuid, serial=True))
                old = part.state
                if expected_generation is not None and old.generation != expected_generation:
                    raise generation_conflict(uuid, old.generation, expected_generation)
                changed = change(part, now)
                if changed is None:
                    return old
                new, extra = changed
                new = self._next_state(old, new, now, bump=bump)
                if self._cas(old, new, now, extra, entry_key=entry_key, absent_key=absent_key):
                    return new
        raise GenerationConflict(
            f"provider {uuid} kept changing under {CAS_ATTEMPTS} attempts: retry", uuid=uuid
        )

    def _lwt_sure(
        self,
        cql: str,
        params: list[Any],
        *,
        done: Callable[[], bool],
        cell: str | None = None,
    ) -> tuple[bool, Any]:
        """A single-statement LWT whose unknown outcome is settled by ``done``
        (a SERIAL read), retried while that says it did not apply. Callers'
        conditions make a repeat harmless. ``cell``: what it writes is homed
        there (``_route``)."""
        stmt = self._prep(cql)
        route = self._route(cell)
        profile = route or EXEC_PROFILE_DEFAULT
        for attempt in range(RESOLVE_ATTEMPTS):
            _backoff(attempt)
            try:
                row = (
                    self._use_keyspace().execute(stmt.bind(params), execution_profile=profile).one()
                )
            except _DRIVER_ERRORS as exc:
                if not _is_unknown_outcome(exc):
                    raise self._fail(exc, route) from exc
                self.stats["unknown"] += 1
                try:
                    if done():
                        return True, None
                except StoreUnavailable:
                    pass
                _pause(attempt)
                continue
            return _applied(row), row
        raise OutcomeUnknown("a lightweight transaction kept timing out: retry")

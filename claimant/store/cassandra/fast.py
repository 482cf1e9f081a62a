"""The one-provider fast path of an allocation write (issue 10).

A Placement write of one consumer whose allocations, old and new, are all on
one provider (Nova's ``PUT /allocations/{instance}``) is committed by that
provider's own LWT instead of a ``txns`` record: lock the consumer (its lock
carries the plan), write the allocation on the provider (the commit point),
release the consumer at its new generation. Three LWTs instead of six.
Whoever meets the lock finishes it: the entry is there -> committed; else,
past the deadline, a fence row in the provider's partition (with a new
version) keeps the writer's LWT from ever applying -> aborted.
docs/cassandra.md ("One consumer on one provider") gives the argument.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from cassandra.cluster import EXEC_PROFILE_DEFAULT

from claimant.model import (
    ClaimantError,
    ClaimStatus,
    ConsumerAllocations,
    GenerationConflict,
    InvalidInput,
    NotFound,
)
from claimant.store._common import does_not_fit, generation_conflict
from claimant.store.cassandra import queries as q
from claimant.store.cassandra.errors import _DRIVER_ERRORS, OutcomeUnknown, _translate
from claimant.store.cassandra.state import (
    _Change,
    _ConsumerHome,
    _Entry,
    _Partition,
    _State,
    _without,
)
from claimant.store.cassandra.txn import (
    ABORTED,
    COMMITTED,
    PENDING,
    TXN_DEADLINE,
    TXN_RECORD_TTL,
    FastPlan,
    entry_uuid,
    home_param,
    new_txn_id,
    txn_cell,
)

if TYPE_CHECKING:
    from claimant.store.cassandra.settle import Settling

log = logging.getLogger(__name__)

# A fence outlives any writer's last attempt by far (as a record does).
FENCE_TTL: Final = TXN_RECORD_TTL


class _Fallback(Exception):
    """The write is not for the fast path after all: nothing was written."""


class _GiveUp(Exception):
    """Past the deadline, or fenced by whoever met the lock: not written."""


def write(store: Settling, w: ConsumerAllocations) -> bool:
    """Write ``w`` by the fast path; False if it does not qualify (nothing
    written, the caller runs the transaction)."""
    target = _target(store, w)
    if target is None:
        return False
    puuid, pcell, cell, home = target
    c = w.consumer_uuid
    now = store.clock()
    known = _consumer_at(store, w, home)
    if known is None:
        return False
    generation, ctype = known
    if generation is not None and _elsewhere(store, c, puuid, now, cell):
        return False  # a move: the transaction
    expected = w.provider_generations.get(puuid)
    try:
        # A plain read: the LWT conditions on the version it returned.
        part = store._read_partition(puuid, serial=False)
    except NotFound:
        return False  # the transaction says so, the same way
    if expected is not None and part.state.generation != expected:
        raise generation_conflict(puuid, part.state.generation, expected)
    txn = new_txn_id(cell, fast=True)
    deadline = now + TXN_DEADLINE
    entry = entry_uuid(txn, puuid, c)
    # Refuse what cannot fit before writing anything.
    _change(store, part, now, w, txn, deadline, entry)
    plan = FastPlan(puuid, w.project_id, w.user_id, ctype, generation)
    located = _lock(store, c, txn, deadline, plan, entry, pcell, cell)
    if located is None:
        return False
    store.stats["fast"] += 1
    store._hook("fast-locked", txn)
    gone = _write_entry(
        store, w, part, expected, located, txn, deadline, entry, now, cell, generation is None
    )
    if gone is None:
        return False
    store._hook("fast-committed", txn)
    try:
        _commit_consumer(store, c, txn, plan)
    except ClaimantError as exc:
        # Committed is durable: whoever meets the lock finishes it.
        log.warning("fast write %s committed, consumer left to readers: %s", txn, exc)
    for e in gone:
        store._bury(e.uuid, puuid, "released")
    return True


def _target(
    store: Settling, w: ConsumerAllocations
) -> tuple[str, str | None, str | None, _ConsumerHome] | None:
    """(provider, its cell, the write's cell, the consumer's home) of a write
    to one provider whose consumer's home agrees; None: not for this path."""
    providers = {p for p, a in w.allocations.items() if a}
    if len(providers) != 1 or set(w.provider_generations) - providers:
        return None
    (puuid,) = providers
    # The consumer's home and the provider's must agree (docs/cells.md); the
    # transaction refuses or explains whatever does not.
    home = store._consumer_home(w.consumer_uuid)
    pcell = store._home(puuid)
    if home.new and home.unreachable and w.expected_generation is not None:
        return None
    if not home.new and home.cell not in (None, pcell):
        return None
    return puuid, pcell, pcell if home.new else home.cell, home


def _consumer_at(
    store: Settling, w: ConsumerAllocations, home: _ConsumerHome
) -> tuple[int | None, str | None] | None:
    """(the generation the lock conditions on, the consumer's type); None:
    the consumer is locked by a write in flight (the transaction waits)."""
    ctype = w.consumer_type or None
    if w.expected_generation == "any":
        consumer, holder = store._read_consumer(w.consumer_uuid, serial=True, home=home)
        if holder is not None:
            return None
        generation = None if consumer is None else consumer.generation
        ctype = ctype or (consumer.consumer_type if consumer else None) or None
    else:
        # The lock's condition checks it; no read needed.
        generation = w.expected_generation  # type: ignore[assignment]
    return generation, ctype


def _lock(
    store: Settling,
    c: str,
    txn: str,
    deadline: float,
    plan: FastPlan,
    entry: str,
    pcell: str | None,
    cell: str | None,
) -> Any:
    """Lock the consumer for ``txn``; the locator's write (a future) if it
    was locked, else None (waited for: the transaction takes over)."""
    session = store._use_keyspace()
    # Findable by uuid before it exists (as a roll-forward's entries); sent
    # with the lock, waited for before the write.
    located = session.execute_async(
        store._prep(q.WRITE_LOCATOR).bind([entry, plan.provider, 0]),
        execution_profile=store._route(pcell) or EXEC_PROFILE_DEFAULT,
    )
    applied, row = store._lwt_sure(
        q.LOCK_CONSUMER_FAST,
        [txn, deadline, plan.to_text(), home_param(cell), c, plan.generation],
        done=lambda: store._consumer_txn(c, cell) == txn,
        cell=cell,
    )
    if not applied and not (row is not None and row.txn == txn):
        # Locked by another write or at another generation: the transaction
        # finishes what it can and answers precisely.
        _wait(located)
        return None
    return located


def _write_entry(
    store: Settling,
    w: ConsumerAllocations,
    part: _Partition,
    expected: int | None,
    located: Any,
    txn: str,
    deadline: float,
    entry: str,
    now: float,
    cell: str | None,
    created: bool,
) -> list[Any] | None:
    """With the consumer locked, the entry onto its provider (the commit
    point); the entries it replaced, or None: released, for the transaction.
    The lock is released on whatever fails before the commit (``created``: the
    consumer was new)."""
    c = w.consumer_uuid
    puuid = part.state.uuid
    try:
        # Locked: the consumer's allocations cannot change under us, but a
        # claim made since could be confirmed unseen elsewhere.
        if _elsewhere(store, c, puuid, now, cell):
            raise _Fallback
        _wait(located)
        gone: list[Any] = []

        def change(p: _Partition, at: float) -> _Change | None:
            if entry in p.entries:
                return None
            return _change(store, p, at, w, txn, deadline, entry, gone)

        store._update(
            puuid,
            expected,
            change,
            bump=True,
            need_entries=True,
            entry_key="l:" + entry,
            first=part,
        )
    except OutcomeUnknown:
        raise  # the write may have applied: the lock stays for whoever meets it
    except _Fallback:
        _release(store, c, txn, created)
        return None
    except _GiveUp:
        _release(store, c, txn, created)
        raise GenerationConflict(
            "the write outlived its deadline and another request abandoned it; "
            "nothing was written: retry"
        ) from None
    except BaseException:
        _release(store, c, txn, created)
        raise
    return gone


def finish(store: Settling, txn: str, consumer: str) -> str:
    """Resolve a fast-path lock met on ``consumer``: committed if its entry is
    on the provider; else, past its deadline, fenced and aborted; else
    PENDING (left alone). Idempotent."""
    rows = store._run(q.GET_CONSUMER_FAST, [consumer], serial=True, cell=txn_cell(txn))
    if not rows or rows[0].txn != txn:
        return COMMITTED  # finished by someone: read again
    plan = FastPlan.from_text(rows[0].txn_plan)
    if plan is None:
        log.error("fast write %s locked consumer %s without a plan", txn, consumer)
        return PENDING
    entry = entry_uuid(txn, plan.provider, consumer)
    home = store._home(plan.provider)
    if store._run(q.READ_ENTRY_KEY, [plan.provider, "l:" + entry], serial=True, cell=home):
        _commit_consumer(store, consumer, txn, plan)
        store.stats["txns_resolved"] += 1
        return COMMITTED
    if (rows[0].txn_deadline or 0.0) > store.clock():
        return PENDING
    applied: list[bool] = []

    def fence(p: _Partition, now: float) -> _Change | None:
        if entry in p.entries:
            applied.append(True)
            return None
        if txn in p.fences:
            return None
        return p.state, [(q.WRITE_FENCE, [plan.provider, "f:" + txn, FENCE_TTL])]

    # No provider: nothing can be written there either.
    with contextlib.suppress(NotFound):
        store._update(
            plan.provider, None, fence, bump=False, need_entries=True, entry_key="f:" + txn
        )
    if applied:
        _commit_consumer(store, consumer, txn, plan)
        status = COMMITTED
    else:
        log.warning("fast write %s is past its deadline: fenced and aborted", txn)
        _release(store, consumer, txn, plan.generation is None)
        status = ABORTED
    store.stats["txns_resolved"] += 1
    return status


def _elsewhere(store: Settling, consumer: str, puuid: str, now: float, cell: str | None) -> bool:
    return any(
        e.live(now) and e.provider_uuid != puuid
        for e in store._entries_by("consumer_uuid", consumer, cell=cell)
    )


def _change(
    store: Settling,
    part: _Partition,
    now: float,
    w: ConsumerAllocations,
    txn: str,
    deadline: float,
    entry: str,
    gone: list[Any] | None = None,
) -> _Change:
    """The provider with the consumer's confirmed entries there replaced by
    one new entry, if it fits (as the transaction's check once committed, and
    against a pending reshape's smaller capacity)."""
    if txn in part.fences or now > deadline:
        raise _GiveUp
    st = part.state
    puuid = st.uuid
    c = w.consumer_uuid
    amounts = dict(w.allocations[puuid])
    old = [
        e
        for e in part.entries.values()
        if e.consumer_uuid == c and e.status == ClaimStatus.CONFIRMED
    ]
    problems = [
        p
        for rc, n in amounts.items()
        if rc in st.inventories
        for p in st.inventories[rc].amount_problems(n)
    ]
    if problems:
        raise InvalidInput("; ".join(problems), uuid=puuid)
    reasons = _over(st, now, old, amounts)
    if reasons:
        raise does_not_fit(puuid, reasons)
    state = _without(st, old)
    alloc = dict(state.alloc_used)
    for rc, n in amounts.items():
        alloc[rc] = alloc.get(rc, 0) + n
    new_entry = _Entry(
        uuid=entry,
        provider_uuid=puuid,
        consumer_uuid=c,
        amounts=amounts,
        status=ClaimStatus.CONFIRMED,
        request_uuid=None,
        group=None,
        project_id=w.project_id,
        user_id=w.user_id,
        created_at=now,
        expires_at=None,
    )
    extra = [(q.DELETE_ROW, [puuid, "l:" + e.uuid]) for e in old]
    extra.append(store._entry_stmt(new_entry, now))
    if gone is not None:
        gone[:] = old
    return replace(state, alloc_used={rc: n for rc, n in alloc.items() if n}), extra


def _over(st: _State, now: float, old: list[_Entry], amounts: dict[str, int]) -> list[str]:
    """Why ``amounts`` in place of the entries ``old`` does not fit (none: it
    fits)."""
    before = st.used(now)
    after = dict(before)
    for e in old:
        for rc, n in e.amounts.items():
            after[rc] = after.get(rc, 0) - n
    for rc, n in amounts.items():
        after[rc] = after.get(rc, 0) + n
    fit = st.fit_inventories()
    reasons = []
    for rc, n in sorted(after.items()):
        if n <= 0:
            continue
        inv = st.inventories.get(rc)
        if inv is None:
            reasons.append(f"{rc}: provider has no inventory of this class")
            continue
        if n <= before.get(rc, 0):
            # Placement lets a write through that does not grow a class
            # already over capacity (as the transaction does).
            continue
        # A pending reshape may commit a smaller capacity, or none.
        cap = min(inv.capacity, fit[rc].capacity) if rc in fit else 0
        if n > cap:
            reasons.append(f"{rc}: used {n} would exceed capacity {cap}")
    return reasons


def _commit_consumer(store: Settling, consumer: str, txn: str, plan: FastPlan) -> None:
    generation = (plan.generation or 0) + 1
    cell = txn_cell(txn)
    if plan.consumer_type is None:
        cql = q.COMMIT_CONSUMER_FAST_KEEP_TYPE
        params: list[Any] = [
            plan.project_id,
            plan.user_id,
            generation,
            home_param(cell),
            consumer,
            txn,
        ]
    else:
        cql = q.COMMIT_CONSUMER_FAST
        params = [
            plan.project_id,
            plan.user_id,
            plan.consumer_type,
            generation,
            home_param(cell),
            consumer,
            txn,
        ]
    store._lwt_sure(cql, params, done=lambda: store._consumer_txn(consumer, cell) != txn, cell=cell)


def _release(store: Settling, consumer: str, txn: str, created: bool) -> None:
    """Unlock after a write that did not apply (a consumer it was creating
    goes). Left to whoever meets the lock if the store is unreachable."""
    cell = txn_cell(txn)
    cql, params = (
        (q.DROP_CONSUMER, [consumer, txn])
        if created
        else (q.UNLOCK_CONSUMER_FAST, [home_param(cell), consumer, txn])
    )
    try:
        store._lwt_sure(
            cql, params, done=lambda: store._consumer_txn(consumer, cell) != txn, cell=cell
        )
    except ClaimantError as exc:
        log.warning("fast write %s: consumer %s left locked: %s", txn, consumer, exc)


def _wait(future: Any) -> None:
    try:
        future.result()
    except _DRIVER_ERRORS as exc:
        raise _translate(exc) from exc

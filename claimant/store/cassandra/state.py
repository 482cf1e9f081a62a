"""The decision state of one provider partition (its row and its claim
entries), the store's limits, and the pure checks and errors over them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from claimant.model import (
    Claim,
    ClaimStatus,
    InvalidInput,
    Inventory,
    Provider,
    ProviderUsage,
    RequestGroup,
    Usage,
)
from claimant.model.errors import CROSS_CELL
from claimant.model.types import AttributeConstraint
from claimant.store.cassandra.txn import Pending, pending_from_text

# Cassandra removes a claim row this long after the claim expired: the row
# only has to outlive the store clock's expiry, which every read applies.
TTL_GRACE = 60


# How long a released or expired claim is remembered (as the SQLite store).
TOMBSTONE_TTL = 86400.0


MAX_TTL = 630_720_000  # Cassandra 5.0's 20-year cap


# Attempts of a write that lost its transaction to a change that left the
# caller's generation alone (another claim's release, a confirm, a sweep).
CAS_ATTEMPTS = 40


# SERIAL re-reads of a write whose outcome is unknown before giving up (503).
RESOLVE_ATTEMPTS = 6


# How long a write that named no consumer generation waits for another write
# in flight on the same consumer (real seconds).
LOCK_WAIT = 5.0


MIN_TOKEN, MAX_TOKEN = -(2**63), 2**63 - 1  # Murmur3Partitioner's ring


# Candidate pages read before settling for fewer than ``limit`` candidates.
MAX_PAGES = 20


# Index rows per page when candidate_trees reads a class's index.
TREE_FETCH = 1000


# Placement's trait for a provider whose inventory every tree in one of its
# aggregates may use.
SHARING_TRAIT = "MISC_SHARES_VIA_AGGREGATE"


# Unconfirmed holds kept as JSON: [claim uuid, expires_at, {class: amount}].
Hold = tuple[str, float, dict[str, int]]


@dataclass(frozen=True, slots=True)
class _State:
    """A provider's static columns at one ``version``. Every change rewrites
    all of them, so one version names exactly one state."""

    uuid: str
    generation: int
    version: str
    prev_version: str | None
    name: str
    type: str
    parent_uuid: str | None
    root_uuid: str
    attributes: dict[str, Any]
    traits: frozenset[str]
    aggregates: frozenset[str]
    enabled: bool
    heartbeat_at: float | None
    created_at: float
    updated_at: float
    inventories: dict[str, Inventory]
    alloc_used: dict[str, int]
    holds: tuple[Hold, ...]
    # Real time of creation: orders providers created at one store-clock instant.
    seq: float = 0.0
    # Uncommitted parts of multi-provider transactions (txn.Pending).
    pending: tuple[Pending, ...] = ()
    # Home cell (docs/cells.md); None: made before cells, no home.
    cell: str | None = None

    def live_holds(self, now: float) -> list[Hold]:
        return [h for h in self.holds if h[1] > now]

    def held(self, now: float) -> dict[str, int]:
        """What allocations and live claims hold: what readers are shown."""
        used = dict(self.alloc_used)
        for _, _, amounts in self.live_holds(now):
            for rc, n in amounts.items():
                used[rc] = used.get(rc, 0) + n
        return used

    def used(self, now: float) -> dict[str, int]:
        """What a decision must count: ``held`` plus what pending
        transactions reserve (they may still commit)."""
        used = self.held(now)
        for item in self.pending:
            for rc, n in item.reserve().items():
                used[rc] = used.get(rc, 0) + n
        return used

    def fit_inventories(self) -> dict[str, Inventory]:
        """The inventories a decision checks against: while a reshape is
        pending, the smaller of the current and the new capacity of each
        class, and no class the reshape removes (either may become true)."""
        invs = dict(self.inventories)
        for item in self.pending:
            if item.inventories is None:
                continue
            for rc in list(invs):
                new = item.inventories.get(rc)
                if new is None:
                    del invs[rc]
                elif new.capacity < invs[rc].capacity:
                    invs[rc] = new
        return invs

    def pending_part(self, txn: str) -> Pending | None:
        return next((p for p in self.pending if p.txn == txn), None)

    def usages(self, now: float) -> dict[str, Usage]:
        used = self.held(now)
        return {
            rc: Usage(rc, inv.capacity, max(used.get(rc, 0), 0))
            for rc, inv in self.inventories.items()
        }

    def provider(self) -> Provider:
        return Provider(
            uuid=self.uuid,
            name=self.name,
            type=self.type,
            parent_uuid=self.parent_uuid,
            root_uuid=self.root_uuid,
            attributes=dict(self.attributes),
            traits=self.traits,
            aggregates=self.aggregates,
            inventories=dict(self.inventories),
            enabled=self.enabled,
            generation=self.generation,
            heartbeat_at=self.heartbeat_at,
            created_at=self.created_at,
            updated_at=self.updated_at,
            cell=self.cell,
        )

    def usage(self, now: float) -> ProviderUsage:
        return ProviderUsage(self.provider(), self.usages(now))


@dataclass(slots=True)
class _Entry:
    """A ledger row: a claim or an allocation (amounts positive here)."""

    uuid: str
    provider_uuid: str
    consumer_uuid: str
    amounts: dict[str, int]
    status: ClaimStatus
    request_uuid: str | None
    group: str | None
    project_id: str
    user_id: str
    created_at: float
    expires_at: float | None
    seq: float = 0.0

    def live(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now

    def claim(self) -> Claim:
        return Claim(**{n: getattr(self, n) for n in _CLAIM_FIELDS}, amounts=dict(self.amounts))

    @classmethod
    def of(cls, claim: Claim) -> _Entry:
        return cls(**{n: getattr(claim, n) for n in _CLAIM_FIELDS}, amounts=dict(claim.amounts))


# An entry is a claim plus its row's order (seq): every other field is the
# claim's, by name.
_CLAIM_FIELDS = tuple(f.name for f in fields(Claim) if f.name != "amounts")


@dataclass(slots=True)
class _Partition:
    state: _State
    entries: dict[str, _Entry] = field(default_factory=dict)
    # Fast-path writes that may never apply here (fast.py).
    fences: set[str] = field(default_factory=set)


def _inv_to_json(invs: dict[str, Inventory]) -> str:
    return json.dumps(
        {
            rc: [i.total, i.reserved, i.min_unit, i.max_unit, i.step_size, i.allocation_ratio]
            for rc, i in sorted(invs.items())
        }
    )


def _inv_from_json(text: str | None) -> dict[str, Inventory]:
    if not text:
        return {}
    return {rc: Inventory(rc, *v) for rc, v in json.loads(text).items()}


def _state_from_row(row: Any) -> _State | None:
    if row is None or row.version is None:
        return None
    return _State(
        uuid=row.provider_uuid,
        generation=row.generation,
        version=row.version,
        prev_version=row.prev_version,
        name=row.name,
        type=row.type,
        parent_uuid=row.parent_uuid,
        root_uuid=row.root_uuid,
        attributes=json.loads(row.attributes or "{}"),
        traits=frozenset(row.traits or ()),
        aggregates=frozenset(row.aggregates or ()),
        enabled=bool(row.enabled),
        heartbeat_at=row.heartbeat_at,
        created_at=row.created_at or 0.0,
        updated_at=row.updated_at or 0.0,
        inventories=_inv_from_json(row.inventories),
        alloc_used=dict(row.alloc_used or {}),
        holds=tuple((h[0], h[1], h[2]) for h in json.loads(row.holds or "[]")),
        seq=row.seq or 0.0,
        pending=pending_from_text(row.pending),
        cell=row.cell,
    )


def _entry_from_row(row: Any) -> _Entry | None:
    if row.ckey is None or not row.ckey.startswith("l:") or row.status is None:
        return None
    return _Entry(
        uuid=row.ckey[2:],
        provider_uuid=row.provider_uuid,
        consumer_uuid=row.consumer_uuid,
        amounts={rc: -n for rc, n in (row.amounts or {}).items()},
        status=ClaimStatus(row.status),
        request_uuid=row.request_uuid,
        group=row.grp,
        project_id=row.project_id or "",
        user_id=row.user_id or "",
        created_at=row.entry_created or 0.0,
        expires_at=row.expires_at,
        seq=row.entry_seq or 0.0,
    )


def _attr_matches(c: AttributeConstraint, actual: Any) -> bool:
    """Strings compare with strings, numbers (and booleans) with numbers."""
    if actual is None:
        return c.op == "!="
    values = list(c.value) if c.op == "in" else [c.value]

    def norm(v: Any) -> Any:
        return v if isinstance(v, str) else float(v)

    a = norm(actual)
    vs = [norm(v) for v in values]
    if any(isinstance(v, str) != isinstance(a, str) for v in vs):
        return c.op == "!="
    v = vs[0]
    match c.op:
        case "==":
            return bool(a == v)
        case "!=":
            return bool(a != v)
        case "<":
            return bool(a < v)
        case "<=":
            return bool(a <= v)
        case ">":
            return bool(a > v)
        case ">=":
            return bool(a >= v)
        case "in":
            return a in vs
    return False


def _fits(state: _State, group: RequestGroup, used: dict[str, int]) -> bool:
    invs = state.fit_inventories() if state.pending else state.inventories
    for rc, amount in group.resources.items():
        inv = invs.get(rc)
        if inv is None or inv.amount_problems(amount):
            return False
        if used.get(rc, 0) + amount > inv.capacity:
            return False
    return True


@dataclass(slots=True)
class _Plan:
    """One provider's part of a multi-provider write: new inventories (the
    reshaper), the generation the caller saw, consumer -> (project, user,
    amounts) to allocate. Every consumer of the write loses what it held."""

    inventories: dict[str, Inventory] | None = None
    expected_generation: int | None = None
    add: dict[str, tuple[str, str, dict[str, int]]] = field(default_factory=dict)


class _Busy(Exception):
    """A consumer is locked by another transaction still in flight, or moved
    since it was read."""

    def __init__(self, consumer: str) -> None:
        super().__init__(consumer)
        self.consumer = consumer


@dataclass(frozen=True, slots=True)
class _ConsumerHome:
    """Where a consumer's compare-and-sets go (``CassandraStore._consumer_home``).

    ``new``: no row in any cell that answered (``unreachable``: the cells
    that did not); else ``cell`` is its home, None for a global consumer
    (made before schema V10, on providers without a home, or on one cell)."""

    cell: str | None
    new: bool = False
    unreachable: tuple[str, ...] = ()


_GLOBAL = _ConsumerHome(None)


def _without(state: _State, entries: Iterable[_Entry]) -> _State:
    """``state`` with ``entries`` taken out of its holds and allocations."""
    gone = {e.uuid for e in entries}
    alloc = dict(state.alloc_used)
    for e in entries:
        if e.status == ClaimStatus.CONFIRMED:
            for rc, n in e.amounts.items():
                alloc[rc] = alloc.get(rc, 0) - n
    return replace(
        state,
        alloc_used={rc: n for rc, n in alloc.items() if n},
        holds=tuple(h for h in state.holds if h[0] not in gone),
    )


_Change = tuple[_State, list[tuple[str, list[Any]]]]


def _cross_cell(why: str, cells: Iterable[str | None]) -> InvalidInput:
    named = sorted(c or "global" for c in cells)
    return InvalidInput(
        f"this allocation write would span cells ({why}): a consumer's allocations"
        " are all in its home cell; to move one to another cell, delete its"
        " allocations and write them anew (docs/cells.md)",
        code=CROSS_CELL,
        cells=named,
    )

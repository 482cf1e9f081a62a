"""The Cassandra store: one partition per provider, one lightweight transaction
per change to it. docs/cassandra.md explains the layout and the round trips."""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import math
import random
import re
import threading
import time
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, ParamSpec, TypeVar

from cassandra import (
    ConsistencyLevel,
    DriverException,
    OperationTimedOut,
    ReadTimeout,
    RequestValidationException,
    Unauthorized,
    Unavailable,
    WriteFailure,
    WriteTimeout,
    WriteType,
)
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    Session,
)
from cassandra.connection import ConnectionException
from cassandra.policies import DCAwareRoundRobinPolicy, RoundRobinPolicy, TokenAwarePolicy
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from claimant.model import (
    BUILTIN_TYPES,
    LOCAL_CELL,
    AlreadyExists,
    AttributeSpec,
    CellUnavailable,
    Claim,
    ClaimantError,
    ClaimNotActive,
    ClaimStatus,
    Consumer,
    ConsumerAllocations,
    ConsumerGenerationConflict,
    GenerationConflict,
    InsufficientCapacity,
    InUse,
    InvalidInput,
    Inventory,
    NotFound,
    Provider,
    ProviderUsage,
    Request,
    RequestGroup,
    ResourceClass,
    ResourceType,
    StoreUnavailable,
    Strategy,
    Usage,
    check_fit,
    deadline,
    new_uuid,
)
from claimant.model.codec import request_from_dict, request_to_dict
from claimant.model.errors import CROSS_CELL
from claimant.model.events import (
    CLAIMED,
    CONFIRMED,
    DISABLED,
    ENABLED,
    EXPIRED,
    RELEASED,
    Event,
    Subject,
    claim_events,
)
from claimant.model.names import (
    STANDARD_RESOURCE_CLASSES,
    STANDARD_TRAITS,
    default_discrete,
    validate_custom_name,
)
from claimant.model.types import AttributeConstraint, check_constraint, infer_spec
from claimant.store.base import (
    UNSET,
    AggregateName,
    CandidateQuery,
    ClaimSpec,
    CloudSummary,
    ImportedConsumer,
    ProviderFilter,
    ReshapeSpec,
    Store,
    TreePage,
    TreeQuery,
    _Unset,
)
from claimant.store.cassandra import aggregates as _aggregates
from claimant.store.cassandra import bulk, connect, fast
from claimant.store.cassandra import events as _events
from claimant.store.cassandra import queries as q
from claimant.store.cassandra import summary as _summary
from claimant.store.cassandra.schema import (
    DATA_TABLES,
    MIGRATIONS,
    SHARING_SINCE,
    TREE_INDEX,
    keyspace_cql,
)
from claimant.store.cassandra.txn import (
    ABORTED,
    COMMITTED,
    PENDING,
    TXN_DEADLINE,
    TXN_RECORD_TTL,
    ConsumerPlan,
    Pending,
    Plan,
    entry_uuid,
    home_param,
    is_fast,
    new_txn_id,
    pending_from_text,
    pending_to_text,
    txn_cell,
)

log = logging.getLogger(__name__)

OPTIONS: Final = (
    "rf",
    "dc",
    "serial",
    "consistency",
    "port",
    "timeout",
    "fetch",
    "fast_writes",
    *connect.OPTIONS,
)
_CONSISTENCY = {
    name: getattr(ConsistencyLevel, name)
    for name in ("ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE")
}
_SERIAL = {
    "SERIAL": ConsistencyLevel.SERIAL,
    "LOCAL_SERIAL": ConsistencyLevel.LOCAL_SERIAL,
    # LOCAL_SERIAL even on a keyspace of several DCs, which is unsafe
    # (_settle_dcs): the tests use it to show the hazard.
    "LOCAL_SERIAL_UNSAFE": ConsistencyLevel.LOCAL_SERIAL,
}
# Protocol v5 error code for "Paxos outcome unknown" (CASSANDRA-15350); the
# driver has no class for it and raises its raw ErrorMessage.
_CAS_WRITE_UNKNOWN = 0x1700
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
# Both end up inside CQL text (a keyspace name; dc as a literal in CREATE
# KEYSPACE's replication map), so they are checked against what Cassandra
# allows and can never carry a quote.
_KEYSPACE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")
_DC = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class OutcomeUnknown(StoreUnavailable):
    """A lightweight transaction timed out and re-reading could not tell
    whether it was applied."""


class _CellLostMidWrite(OutcomeUnknown, CellUnavailable):
    """The cell a write went to stopped answering before its outcome was
    known: unknown (a claim it may have made lives until its TTL), and a
    cell the scheduler can skip."""

    code = CellUnavailable.code


def _cell_error(exc: BaseException, cell: str) -> ClaimantError:
    """A driver error on a statement routed to ``cell``: no coordinator or
    too few replicas there is that cell being unreachable (nothing was
    applied); anything else as ``_translate``."""
    if isinstance(exc, Unavailable) or (isinstance(exc, NoHostAvailable) and not exc.errors):
        log.warning("cell %s unreachable: %r", cell, exc)
        return CellUnavailable(f"cell {cell} is unreachable", cell=cell)
    return _translate(exc)


_ROW_TYPES: dict[tuple[str, ...], Any] = {}


def _row_factory(colnames: list[str], rows: list[Any]) -> list[Any]:
    """Named tuples, with one class per column list: the driver's default
    factory builds a new namedtuple class for every result, which costs more
    than decoding a small result."""
    key = tuple(colnames)
    row_type = _ROW_TYPES.get(key)
    if row_type is None:
        names = [re.sub(r"\W", "", c) or f"c{i}" for i, c in enumerate(colnames)]
        row_type = _ROW_TYPES[key] = namedtuple("Row", names, rename=True)  # type: ignore[misc]
    return [row_type(*r) for r in rows]


def _applied(row: Any) -> bool:
    """The ``[applied]`` column of a lightweight transaction's result."""
    return bool(row[0]) if row is not None else True


def _backoff(attempt: int) -> None:
    """Jittered, growing pause before retrying a lost transaction: Paxos rounds
    on one partition that keep colliding would otherwise collide again."""
    if attempt:
        time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))


def _pause(attempt: int) -> None:
    """Jittered exponential pause before repeating a timed-out request."""
    time.sleep(random.uniform(0.01, min(1.0, 0.05 * 2**attempt)))


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, ReadTimeout | WriteTimeout | OperationTimedOut)


def _translate(exc: BaseException) -> ClaimantError:
    if isinstance(exc, ClaimantError):
        return exc
    if isinstance(exc, Unauthorized):
        log.warning("Cassandra refused a query: %s", exc)
        return StoreUnavailable(
            "the Cassandra role lacks a permission this store needs (docs/cassandra.md,"
            " 'Connecting with credentials and TLS')",
            reason="unauthorized",
        )
    if isinstance(exc, RequestValidationException):
        # Schema missing or a query the node refuses: not the caller's input.
        return StoreUnavailable(f"Cassandra refused a query: {exc}", driver=type(exc).__name__)
    return StoreUnavailable(f"Cassandra unavailable: {exc}", driver=type(exc).__name__)


_DRIVER_ERRORS = (DriverException, NoHostAvailable, ConnectionException, OSError)

# Plain statements a service of a cell runs in its own cell (LOCAL_QUORUM
# there) on a keyspace of several: reads whose staleness a compare-and-set or
# a SERIAL re-read catches (provider states, candidates, what the expiry sweep
# should look at), views, the catalog, events, and rows looked for in every
# cell (``_in_any_cell``, a consumer's home). Statements on what is homed
# elsewhere name its cell (``_run(cell=)``); every other plain statement
# stays QUORUM (docs/cells.md).
_LOCAL: Final = frozenset(
    {
        q.READ_STATE,
        q.READ_PARTITION,
        q.READ_CELL,
        q.READ_VERSION,
        q.CANDIDATES_RANGE,
        q.CANDIDATES_EXPIRED,
        q.CLASS_IN_USE,
        q.ALL_STATES,
        q.NAME_OWNER,
        q.CHILDREN,
        q.TREE,
        q.ANY_CHILD,
        q.ANY_SHARING,
        q.LOCATE,
        q.LIST_CLASSES,
        q.GET_CLASS,
        q.LIST_TRAITS,
        q.GET_TRAIT,
        q.LIST_TYPES,
        q.GET_TYPE,
        q.GET_REQUEST,
        q.ALL_REQUESTS,
        q.GET_META,
        q.FIND_CONSUMER,
        q.STALE_LOCKS,
        q.STALE_HOLDS,
        q.EXPIRED_ENTRIES,
        _events.INSERT,
        _events.SELECT,
    }
)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _uncut(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """A write of several statements: the request's deadline is checked once,
    before it starts, and never cuts it half-way (its reads would otherwise
    time out between two of its writes). The store's own timeout bounds it."""

    @functools.wraps(method)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        deadline.check(f"starting {method.__name__.replace('_', ' ')}")
        with deadline.shielded():
            return method(*args, **kwargs)

    return run


def _never_cut(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Giving back (a claim's release) runs even past the deadline: it is how
    a request that ran out of time leaves nothing behind."""

    @functools.wraps(method)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with deadline.shielded():
            return method(*args, **kwargs)

    return run


def _cut_timeout(default: float) -> float | None:
    """The timeout of a plain read under the request's deadline (None: no
    deadline, the session's own); raises DeadlineExceeded once it passed."""
    left = deadline.remaining()
    if left is None:
        return None
    deadline.check("querying the store")
    return max(min(default, left), 0.001)


def _is_unknown_outcome(exc: BaseException) -> bool:
    """A CAS write whose fate the coordinator could not learn."""
    if isinstance(exc, NoHostAvailable) and not exc.errors:
        return False  # no host was even tried (a whole cell down): never sent
    if isinstance(exc, WriteTimeout | WriteFailure):
        return exc.write_type in (WriteType.CAS, "CAS")
    if getattr(exc, "code", None) == _CAS_WRITE_UNKNOWN:
        return True
    # The client gave up waiting, or the connection died mid-request: the
    # request may have reached Paxos.
    return isinstance(exc, OperationTimedOut | ConnectionException | NoHostAvailable)


# -- the decision state of one provider partition ---------------------------------


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
        return Claim(
            uuid=self.uuid,
            provider_uuid=self.provider_uuid,
            consumer_uuid=self.consumer_uuid,
            amounts=dict(self.amounts),
            status=self.status,
            request_uuid=self.request_uuid,
            group=self.group,
            project_id=self.project_id,
            user_id=self.user_id,
            created_at=self.created_at,
            expires_at=self.expires_at,
        )


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


def _check_amounts(amounts: dict[str, int], what: str) -> None:
    if not amounts:
        raise InvalidInput(f"{what} needs at least one resource amount")
    for rc, amount in amounts.items():
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
            raise InvalidInput(f"{rc}: {what} amounts are positive integers", field=rc)


def _replication_option(value: str, dc: str | None) -> tuple[int, dict[str, int] | None]:
    """``rf=N`` -> (N, None); ``rf=dc1:1,dc2:1`` -> (total, {dc: n}). A local
    ``dc`` must be one of the replicated DCs: a service has no replica of its
    own elsewhere, and DC-aware routing would send it nowhere."""
    if ":" not in value:
        return _int_option("rf", value, 1, 20), None
    replication: dict[str, int] = {}
    for part in value.split(","):
        name, sep, count = part.strip().partition(":")
        if not sep or not _DC.fullmatch(name):
            raise InvalidInput(
                f"store URL option rf {value!r}: give N, or DC:N for each data centre"
                " (rf=dc1:3,dc2:3)"
            )
        if name in replication:
            raise InvalidInput(f"store URL option rf {value!r}: data centre {name} twice")
        replication[name] = _int_option(f"rf ({name})", count, 1, 20)
    if dc is not None and dc not in replication:
        raise InvalidInput(
            f"store URL option dc {dc!r} is not among the data centres of rf"
            f" ({', '.join(replication)})"
        )
    return sum(replication.values()), replication


def _int_option(name: str, value: str, low: int, high: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InvalidInput(f"store URL option {name} must be an integer, got {value!r}") from None
    if not low <= n <= high:
        raise InvalidInput(f"store URL option {name} must be between {low} and {high}")
    return n


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


class CassandraStore(Store):
    """``cassandra://h1,h2,h3/keyspace?rf=dc1:3,dc2:3&dc=dc1``.

    Options: ``rf`` replication used by ``migrate`` (N, default 1, or per data
    centre ``dc1:3,dc2:3``), ``dc`` this service's data centre (DC-aware
    routing), ``serial`` SERIAL (default) or LOCAL_SERIAL (refused on a
    keyspace of several DCs), ``consistency`` of plain reads and writes
    (default QUORUM, LOCAL_QUORUM with ``dc`` on a keyspace of one DC),
    ``port``, ``timeout`` seconds per request, ``fetch`` candidate rows read
    per query; credentials and TLS: ``claimant.store.cassandra.connect``.
    """

    def __init__(self, hosts: list[str], keyspace: str, *, url: str | None = None, **options: str):
        connect.refuse_inline_password(set(options), "")
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise InvalidInput(
                f"unknown Cassandra store URL option(s): {', '.join(unknown)}"
                f" (known: {', '.join(OPTIONS)})"
            )
        if len(keyspace) > 48:
            raise InvalidInput("keyspace name is longer than 48 characters")
        if not _KEYSPACE.fullmatch(keyspace):
            raise InvalidInput(f"keyspace {keyspace!r} must be letters, digits and _")
        self.url = url or f"cassandra://{','.join(hosts)}/{keyspace}"
        self.keyspace = keyspace
        self.dc = options.get("dc") or None
        if self.dc is not None and not _DC.fullmatch(self.dc):
            raise InvalidInput(
                f"store URL option dc {self.dc!r} must be letters, digits, _, - and ."
                " (a data centre's name as the snitch reports it)"
            )
        # rf=N, or rf=dc1:N1,dc2:N2 (NetworkTopologyStrategy over those DCs).
        self.rf, self.replication = _replication_option(options.get("rf", "1"), self.dc)
        serial = options.get("serial", "").upper()
        if serial and serial not in _SERIAL:
            raise InvalidInput(
                f"store URL option serial must be one of {', '.join(_SERIAL)}, got {serial!r}"
            )
        # SERIAL unless asked otherwise, whatever dc says: two services of two
        # DCs at LOCAL_SERIAL on one partition run two Paxos groups, and both
        # can take a provider's last unit (docs/cassandra.md, several DCs).
        self._serial_asked = serial or None
        self._warned = False
        self.serial = _SERIAL[serial or "SERIAL"]
        consistency = options.get("consistency", "").upper()
        if consistency and consistency not in _CONSISTENCY:
            raise InvalidInput(
                f"store URL option consistency must be one of {', '.join(_CONSISTENCY)}"
            )
        self._consistency_asked = consistency or None
        self.consistency = _CONSISTENCY[consistency or ("LOCAL_QUORUM" if self.dc else "QUORUM")]
        # What the URL alone says; the keyspace itself decides at connect time.
        self._settle_dcs(sorted(self.replication or ()))
        self.port = _int_option("port", options.get("port", "9042"), 1, 65535)
        self.timeout = float(_int_option("timeout", options.get("timeout", "10"), 1, 600))
        self.fetch = _int_option("fetch", options.get("fetch", "20"), 1, 100_000)
        # One-provider allocation writes by three LWTs (fast.py); false sends
        # every write through the transaction (tests of it, comparisons).
        self.fast_writes = connect._flag("fast_writes", options.get("fast_writes", "true"))
        self.security = connect.parse(options)
        self.hosts: list[str] = []
        for h in hosts:
            host, _, port = h.partition(":")
            if port and int(_int_option("port", port, 1, 65535)) != self.port:
                self.port = int(port)
            self.hosts.append(host)
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._profile: ExecutionProfile | None = None
        self._prepared: dict[str, PreparedStatement] = {}
        # Execution profiles made for cells (``_route``), on this connection.
        self._cell_profiles: set[str] = set()
        # provider uuid -> home cell: fixed at creation, so never stale.
        self._homes: dict[str, str] = {}
        # provider uuid -> the newest state this process has seen; a claim
        # against that generation needs no read first (docs/cassandra.md).
        self._states: dict[str, _State] = {}
        # Writers of one provider in this process queue here rather than
        # compete in Paxos (a lost round costs a SERIAL read and a retry, and
        # enough of them time out as "CAS operation timed out"). Kept for the
        # store's life: a lock made per call would guard nothing.
        self._locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()
        # Threads that first use the store at once share one connection: each
        # making its own Cluster (a control connection and a schema read
        # apiece) swamped a busy node until connecting timed out.
        self._connect_guard = threading.Lock()
        self._keyspace_guard = threading.Lock()
        # Tests and the torture harness step in between the phases of a
        # transaction ("record", "locked", "pending", "committed"; a fast-path
        # write: "fast-locked", "fast-committed").
        self.txn_hook: Callable[[str, str], None] | None = None
        # Counters the benchmark reports.
        self.stats: dict[str, int] = {
            "cas": 0,
            "cas_lost": 0,
            "serial_reads": 0,
            "unknown": 0,
            "txns": 0,
            "txns_resolved": 0,
            "fast": 0,
        }

    def _settle_dcs(self, dcs: list[str]) -> None:
        """Serial and plain consistency for a keyspace with replicas in ``dcs``.

        Several DCs: every compare-and-set must go through ONE Paxos group per
        partition, so LOCAL_SERIAL is refused (each DC would run its own, and
        two services could both win the last unit); plain reads and writes
        default to QUORUM, so a read in one DC sees what a service in another
        DC wrote and was told was written (a claim's locator, a consumer)."""
        self.dcs = dcs
        if len(dcs) < 2:
            return
        if self._serial_asked == "LOCAL_SERIAL":
            raise InvalidInput(
                f"store URL option serial=LOCAL_SERIAL: keyspace {self.keyspace} has"
                f" replicas in {len(dcs)} data centres ({', '.join(dcs)}); LOCAL_SERIAL"
                " there runs one Paxos group per data centre, and services of two data"
                " centres could both take a provider's last unit. Leave serial out"
                " (SERIAL: one group across them)"
            )
        if self._serial_asked == "LOCAL_SERIAL_UNSAFE" and not self._warned:
            self._warned = True
            log.warning(
                "store %s: LOCAL_SERIAL on a keyspace in %s: services of different"
                " data centres can overcommit a provider",
                self.url,
                ", ".join(dcs),
            )
        if self._consistency_asked is None:
            # What is safe to do in this service's own cell alone is listed
            # in _LOCAL (docs/cells.md); the rest stays QUORUM.
            self.consistency = ConsistencyLevel.QUORUM

    def _keyspace_dcs(self, cluster: Cluster) -> list[str] | None:
        """The DCs the keyspace has replicas in, as the cluster says; None if
        it does not exist yet (then the URL's ``rf`` will make it)."""
        meta = cluster.metadata.keyspaces.get(self.keyspace)
        if meta is None:
            return None
        strategy = meta.replication_strategy
        per_dc = getattr(strategy, "dc_replication_factors", None)
        if per_dc is not None:
            return sorted(dc for dc, n in per_dc.items() if int(n) > 0)
        # SimpleStrategy (or another): replicas anywhere in the ring.
        return sorted({h.datacenter for h in cluster.metadata.all_hosts() if h.datacenter})

    # -- cells (docs/cells.md) --------------------------------------------------------
    def cells(self) -> list[str]:
        self._connect()
        if self.dcs:
            return list(self.dcs)
        assert self._cluster is not None
        return sorted({h.datacenter for h in self._cluster.metadata.all_hosts() if h.datacenter})

    def local_cell(self) -> str | None:
        cells = self.cells()
        if self.dc in cells:
            return self.dc
        return cells[0] if len(cells) == 1 else None

    def _route(self, cell: str | None) -> str | None:
        """The execution profile of what is homed in ``cell``: LOCAL_SERIAL
        and LOCAL_QUORUM on coordinators of that cell only. None (the
        default profile) where there is one cell, or no home."""
        if cell is None or self._serial_asked == "LOCAL_SERIAL_UNSAFE":
            return None
        self._connect()  # the keyspace's DCs are known once connected
        if len(self.dcs) < 2 or cell not in self.dcs:
            return None
        name = "cell:" + cell
        if name not in self._cell_profiles:
            # A DC that joined the ring after this service connected.
            raise CellUnavailable(
                f"cell {cell} is not known to this service's connection: restart it",
                cell=cell,
            )
        return name

    def _cell_profile(self, cell: str) -> ExecutionProfile:
        return ExecutionProfile(
            # No remote hosts: a cell that is down fails fast, and the Paxos
            # round never leaves its home.
            load_balancing_policy=TokenAwarePolicy(
                DCAwareRoundRobinPolicy(local_dc=cell, used_hosts_per_remote_dc=0)
            ),
            consistency_level=ConsistencyLevel.LOCAL_QUORUM,
            serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
            request_timeout=self.timeout,
            row_factory=_row_factory,
        )

    def _fail(self, exc: BaseException, route: str | None) -> ClaimantError:
        return _cell_error(exc, route[5:]) if route is not None else _translate(exc)

    def _home(self, uuid: str, *, found: bool = False) -> str | None:
        """A provider's home cell, for a write or SERIAL read of its
        partition. Read where this service is, else in each other cell (a
        provider just made elsewhere may not be here yet); None: no home
        (or no such provider, which the read that follows finds out)."""
        if len(self.dcs) < 2:
            return None
        known = self._homes.get(uuid)
        if known is not None:
            return known
        state = self._states.get(uuid)
        if state is not None:
            return state.cell
        rows = self._run(q.READ_CELL, [uuid])
        if not rows or rows[0].version is None:
            for other in self.dcs:
                if other == self.dc:
                    continue
                try:
                    rows = self._run(q.READ_CELL, [uuid], cell=other)
                except CellUnavailable:
                    continue
                if rows and rows[0].version is not None:
                    break
        exists = bool(rows) and rows[0].version is not None
        if found and not exists:
            # Not a global SERIAL round on a partition whose home this
            # service cannot see: that would be a second Paxos group.
            raise NotFound(f"provider {uuid} not found", kind="provider", uuid=uuid)
        cell = rows[0].cell if exists else None
        if cell is not None:
            self._homes[uuid] = cell
        return cell

    def _lock(self, provider_uuid: str) -> threading.RLock:
        lock = self._locks.get(provider_uuid)
        if lock is None:
            with self._locks_guard:
                if len(self._locks) > 200_000:
                    self._locks.clear()
                lock = self._locks.setdefault(provider_uuid, threading.RLock())
        return lock

    # -- connection ----------------------------------------------------------------
    def _connect(self) -> Session:
        if self._session is not None:
            return self._session
        with self._connect_guard:
            if self._session is not None:
                return self._session
            return self._connect_locked()

    def _connect_locked(self, cells: Iterable[str] = ()) -> Session:
        wanted = sorted({*cells, *(self.replication or ())})
        child = DCAwareRoundRobinPolicy(local_dc=self.dc) if self.dc else RoundRobinPolicy()
        profile = self._profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(child),
            consistency_level=self.consistency,
            serial_consistency_level=self.serial,
            request_timeout=self.timeout,
            row_factory=_row_factory,
        )
        options: dict[str, Any] = {
            "contact_points": self.hosts,
            "port": self.port,
            "execution_profiles": {
                EXEC_PROFILE_DEFAULT: profile,
                **{"cell:" + c: self._cell_profile(c) for c in wanted},
            },
            "connect_timeout": self.timeout,
            # Claims are small and CPU is what runs out first (profiled): no LZ4.
            "compression": False,
            # Schema changes on a busy multi-node cluster take a while to agree.
            "max_schema_agreement_wait": 60,
            **self.security.cluster_options(),
        }
        where = f"{','.join(self.hosts)}:{self.port}"
        try:
            # Protocol v5 (Cassandra 4.0+); older servers: let the driver negotiate.
            cluster = Cluster(protocol_version=5, **options)
            try:
                session = cluster.connect()
            except NoHostAvailable:
                cluster.shutdown()
                cluster = Cluster(**options)
                session = cluster.connect()
        except _DRIVER_ERRORS as exc:
            raise connect.connect_error(exc, self.security, where) from exc
        # Every DC of the ring gets its profile with the connection: the
        # driver never marks up a host no profile used when it connected, and
        # a profile added later routes nowhere (its hosts are "not up").
        ring = sorted({h.datacenter for h in cluster.metadata.all_hosts() if h.datacenter})
        if len(ring) > 1 and set(ring) - set(wanted):
            cluster.shutdown()
            return self._connect_locked(ring)
        self._cell_profiles = {"cell:" + c for c in wanted}
        # The keyspace as it is, not as this URL would make it: another
        # service may have made it over more DCs.
        dcs = self._keyspace_dcs(cluster)
        if dcs is not None:
            try:
                self._settle_dcs(dcs)
            except InvalidInput:
                cluster.shutdown()
                raise
            profile.consistency_level = self.consistency
        self._cluster, self._session = cluster, session
        return session

    def _use_keyspace(self) -> Session:
        session = self._connect()
        if session.keyspace == self.keyspace:
            return session
        # One thread at a time: threads that first use the store at once each
        # sent USE on every pool, and with pools in several DCs some failed.
        with self._keyspace_guard:
            for attempt in range(3):
                if session.keyspace == self.keyspace:
                    break
                try:
                    session.set_keyspace(self.keyspace)
                except _DRIVER_ERRORS as exc:
                    log.warning("cannot use keyspace %s: %r", self.keyspace, exc)
                    if attempt == 2:
                        raise StoreUnavailable(
                            f"keyspace {self.keyspace} is not there: run migrate first"
                        ) from exc
                    # A node of a busy cluster the driver marked down a
                    # moment ago (it reconnects on its own): ask again.
                    time.sleep(1.0 + attempt)
        return session

    def _prep(self, cql: str) -> PreparedStatement:
        stmt = self._prepared.get(cql)
        if stmt is None:
            session = self._use_keyspace()
            try:
                stmt = session.prepare(cql)
            except _DRIVER_ERRORS as exc:
                raise _translate(exc) from exc
            self._prepared[cql] = stmt
        return stmt

    def _run(
        self,
        cql: str,
        params: Iterable[Any] = (),
        *,
        serial: bool = False,
        cell: str | None = None,
    ) -> list[Any]:
        """One statement; ``cell``: what it reads or writes is homed there
        (``_route``)."""
        stmt = self._prep(cql).bind(list(params))
        local = cell is None and not serial and cql in _LOCAL
        route = self._route(self.dc if local else cell)
        if serial:
            stmt.consistency_level = ConsistencyLevel.LOCAL_SERIAL if route else self.serial
            self.stats["serial_reads"] += 1
        profile = route or EXEC_PROFILE_DEFAULT
        read = cql.startswith("SELECT")
        # A plain read is cut at the request's deadline. A write, or a SERIAL
        # read that settles a transaction, keeps the store's timeout: cut, its
        # outcome would be unknown.
        cut = read and not serial
        # A read that timed out is repeated: a SERIAL read contends with the
        # Paxos rounds it must finish, and a replica just gone times out until
        # the coordinator marks it down; only a quorum really unreachable is
        # a 503 (Unavailable is not retried).
        attempts = (RESOLVE_ATTEMPTS if serial else 3) if read else 1
        for attempt in range(attempts):
            timeout = _cut_timeout(self.timeout) if cut else None
            try:
                session = self._use_keyspace()
                if timeout is None:
                    return list(session.execute(stmt, execution_profile=profile))
                return self._drain(
                    session.execute(stmt, timeout=timeout, execution_profile=profile)
                )
            except _DRIVER_ERRORS as exc:
                if cut:
                    deadline.check("querying the store")
                if attempt + 1 == attempts or not _is_timeout(exc):
                    raise self._fail(exc, route) from exc
                _pause(attempt)
        raise AssertionError("unreachable")

    def _drain(self, rs: Any) -> list[Any]:
        """Every page of a result, each page fetched within what is left of
        the request's deadline."""
        rows = list(rs.current_rows)
        while rs.has_more_pages:
            timeout = _cut_timeout(self.timeout)
            if timeout is not None:
                rs.response_future.timeout = timeout
            rs.fetch_next_page()
            rows.extend(rs.current_rows)
        return rows

    def _run_many(
        self, cql: str, param_lists: list[list[Any]], *, cell: str | None = None
    ) -> list[list[Any]]:
        """The same statement for many partitions, in parallel (execute_async);
        ``cell``: they are homed there (``_route``)."""
        session = self._use_keyspace()
        stmt = self._prep(cql)
        timeout = _cut_timeout(self.timeout) if cql.startswith("SELECT") else None
        route = self._route(cell if cell is not None else self.dc if cql in _LOCAL else None)
        kw: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        kw["execution_profile"] = route or EXEC_PROFILE_DEFAULT
        futures = [session.execute_async(stmt.bind(p), **kw) for p in param_lists]
        out = []
        for f in futures:
            try:
                out.append(list(f.result()))
            except _DRIVER_ERRORS as exc:
                if timeout is not None:
                    deadline.check("querying the store")
                raise self._fail(exc, route) from exc
        return out

    def _lwt(self, cql: str, params: Iterable[Any], *, cell: str | None = None) -> tuple[bool, Any]:
        """A single-statement LWT on a lookup table; (applied, current row)."""
        stmt = self._prep(cql).bind(list(params))
        route = self._route(cell)
        try:
            rs = self._use_keyspace().execute(stmt, execution_profile=route or EXEC_PROFILE_DEFAULT)
        except _DRIVER_ERRORS as exc:
            raise self._fail(exc, route) from exc
        row = rs.one()
        return _applied(row), row

    def _ddl(self, cql: str) -> None:
        for attempt in range(5):
            try:
                self._connect().execute(cql, timeout=120)
                return
            except NoHostAvailable as exc:
                # Just after connecting to a busy cluster, a node's pool may
                # not be up yet ("marked down"; the driver reconnects). Every
                # statement here is idempotent (IF [NOT] EXISTS): ask again.
                if attempt == 4:
                    raise _translate(exc) from exc
                log.warning("schema change waiting for a node: %r", exc)
                time.sleep(2.0 * (attempt + 1))
            except _DRIVER_ERRORS as exc:
                raise _translate(exc) from exc

    # -- lifecycle -------------------------------------------------------------------
    def migrate(self) -> int:
        self._ddl(keyspace_cql(self.keyspace, self.replication or self.rf, self.dc))
        for attempt in range(20):
            try:
                self._use_keyspace()
                break
            except StoreUnavailable:
                # The node asked may not have the new keyspace yet.
                if attempt == 19:
                    raise
                time.sleep(1)
        if self._cluster is not None and self._profile is not None:
            # A keyspace this call made: SimpleStrategy spans every DC of the ring.
            dcs = self._keyspace_dcs(self._cluster)
            if dcs is not None:
                self._settle_dcs(dcs)
                self._profile.consistency_level = self.consistency
        try:
            rows = self._run(q.GET_META, ["schema_version"])
            version = int(rows[0].value) if rows else 0
        except StoreUnavailable:
            version = 0  # no meta table yet
        for statements in MIGRATIONS[version:]:
            for cql in statements:
                self._ddl(cql.replace("{ks}", self.keyspace))
        if 0 < version < SHARING_SINCE:
            # The index of sharing providers starts with those that share now.
            for state in self._all_states():
                if SHARING_TRAIT in state.traits:
                    self._run(q.ADD_SHARING, [state.uuid])
        self._run(q.SET_META, ["schema_version", str(len(MIGRATIONS))])
        return len(MIGRATIONS)

    def drop(self) -> None:
        self._ddl(f"DROP KEYSPACE IF EXISTS {self.keyspace}")
        self._prepared.clear()
        self._states.clear()
        self._homes.clear()
        self._cell_profiles.clear()
        if self._session is not None:
            self._cluster.shutdown() if self._cluster is not None else None
            self._cluster = self._session = None

    def reset(self) -> None:
        session = self._use_keyspace()
        for table in DATA_TABLES:
            try:
                # TRUNCATE is a cluster-wide operation: skip the tables already empty.
                name = f"{self.keyspace}.{table}"
                if list(session.execute(f"SELECT * FROM {name} LIMIT 1")):
                    session.execute(f"TRUNCATE {name}", timeout=120)
            except _DRIVER_ERRORS as exc:
                raise _translate(exc) from exc
        self._states.clear()

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
        self._cluster = self._session = None
        self._prepared.clear()
        self._states.clear()
        self._cell_profiles.clear()

    # -- resource classes -------------------------------------------------------------
    def _custom_classes(self) -> dict[str, bool]:
        return {r.name: bool(r.discrete) for r in self._run(q.LIST_CLASSES)}

    def list_resource_classes(self) -> list[ResourceClass]:
        out = [ResourceClass.standard_class(n) for n in STANDARD_RESOURCE_CLASSES]
        out += [ResourceClass(n, d, False) for n, d in self._custom_classes().items()]
        return sorted(out, key=lambda rc: rc.name)

    def get_resource_class(self, name: str) -> ResourceClass:
        if name in STANDARD_RESOURCE_CLASSES:
            return ResourceClass.standard_class(name)
        rows = self._run(q.GET_CLASS, [name])
        if not rows:
            raise NotFound(f"no resource class {name!r}", kind="resource_class", name=name)
        return ResourceClass(name, bool(rows[0].discrete), False)

    @_uncut
    def create_resource_class(self, rc: ResourceClass) -> ResourceClass:
        validate_custom_name(rc.name)
        applied, _ = self._lwt(q.CREATE_CLASS, [rc.name, rc.discrete, self.clock()])
        if not applied:
            raise AlreadyExists(f"resource class {rc.name} already exists", name=rc.name)
        return ResourceClass(rc.name, rc.discrete, False)

    @_uncut
    def delete_resource_class(self, name: str) -> None:
        rc = self.get_resource_class(name)
        if rc.standard:
            raise InvalidInput(f"{name} is a standard resource class and cannot be deleted")
        if self._run(q.CLASS_IN_USE, ["i:" + name]):
            raise InUse(f"resource class {name} is in use by inventories", name=name)
        self._run(q.DELETE_CLASS, [name])

    def _class_kinds(self, names: Iterable[str]) -> dict[str, bool]:
        """name -> discrete, for every known class among ``names``."""
        out = {n: default_discrete(n) for n in names if n in STANDARD_RESOURCE_CLASSES}
        custom = [n for n in names if n not in out]
        if custom:
            known = self._custom_classes()
            out.update({n: known[n] for n in custom if n in known})
        return out

    # -- traits -----------------------------------------------------------------------
    def list_traits(self) -> list[str]:
        return sorted(STANDARD_TRAITS | {r.name for r in self._run(q.LIST_TRAITS)})

    @_uncut
    def create_trait(self, name: str) -> bool:
        validate_custom_name(name, "trait")
        applied, _ = self._lwt(q.CREATE_TRAIT, [name, self.clock()])
        return applied

    @_uncut
    def delete_trait(self, name: str) -> None:
        if name in STANDARD_TRAITS:
            raise InvalidInput(f"{name} is a standard trait and cannot be deleted")
        if not self._run(q.GET_TRAIT, [name]):
            raise NotFound(f"no trait {name!r}", kind="trait", name=name)
        if name in self.traits_in_use():
            raise InUse(f"trait {name} is in use by providers", name=name)
        self._run(q.DELETE_TRAIT, [name])

    def traits_in_use(self) -> set[str]:
        # A full scan of provider statics: an operator's call, not a hot path.
        return {t for s in self._all_states() for t in s.traits}

    def _check_traits(self, traits: Iterable[str]) -> frozenset[str]:
        wanted = frozenset(traits)
        custom = wanted - STANDARD_TRAITS
        if custom:
            known = {r.name for r in self._run(q.LIST_TRAITS)}
            missing = sorted(custom - known)
            if missing:
                raise NotFound(f"no such traits: {', '.join(missing)}", kind="trait", names=missing)
        return wanted

    # -- resource types ---------------------------------------------------------------
    def list_resource_types(self) -> list[ResourceType]:
        custom = sorted(
            (_type_from_json(r.body) for r in self._run(q.LIST_TYPES)), key=lambda t: t.name
        )
        return list(BUILTIN_TYPES.values()) + custom

    def get_resource_type(self, name: str) -> ResourceType:
        if name in BUILTIN_TYPES:
            return BUILTIN_TYPES[name]
        rows = self._run(q.GET_TYPE, [name])
        if not rows:
            raise NotFound(f"no resource type {name!r}", kind="resource_type", name=name)
        return _type_from_json(rows[0].body)

    @_uncut
    def create_resource_type(self, rtype: ResourceType) -> ResourceType:
        rtype.validate_type()
        if rtype.name in BUILTIN_TYPES:
            raise AlreadyExists(f"{rtype.name} is a built-in resource type", name=rtype.name)
        custom = ResourceType(
            rtype.name, tuple(rtype.attributes.values()), rtype.description, builtin=False
        )
        applied, _ = self._lwt(q.CREATE_TYPE, [custom.name, json.dumps(custom.to_dict())])
        if not applied:
            raise AlreadyExists(f"resource type {rtype.name} already exists", name=rtype.name)
        return custom

    @_uncut
    def delete_resource_type(self, name: str) -> None:
        if name in BUILTIN_TYPES:
            raise InvalidInput(f"{name} is a built-in resource type and cannot be deleted")
        self.get_resource_type(name)
        if any(s.type == name for s in self._all_states()):
            raise InUse(f"resource type {name} is in use by providers", name=name)
        self._run(q.DELETE_TYPE, [name])

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
                    raise _conflict(uuid, old.generation, expected_generation)
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

    # -- providers ---------------------------------------------------------------------
    def _validate_inventories(self, inventories: dict[str, Inventory]) -> dict[str, Inventory]:
        kinds = self._class_kinds(inventories)
        for rc, inv in inventories.items():
            if rc != inv.resource_class:
                raise InvalidInput(f"inventory keyed {rc} is for {inv.resource_class}")
            if rc not in kinds:
                raise NotFound(f"no resource class {rc!r}", kind="resource_class", name=rc)
            inv.validate(discrete=kinds[rc])
        return dict(inventories)

    @staticmethod
    def _validate_aggregates(aggregates: Iterable[str]) -> frozenset[str]:
        wanted = frozenset(aggregates)
        for agg in wanted:
            if not isinstance(agg, str) or not agg or len(agg) > 255:
                raise InvalidInput(f"aggregate {agg!r} must be a non-empty string")
        return wanted

    @_uncut
    def create_provider(self, provider: Provider) -> Provider:
        now = self.clock()
        rtype = self.get_resource_type(provider.type)
        attributes = rtype.validate_attributes(provider.attributes)
        inventories = self._validate_inventories(provider.inventories)
        traits = self._check_traits(provider.traits)
        aggregates = self._validate_aggregates(provider.aggregates)
        root = provider.uuid
        if provider.parent_uuid:
            try:
                root = self._read_state(provider.parent_uuid).root_uuid
            except NotFound:
                raise NotFound(
                    f"parent provider {provider.parent_uuid} not found",
                    kind="provider",
                    uuid=provider.parent_uuid,
                ) from None
        cell = self.home_of(provider.cell)
        existing = self._run(q.READ_CELL, [provider.uuid])
        if existing and existing[0].version:
            raise _exists("uuid", provider.uuid)
        if existing and existing[0].cell and existing[0].cell != cell:
            # Its partition keeps the Paxos group it had (DELETE_STATICS).
            if provider.cell not in (None, LOCAL_CELL):
                raise InvalidInput(
                    f"provider uuid {provider.uuid} was homed in cell {existing[0].cell}"
                    " before; made again, it keeps that home",
                    code=CROSS_CELL,
                    field="cell",
                )
            cell = existing[0].cell
        applied, row = self._lwt(q.RESERVE_NAME, [provider.name, provider.uuid])
        if not applied and row.provider_uuid != provider.uuid:
            raise _exists("name", provider.name)
        state = _State(
            uuid=provider.uuid,
            generation=0,
            version=new_uuid(),
            prev_version=None,
            name=provider.name,
            type=provider.type,
            parent_uuid=provider.parent_uuid,
            root_uuid=root,
            attributes=attributes,
            traits=traits,
            aggregates=aggregates,
            enabled=provider.enabled,
            heartbeat_at=None,
            created_at=now,
            updated_at=now,
            inventories=inventories,
            alloc_used={},
            holds=(),
            seq=time.time(),
            cell=cell,
        )
        if not self._cas(None, state, now):
            self._lwt(q.FREE_NAME, [provider.name, provider.uuid])
            raise _exists("uuid", provider.uuid)
        if provider.parent_uuid:
            self._run(q.ADD_CHILD, [provider.parent_uuid, provider.uuid])
        if provider.heartbeat_at is not None:
            self.heartbeat(provider.uuid, provider.heartbeat_at)
            state = replace(state, heartbeat_at=provider.heartbeat_at)
        return state.provider()

    @_uncut
    def load_providers_unchecked(self, providers: list[Provider], *, window: int = 128) -> None:
        """Bulk-load brand-new root providers with plain writes: no Paxos, no
        uniqueness or parent checks. Only for benchmarks and simulators
        filling an empty store; everything after goes through transactions."""
        session = self._use_keyspace()
        write = self._prep(q.WRITE_STATE_UNCONDITIONAL)
        name = self._prep(q.WRITE_NAME)
        index = self._prep(q.WRITE_INDEX_ROW)
        pending: list[Any] = []
        now = self.clock()
        for p in providers:
            cell = self.home_of(p.cell)
            state = _State(
                uuid=p.uuid,
                generation=0,
                version=new_uuid(),
                prev_version=None,
                name=p.name,
                type=p.type,
                parent_uuid=None,
                root_uuid=p.uuid,
                attributes=dict(p.attributes),
                traits=frozenset(p.traits),
                aggregates=frozenset(p.aggregates),
                enabled=p.enabled,
                heartbeat_at=None,
                created_at=now,
                updated_at=now,
                inventories=dict(p.inventories),
                alloc_used={},
                holds=(),
                seq=time.time(),
                cell=cell,
            )
            pending.append(session.execute_async(write.bind(self._state_params(state)[:-1])))
            pending.append(session.execute_async(name.bind([p.name, p.uuid])))
            for _, params in self._index_rows(state, now):
                pending.append(session.execute_async(index.bind(params)))
            if SHARING_TRAIT in state.traits:
                pending.append(session.execute_async(self._prep(q.ADD_SHARING).bind([p.uuid])))
            if len(pending) >= window:
                for f in pending:
                    try:
                        f.result()
                    except _DRIVER_ERRORS as exc:
                        raise _translate(exc) from exc
                pending = []
        for f in pending:
            try:
                f.result()
            except _DRIVER_ERRORS as exc:
                raise _translate(exc) from exc

    def get_provider(self, uuid: str) -> Provider:
        return self._settled_state(uuid).provider()

    def list_providers(self, flt: ProviderFilter | None = None) -> list[Provider]:
        return [s.provider() for s in self._list_states(flt)]

    def list_usages(self, flt: ProviderFilter | None = None) -> list[ProviderUsage]:
        now = self.clock()
        out = []
        for state in self._list_states(flt):
            # As get_usage: a transaction met here that is decided is finished
            # first, so a committed allocation is counted (rare: only writes
            # in flight or left behind by a crash are pending).
            if state.pending and self._settle_met(state):
                try:
                    state = self._read_state(state.uuid)
                except NotFound:
                    continue
            out.append(state.usage(now))
        return out

    def _list_states(self, flt: ProviderFilter | None) -> list[_State]:
        flt = flt or ProviderFilter()
        now = self.clock()
        if flt.uuid:
            try:
                states = [self._read_state(flt.uuid)]
            except NotFound:
                return []
        elif flt.name:
            owner = self._run(q.NAME_OWNER, [flt.name])
            try:
                states = [self._read_state(owner[0].provider_uuid)] if owner else []
            except NotFound:
                states = []
        else:
            states = self._all_states()
        if flt.name:
            states = [s for s in states if s.name == flt.name]
        if flt.in_tree:
            try:
                root = self._read_state(flt.in_tree).root_uuid
            except NotFound:
                return []
            states = [s for s in states if s.root_uuid == root]
        if flt.group is not None:
            match = self._group_matcher(flt.group, check_types=False)
            states = [s for s in states if match(s) and _fits(s, flt.group, s.used(now))]
        states.sort(key=lambda s: (s.created_at, s.seq, s.uuid))
        return states

    @_uncut
    def update_provider(
        self,
        uuid: str,
        expected_generation: int | None,
        *,
        name: str | _Unset = UNSET,
        parent_uuid: str | _Unset | None = UNSET,
        attributes: dict[str, Any] | _Unset = UNSET,
        enabled: bool | _Unset = UNSET,
    ) -> Provider:
        return self._update_provider(
            uuid, expected_generation, True, name, parent_uuid, attributes, enabled
        )

    @_uncut
    def update_provider_quietly(
        self,
        uuid: str,
        *,
        name: str | _Unset = UNSET,
        parent_uuid: str | _Unset | None = UNSET,
    ) -> Provider:
        return self._update_provider(uuid, None, False, name, parent_uuid, UNSET, UNSET)

    def _update_provider(
        self,
        uuid: str,
        expected_generation: int | None,
        bump: bool,
        name: str | _Unset,
        parent_uuid: str | _Unset | None,
        attributes: dict[str, Any] | _Unset,
        enabled: bool | _Unset,
    ) -> Provider:
        current = self._read_state(uuid, serial=True)
        if expected_generation is not None and current.generation != expected_generation:
            raise _conflict(uuid, current.generation, expected_generation)
        changes: dict[str, Any] = {}
        if not isinstance(attributes, _Unset):
            changes["attributes"] = self.get_resource_type(current.type).validate_attributes(
                attributes
            )
        if not isinstance(enabled, _Unset):
            changes["enabled"] = bool(enabled)
        new_name = None
        if not isinstance(name, _Unset) and name != current.name:
            applied, row = self._lwt(q.RESERVE_NAME, [name, uuid])
            if not applied and row.provider_uuid != uuid:
                raise _exists("name", name)
            new_name = name
            changes["name"] = name
        reparent = not isinstance(parent_uuid, _Unset) and parent_uuid != current.parent_uuid
        if reparent:
            new_root = uuid
            if parent_uuid is not None:
                if not isinstance(parent_uuid, str):
                    raise InvalidInput("parent must be a provider uuid", field="parent_uuid")
                try:
                    parent = self._read_state(parent_uuid)
                except NotFound:
                    raise NotFound(
                        f"parent provider {parent_uuid} not found", kind="provider"
                    ) from None
                cursor: _State | None = parent
                while cursor is not None:
                    if cursor.uuid == uuid:
                        raise InvalidInput("a provider cannot be its own ancestor", field="parent")
                    cursor = self._read_state(cursor.parent_uuid) if cursor.parent_uuid else None
                new_root = parent.root_uuid
            changes["parent_uuid"] = parent_uuid
            changes["root_uuid"] = new_root
        try:
            new = self._update(
                uuid,
                expected_generation,
                lambda part, now: (replace(part.state, **changes), []),
                bump=bump,
            )
        except BaseException:
            if new_name is not None:
                self._lwt(q.FREE_NAME, [new_name, uuid])
            raise
        if new_name is not None:
            self._lwt(q.FREE_NAME, [current.name, uuid])
        if reparent:
            if current.parent_uuid:
                self._run(q.DROP_CHILD, [current.parent_uuid, uuid])
            if parent_uuid:
                self._run(q.ADD_CHILD, [parent_uuid, uuid])
            self._move_subtree(uuid, new.root_uuid)
        if not isinstance(enabled, _Unset) and bool(enabled) != current.enabled:
            flip = ENABLED if enabled else DISABLED
            _events.add_events(self, [Event(Subject.PROVIDER, uuid, self.clock(), flip)])
        return new.provider()

    def _move_subtree(self, uuid: str, root: str) -> None:
        """Descendants follow a moved provider to its new root. One LWT per
        descendant, without a generation bump (as the SQLite store)."""
        todo = [r.child_uuid for r in self._run(q.CHILDREN, [uuid])]
        while todo:
            child = todo.pop()
            self._update(
                child, None, lambda part, now: (replace(part.state, root_uuid=root), []), bump=False
            )
            todo += [r.child_uuid for r in self._run(q.CHILDREN, [child])]

    @_uncut
    def delete_provider(self, uuid: str) -> None:
        with self._lock(uuid):
            for attempt in range(CAS_ATTEMPTS):
                _backoff(attempt)
                now = self.clock()
                part = self._read_partition(uuid)
                if self._run(q.CHILDREN, [uuid]):
                    raise InUse(f"provider {uuid} has children", uuid=uuid)
                if any(e.live(now) for e in part.entries.values()) or part.state.pending:
                    raise InUse(f"provider {uuid} has claims or allocations", uuid=uuid)
                route = self._route(part.state.cell)
                batch = BatchStatement(
                    batch_type=BatchType.LOGGED,
                    consistency_level=ConsistencyLevel.LOCAL_QUORUM if route else self.consistency,
                    serial_consistency_level=(
                        ConsistencyLevel.LOCAL_SERIAL if route else self.serial
                    ),
                )
                batch.add(self._prep(q.DELETE_STATICS), [uuid, part.state.version])
                keys = ["i:" + rc for rc in part.state.inventories]
                keys += ["l:" + e for e in part.entries]
                for key in keys:
                    batch.add(self._prep(q.DELETE_ROW), [uuid, key])
                try:
                    applied = _applied(
                        self._use_keyspace()
                        .execute(batch, execution_profile=route or EXEC_PROFILE_DEFAULT)
                        .one()
                    )
                except _DRIVER_ERRORS as exc:
                    raise self._fail(exc, route) from exc
                if applied:
                    break
            else:
                raise GenerationConflict(f"provider {uuid} kept changing: retry", uuid=uuid)
        self._states.pop(uuid, None)
        if SHARING_TRAIT in part.state.traits:
            self._run(q.DROP_SHARING, [uuid])
        self._lwt(q.FREE_NAME, [part.state.name, uuid])
        if part.state.parent_uuid:
            self._run(q.DROP_CHILD, [part.state.parent_uuid, uuid])

    @_uncut
    def set_inventories(
        self,
        uuid: str,
        expected_generation: int | None,
        inventories: dict[str, Inventory],
        *,
        allow_overcapacity: bool = False,
    ) -> Provider:
        invs = self._validate_inventories(inventories)

        def change(part: _Partition, now: float) -> _Change:
            if any(p.inventories is not None for p in part.state.pending):
                # Its commit replaces the inventories: this change would be lost.
                raise GenerationConflict(
                    f"provider {uuid} is being reshaped: re-read and retry", uuid=uuid
                )
            for rc, amount in part.state.used(now).items():
                if amount <= 0:
                    continue
                if rc not in invs:
                    raise InUse(f"cannot remove {rc} inventory: {amount} in use", resource_class=rc)
                if not allow_overcapacity and invs[rc].capacity < amount:
                    raise InUse(
                        f"{rc}: new capacity {invs[rc].capacity} is below the {amount} in use",
                        resource_class=rc,
                    )
            return replace(part.state, inventories=invs), []

        return self._update(uuid, expected_generation, change).provider()

    @_uncut
    def set_traits(
        self, uuid: str, expected_generation: int | None, traits: Iterable[str]
    ) -> Provider:
        wanted = self._check_traits(traits)
        return self._update(
            uuid, expected_generation, lambda part, now: (replace(part.state, traits=wanted), [])
        ).provider()

    @_uncut
    def set_aggregates(
        self, uuid: str, expected_generation: int | None, aggregates: Iterable[str]
    ) -> Provider:
        wanted = self._validate_aggregates(aggregates)
        return self._update(
            uuid,
            expected_generation,
            lambda part, now: (replace(part.state, aggregates=wanted), []),
        ).provider()

    def heartbeat(self, uuid: str, at: float | None = None) -> None:
        # A plain write of a cell no transaction writes: no generation bump,
        # no Paxos round. Checked first so a heartbeat never creates a provider.
        self._read_state(uuid)
        # In the provider's home cell: an agent beats on while another DC is down.
        self._run(
            q.WRITE_HEARTBEAT, [self.clock() if at is None else at, uuid], cell=self._home(uuid)
        )

    # -- queries ------------------------------------------------------------------
    def _group_matcher(
        self, group: RequestGroup, *, check_types: bool = True
    ) -> Callable[[_State], bool]:
        rtype = None
        if group.provider_type and check_types:
            rtype = self.get_resource_type(group.provider_type)
        constraints = []
        for c in group.attributes:
            spec = rtype.attributes.get(c.name) if rtype else None
            if rtype is not None and spec is None:
                raise InvalidInput(
                    f"resource type {rtype.name} has no attribute {c.name!r}", field=c.name
                )
            constraints.append(check_constraint(spec or infer_spec(c.name, c.value), c))
        tree_root: str | None = None
        if group.in_tree:
            try:
                tree_root = self._read_state(group.in_tree).root_uuid
            except NotFound:
                tree_root = "-"  # matches nothing, as the SQLite store

        def match(s: _State) -> bool:
            if not group.required_traits <= s.traits or group.forbidden_traits & s.traits:
                return False
            if any(not (anyof & s.traits) for anyof in group.any_traits):
                return False
            if any(not (anyof & s.aggregates) for anyof in group.member_of):
                return False
            if group.forbidden_aggregates & s.aggregates:
                return False
            if tree_root is not None and s.root_uuid != tree_root:
                return False
            if group.provider_type and s.type != group.provider_type:
                return False
            return all(_attr_matches(c, s.attributes.get(c.name)) for c in constraints)

        return match

    def find_candidates(self, query: CandidateQuery) -> list[ProviderUsage]:
        group = query.group
        if not group.resources:
            raise InvalidInput("a candidate query needs at least one resource amount")
        order_rc = query.order_class()
        if order_rc not in group.resources:
            raise InvalidInput(f"sort class {order_rc} is not requested by the group")
        if query.roots is not None and not query.roots:
            return []
        now = self.clock()
        match = self._group_matcher(group)
        ckey = "i:" + order_rc
        amount = group.resources[order_rc]
        fetch = max(self.fetch, int(query.limit))
        want = int(query.limit)
        seen: set[str] = set()
        found: list[tuple[int, _State]] = []

        def accept(rows: list[Any]) -> None:
            for row in rows:
                if row.provider_uuid in seen:
                    continue
                seen.add(row.provider_uuid)
                state = self._from_row_cached(row)
                if state is None or state.uuid in query.exclude:
                    continue
                if not state.enabled and not query.include_disabled:
                    continue
                if (
                    query.heartbeat_after is not None
                    and state.heartbeat_at is not None
                    and state.heartbeat_at <= query.heartbeat_after
                ):
                    continue
                if query.roots is not None and state.root_uuid not in query.roots:
                    continue
                used = state.used(now)
                if not match(state) or not _fits(state, group, used):
                    continue
                free = state.inventories[order_rc].capacity - used.get(order_rc, 0)
                found.append((free, state))

        read = [0]

        def enough() -> bool:
            # At least ``fetch`` rows looked at, and ``limit`` of them fit.
            return read[0] >= fetch and len(found) >= want

        def take(rows: list[Any]) -> None:
            read[0] += len(rows)
            accept(rows)

        exhausted = self._scan_candidates(ckey, amount, fetch, take, enough)
        if exhausted and len(found) < want:
            # Every provider the conservative index admits has been seen; add
            # those whose claims have all expired since they were written.
            accept(self._run(q.CANDIDATES_EXPIRED, [ckey, amount, now, fetch]))
        sign = -1 if query.strategy == Strategy.SPREAD else 1
        found.sort(key=lambda fs: (sign * fs[0], fs[1].created_at, fs[1].seq, fs[1].uuid))
        return [s.usage(now) for _, s in found[:want]]

    def _scan_candidates(
        self,
        ckey: str,
        amount: int,
        fetch: int,
        accept: Callable[[list[Any]], None],
        enough: Callable[[], bool],
    ) -> bool:
        """Page through index rows with ``free >= amount`` in token order,
        from a random token round the ring, so that parallel schedulers look
        at different slices of a big cluster. Stops once ``enough()`` (rows
        the filters SAI cannot apply may reject many) or after MAX_PAGES;
        returns True if the whole ring was read."""
        start = random.randint(MIN_TOKEN + 1, MAX_TOKEN)
        pages = 0
        for lo, hi in ((start, MAX_TOKEN), (MIN_TOKEN, start - 1)):
            cursor = lo
            while True:
                rows = self._run(q.CANDIDATES_RANGE, [ckey, amount, cursor, hi, fetch])
                pages += 1
                accept(rows)
                if len(rows) < fetch or rows[-1].t >= hi:
                    break  # this arc is done
                if enough() or pages >= MAX_PAGES:
                    return False
                cursor = rows[-1].t + 1
            if enough() and lo != MIN_TOKEN:
                return False
        return True

    def candidate_trees(self, query: TreeQuery) -> TreePage:
        """The index rows of each needed class (SAI, bounded by MAX_PAGES)
        name the providers with room and their roots; the trees of one page
        are then walked through ``provider_children``, a level at a time, and
        the providers not seen in the index read. Every class's first page is
        read at once (asynchronously): round trips, not rows, are the cost."""
        needs = sorted(query.needs.items())
        if not needs:
            return TreePage([], [], None)
        now = self.clock()
        fetch = max(self.fetch, TREE_FETCH)
        stmts: list[tuple[str, list[Any]]] = []
        for rc, amount in needs:
            stmts.append((q.CANDIDATES_RANGE, ["i:" + rc, amount, MIN_TOKEN, MAX_TOKEN, fetch]))
            # The index counts claims that have since expired: add those.
            stmts.append((q.CANDIDATES_EXPIRED, ["i:" + rc, amount, now, fetch]))
        first = self._read_many(stmts)
        seen: dict[str, _State] = {}
        per_need: list[tuple[set[str], set[str]]] = []
        for n, (rc, amount) in enumerate(needs):
            roots: set[str] = set()
            sharing: set[str] = set()
            pages = [first[2 * n + 1], first[2 * n]]
            rows = first[2 * n]
            count = 1
            # Bounded like find_candidates: past MAX_PAGES pages (20,000
            # providers with room for one class) the rest of the ring is not
            # read, so a cloud that large may miss trees here.
            while len(rows) == fetch and count < MAX_PAGES:
                rows = self._run(
                    q.CANDIDATES_RANGE, ["i:" + rc, amount, rows[-1].t + 1, MAX_TOKEN, fetch]
                )
                pages.append(rows)
                count += 1
            for page in pages:
                for row in page:
                    state = self._from_row_cached(row)
                    if state is None:
                        continue
                    seen[state.uuid] = state
                    if SHARING_TRAIT in state.traits:
                        sharing.add(state.uuid)
                    roots.add(state.root_uuid)
            per_need.append((roots, sharing))
        # A tree that only a sharing provider serves with some class may have
        # none of its own providers in that class's index: any tree seen at
        # all may be such an anchor (the engine checks the aggregates). A
        # tree none of whose providers has room for anything adds no
        # candidate a sharing provider's own tree does not already give.
        everywhere = {s.root_uuid for s in seen.values()}
        candidates: set[str] | None = None
        for roots, sharing in per_need:
            ok = roots | everywhere if sharing else roots
            candidates = ok if candidates is None else candidates & ok
        ordered = sorted(r for r in candidates or set() if query.after is None or r > query.after)
        more = len(ordered) > query.max_roots
        page_roots = ordered[: query.max_roots]
        if self._has_tree_index():
            members = self._read_trees(page_roots, seen)
        else:
            members = self._tree_members(page_roots)
            missing = [u for u in members if u not in seen]
            for rows in self._run_many(q.READ_STATE, [[u] for u in missing]):
                state = _state_from_row(rows[0]) if rows else None
                if state is not None:
                    seen[state.uuid] = self._remember(state)
        states = [seen[u] for u in members if u in seen]
        aggs = set().union(*(s.aggregates for s in states)) if states else set()
        linked = sorted({u for _, sharing in per_need for u in sharing} - set(members))
        states += [seen[u] for u in linked if seen[u].aggregates & aggs]
        return TreePage(
            page_roots,
            [s.usage(now) for s in states],
            page_roots[-1] if more and page_roots else None,
        )

    def _read_many(self, stmts: list[tuple[str, list[Any]]]) -> list[list[Any]]:
        """Different reads at once (execute_async), results in order."""
        session = self._use_keyspace()
        local = self._route(self.dc)
        routes = [local if cql in _LOCAL else None for cql, _ in stmts]
        futures = [
            session.execute_async(
                self._prep(cql).bind(p), execution_profile=route or EXEC_PROFILE_DEFAULT
            )
            for (cql, p), route in zip(stmts, routes, strict=True)
        ]
        out = []
        for f, route in zip(futures, routes, strict=True):
            try:
                out.append(list(f.result()))
            except _DRIVER_ERRORS as exc:
                raise self._fail(exc, route) from exc
        return out

    def has_nested_providers(self) -> bool:
        """One row of ``provider_children``, not a read of every provider:
        Placement's candidates ask this on every request."""
        return bool(self._run(q.ANY_CHILD))

    def has_sharing_providers(self) -> bool:
        """One row of ``sharing_providers`` (one partition)."""
        return bool(self._run(q.ANY_SHARING))

    def flat_cloud(self) -> bool:
        # Both questions in one round trip.
        children, sharing = self._read_many([(q.ANY_CHILD, []), (q.ANY_SHARING, [])])
        return not (children or sharing)

    def _has_tree_index(self) -> bool:
        """Schema V9's index, as the driver's schema metadata has it (kept
        current by the cluster's schema events): a keyspace not yet migrated
        is walked through ``provider_children`` instead."""
        cluster = self._cluster
        meta = cluster.metadata.keyspaces.get(self.keyspace) if cluster is not None else None
        return meta is not None and TREE_INDEX in meta.indexes

    def _read_trees(self, roots: list[str], seen: dict[str, _State]) -> list[str]:
        """Every provider of these trees, one read per tree, all at once:
        roots first, then the others by root and uuid. Their states go
        into ``seen``."""
        others: list[str] = []
        for rows in self._run_many(q.TREE, [[r] for r in roots]):
            found = []
            for row in rows:
                state = self._from_row_cached(row)
                if state is not None:
                    seen[state.uuid] = state
                    if state.parent_uuid is not None:
                        found.append(state.uuid)
            others += sorted(found)
        return [r for r in roots if r in seen] + others

    def _tree_members(self, roots: list[str]) -> list[str]:
        """Every provider of these trees, roots first, a level at a time."""
        out = list(roots)
        level = list(roots)
        while level:
            nxt = [
                row.child_uuid
                for rows in self._run_many(q.CHILDREN, [[u] for u in level])
                for row in rows
            ]
            out += nxt
            level = nxt
        return out

    def get_usage(self, uuid: str) -> ProviderUsage:
        return self._settled_state(uuid, serial=True).usage(self.clock())

    def _settled_state(self, uuid: str, *, serial: bool = False) -> _State:
        """A provider as committed: a transaction met there that is decided
        (or abandoned) is finished first."""
        state = self._read_state(uuid, serial=serial)
        if state.pending and self._settle_met(state):
            state = self._read_state(uuid, serial=serial)
        return state

    # -- claims -----------------------------------------------------------------------
    def claim(self, spec: ClaimSpec) -> Claim:
        if spec.ttl <= 0:
            raise InvalidInput("a claim's ttl must be positive", field="ttl")
        _check_amounts(spec.amounts, "a claim")
        claim_uuid = spec.claim_uuid or new_uuid()
        if spec.claim_uuid and self._locator_rows(claim_uuid):
            raise AlreadyExists(f"claim {claim_uuid} already exists", uuid=claim_uuid)
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
                    raise _conflict(spec.provider_uuid, state.generation, spec.expected_generation)
                report = check_fit(state.fit_inventories(), state.used(now), spec.amounts)
                if not report.fits:
                    raise InsufficientCapacity(
                        f"does not fit on provider {spec.provider_uuid}: "
                        + "; ".join(report.reasons),
                        uuid=spec.provider_uuid,
                        reasons=report.reasons,
                    )
                entry = _Entry(
                    uuid=claim_uuid,
                    provider_uuid=spec.provider_uuid,
                    consumer_uuid=spec.consumer_uuid,
                    amounts=dict(spec.amounts),
                    status=ClaimStatus.CLAIMED,
                    request_uuid=spec.request_uuid,
                    group=spec.group,
                    project_id=spec.project_id,
                    user_id=spec.user_id,
                    created_at=now,
                    expires_at=now + spec.ttl,
                )
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

    def _in_any_cell(self, cql: str, params: list[Any]) -> list[Any]:
        """A plain read here; if it finds nothing, in each other cell that
        answers: a row written at LOCAL_QUORUM in another cell may not have
        reached this one yet."""
        rows = self._run(cql, params)  # in _LOCAL: this cell
        if rows or len(self.dcs) < 2:
            return rows
        for other in self.dcs:
            if other == self.dc:
                continue
            try:
                rows = self._run(cql, params, cell=other)
            except CellUnavailable:
                continue
            if rows:
                return rows
        return []

    def _bury(self, claim_uuid: str, provider_uuid: str, why: str) -> None:
        self._run(
            q.BURY_LOCATOR,
            [claim_uuid, provider_uuid, why, int(TOMBSTONE_TTL)],
            cell=self._home(provider_uuid),
        )

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

    def _entries_by(self, column: str, value: str, *, cell: str | None = None) -> list[_Entry]:
        rows = self._run(q.ENTRIES_BY[column], [value], cell=cell)
        return [e for e in map(_entry_from_row, rows) if e is not None]

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

    def providers_of_consumers(self, consumer_uuids: Iterable[str]) -> set[str]:
        uuids = sorted(set(consumer_uuids))
        if not uuids:
            return set()
        self._settle_consumers(uuids)
        now = self.clock()
        out: set[str] = set()
        for rows in self._run_many(q.ENTRIES_BY["consumer_uuid"], [[u] for u in uuids]):
            for e in map(_entry_from_row, rows):
                if e is not None and e.live(now):
                    out.add(e.provider_uuid)
        return out

    def providers_of_group(self, group: str) -> dict[str, int]:
        now = self.clock()
        entries = self._entries_by("grp", group)
        if self._settle_consumers(e.consumer_uuid for e in entries):
            entries = self._entries_by("grp", group)
        consumers: dict[str, set[str]] = {}
        for e in entries:
            if e.live(now):
                consumers.setdefault(e.provider_uuid, set()).add(e.consumer_uuid)
        return {p: len(c) for p, c in consumers.items()}

    # -- consumers and multi-provider transactions --------------------------------------
    # docs/cassandra.md ("Multi-provider writes") gives the protocol and the
    # argument why every interleaving is safe.
    def get_consumer(self, uuid: str) -> Consumer | None:
        return self._read_consumer(uuid)[0]

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

    def _write_home(
        self,
        writes: list[ConsumerAllocations],
        inventories: dict[str, tuple[int, dict[str, Inventory]]],
        homes: dict[str, _ConsumerHome],
    ) -> str | None:
        """The one cell every partition of an allocation write is homed in:
        its consumers' homes and its providers'. None: global, as before
        homes (a consumer made before them, providers without a home, one
        cell). A write that would span cells is refused before anything is
        written (docs/cells.md, "A consumer has a home cell")."""
        if len(self.dcs) < 2:
            return None
        for w in writes:
            home = homes[w.consumer_uuid]
            if home.new and home.unreachable and w.expected_generation is not None:
                # It may exist there: made here too, it would be two consumers.
                raise CellUnavailable(
                    f"consumer {w.consumer_uuid} is in no cell that answers, and cell"
                    f" {', '.join(home.unreachable)} is unreachable: it may be homed there",
                    cell=home.unreachable[0],
                    cells=list(home.unreachable),
                )
        if any(not h.new and h.cell is None for h in homes.values()):
            # Made before consumers had homes: global, as it always was.
            if any(h.cell is not None for h in homes.values()):
                raise _cross_cell("consumers homed in a cell and a global one", [])
            return None
        cells = {h.cell for h in homes.values() if not h.new}
        named = {p for w in writes for p, a in w.allocations.items() if a}
        named |= {p for w in writes for p in w.provider_generations}
        cells |= {self._home(p, found=True) for p in sorted(named | set(inventories))}
        if not cells:
            # New consumers and no provider named (a DELETE of what native
            # claims confirmed): the providers of their entries, read here.
            now = self.clock()
            for w in writes:
                for e in self._entries_by("consumer_uuid", w.consumer_uuid, cell=self.dc):
                    if e.live(now):
                        cells.add(self._home(e.provider_uuid))
        if len(cells) > 1:
            raise _cross_cell("providers or consumers homed in different cells", cells)
        return cells.pop() if cells else self.local_cell()

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

    @_uncut
    def write_allocations(self, writes: list[ConsumerAllocations]) -> None:
        self._transact(writes, {}, bump=True)

    @_uncut
    def reshape(self, spec: ReshapeSpec) -> None:
        writes = [replace(w, provider_generations={}) for w in spec.allocations]
        self._transact(writes, spec.inventories, bump=True)

    @_uncut
    def remove_consumer_allocations(self, consumer_uuid: str) -> bool:
        home = self._consumer_home(consumer_uuid)
        current, _ = self._read_consumer(consumer_uuid, home=home)
        held = [
            e
            for e in self._entries_by(
                "consumer_uuid", consumer_uuid, cell=self._consumer_cell(home)
            )
            if e.status == ClaimStatus.CONFIRMED
        ]
        if not held:
            return False
        # No generation bump on the providers (as Placement), the same
        # transaction otherwise: it waits for a write in flight on the consumer.
        self._transact(
            [
                ConsumerAllocations(
                    consumer_uuid,
                    current.project_id if current else held[0].project_id,
                    current.user_id if current else held[0].user_id,
                )
            ],
            {},
            bump=False,
        )
        return True

    def _transact(
        self,
        writes: list[ConsumerAllocations],
        inventories: dict[str, tuple[int, dict[str, Inventory]]],
        *,
        bump: bool,
    ) -> None:
        """Allocations (and reshaped inventories) over several providers and
        consumers, as one transaction. A consumer locked by a write still in
        flight is a definite conflict for a caller that named the generation
        it read; a caller that did not ("any") waits for it, boundedly."""
        for w in writes:
            for amounts in w.allocations.values():
                if amounts:
                    _check_amounts(amounts, "an allocation")
        if len({w.consumer_uuid for w in writes}) != len(writes):
            raise InvalidInput("a consumer appears twice in one allocation write")
        if (
            self.fast_writes
            and len(writes) == 1
            and not inventories
            and bump
            and fast.write(self, writes[0])
        ):
            return
        give_up = time.monotonic() + LOCK_WAIT
        for attempt in itertools.count():
            try:
                self._transact_once(writes, inventories, bump)
                return
            except _Busy as busy:
                named = any(w.expected_generation != "any" for w in writes)
                if named or time.monotonic() > give_up:
                    raise ConsumerGenerationConflict(
                        f"consumer {busy.consumer} is being written by another request: "
                        "re-read it and retry",
                        uuid=busy.consumer,
                    ) from None
                _backoff(min(attempt + 1, 6))

    def _transact_once(
        self,
        writes: list[ConsumerAllocations],
        inventories: dict[str, tuple[int, dict[str, Inventory]]],
        bump: bool,
    ) -> None:
        now = self.clock()
        homes = {w.consumer_uuid: self._consumer_home(w.consumer_uuid) for w in writes}
        # Every partition of the write in this one cell: its record too.
        cell = self._write_home(writes, inventories, homes)
        txn, deadline = new_txn_id(cell), now + TXN_DEADLINE
        current: dict[str, Consumer | None] = {}
        for w in sorted(writes, key=lambda w: w.consumer_uuid):
            consumer, holder = self._read_consumer(
                w.consumer_uuid, serial=True, home=homes[w.consumer_uuid]
            )
            if holder is not None:
                raise _Busy(w.consumer_uuid)
            current[w.consumer_uuid] = consumer
            if w.expected_generation != "any":
                have = None if consumer is None else consumer.generation
                if have != w.expected_generation:
                    raise ConsumerGenerationConflict(
                        f"consumer {w.consumer_uuid} is at generation {have}, "
                        f"not {w.expected_generation}",
                        uuid=w.consumer_uuid,
                        generation=have,
                    )
        plans: dict[str, _Plan] = {
            puuid: _Plan(inventories=self._validate_inventories(invs), expected_generation=gen)
            for puuid, (gen, invs) in inventories.items()
        }
        for w in writes:
            # Read before the lock, to refuse a write that cannot fit without
            # writing anything; checked again once the lock is held.
            # Providers of its live claims too: the pending part there keeps
            # them from being confirmed until this write is decided.
            for e in self._entries_by("consumer_uuid", w.consumer_uuid, cell=cell):
                if e.live(now):
                    plans.setdefault(e.provider_uuid, _Plan())
            for puuid, gen in w.provider_generations.items():
                plans.setdefault(puuid, _Plan()).expected_generation = gen
            for puuid, amounts in w.allocations.items():
                if amounts:
                    plans.setdefault(puuid, _Plan()).add[w.consumer_uuid] = (
                        w.project_id,
                        w.user_id,
                        dict(amounts),
                    )
        if cell is not None:
            # A live claim of a consumer elsewhere (the native scheduler does
            # not know consumers' homes) is a part the write cannot have.
            elsewhere = {self._home(p, found=True) for p in plans} - {cell}
            if elsewhere:
                raise _cross_cell(
                    "a consumer homed in one cell holds claims in another", {cell, *elsewhere}
                )
        names = frozenset(current)
        # Every provider exists and the write fits now: a write that can never
        # fit is refused before anything is written. A plain read: the pending
        # write checks again against what it conditions on.
        parts: dict[str, _Partition | None] = {}
        for puuid in sorted(plans):
            part = parts[puuid] = self._read_partition(puuid, serial=False)
            expected = plans[puuid].expected_generation
            if expected is not None and part.state.generation != expected:
                raise _conflict(puuid, part.state.generation, expected)
            self._pending_change(part, now, plans[puuid], names, txn, deadline, bump)
        consumer_plans: dict[str, ConsumerPlan] = {}
        for w in writes:
            c = current[w.consumer_uuid]
            consumer_plans[w.consumer_uuid] = ConsumerPlan(
                project_id=w.project_id,
                user_id=w.user_id,
                consumer_type=w.consumer_type or (c.consumer_type if c else None) or None,
                generation=c.generation if c else None,
                keep=any(a for a in w.allocations.values()),
            )
        plan = Plan(providers=tuple(sorted(plans)), consumers=consumer_plans)
        self._create_txn(txn, deadline, plan)
        self.stats["txns"] += 1
        self._hook("record", txn)
        try:
            for c in sorted(plan.consumers):
                self._lock_consumer(c, txn, deadline, plan.consumers[c].generation)
            # Locked, the consumers' allocations cannot change under us. A
            # consumer deleted and made again since it was read has its
            # generation back but maybe other providers: then it moved. A
            # claim made since the read could be confirmed unseen: retry.
            for c in sorted(plan.consumers):
                for e in self._entries_by("consumer_uuid", c, cell=cell):
                    if e.live(now) and e.provider_uuid not in plans:
                        raise _Busy(c)
            self._hook("locked", txn)
            for puuid in plan.providers:
                # Not from the check's read: the record and the locks came
                # since, and a lost LWT costs more than a SERIAL read.
                parts[puuid] = self._write_pending(
                    puuid, plans[puuid], names, txn, deadline, bump, None
                )
            self._hook("pending", txn)
        except BaseException:
            self._abandon(txn, plan)
            raise
        # The commit point: one LWT on one partition.
        try:
            status = self._decide(txn, COMMITTED)
        except StoreUnavailable:
            # Deciding again settles it: an abort loses to a commit that
            # applied. Unknown still: the caller is told so (503).
            if self._abandon(txn, plan) != COMMITTED:
                raise
            status = COMMITTED
        if status != COMMITTED:
            self._abandon(txn, plan)
            raise GenerationConflict(
                "the write outlived its deadline and another request abandoned it; "
                "nothing was written: retry"
            )
        self._hook("committed", txn)
        try:
            self._finish_decided(txn, plan, commit=True, known=parts)
        except ClaimantError as exc:
            # Committed is durable: whoever meets what is left rolls it forward.
            log.warning("transaction %s committed, roll-forward left to readers: %s", txn, exc)

    def _hook(self, phase: str, txn: str) -> None:
        if self.txn_hook is not None:
            self.txn_hook(phase, txn)

    def _pending_change(
        self,
        part: _Partition,
        now: float,
        plan: _Plan,
        names: frozenset[str],
        txn: str,
        deadline: float,
        bump: bool,
    ) -> _Change:
        """The provider with this transaction's part added, if it fits both
        once committed and while pending (the larger of old and new held)."""
        st = part.state
        puuid = st.uuid
        item = Pending(
            txn=txn,
            deadline=deadline,
            bump=bump,
            add=dict(plan.add),
            old={
                e.uuid: (e.consumer_uuid, dict(e.amounts))
                for e in part.entries.values()
                if e.consumer_uuid in names and e.status == ClaimStatus.CONFIRMED
            },
            inventories=plan.inventories,
            consumers=tuple(sorted(names)),
        )
        invs = plan.inventories if plan.inventories is not None else st.inventories
        for _, _, amounts in plan.add.values():
            problems = [
                p for rc, n in amounts.items() if rc in invs for p in invs[rc].amount_problems(n)
            ]
            if problems:
                raise InvalidInput("; ".join(problems), uuid=puuid)
        before = st.used(now)
        after = dict(before)
        for _, amounts in item.old.values():
            for rc, n in amounts.items():
                after[rc] = after.get(rc, 0) - n
        for _, _, amounts in item.add.values():
            for rc, n in amounts.items():
                after[rc] = after.get(rc, 0) + n
        reasons = []
        for rc, n in sorted(after.items()):
            if n <= 0:
                continue
            inv = invs.get(rc)
            if inv is None:
                reasons.append(f"{rc}: provider has no inventory of this class")
            elif n > inv.capacity and (plan.inventories is not None or n > before.get(rc, 0)):
                reasons.append(f"{rc}: used {n} would exceed capacity {inv.capacity}")
        if plan.inventories is None and not reasons:
            fit = st.fit_inventories()
            for rc, extra in sorted(item.reserve().items()):
                n = before.get(rc, 0) + extra
                if rc in fit and n > fit[rc].capacity:
                    reasons.append(f"{rc}: used {n} would exceed capacity {fit[rc].capacity}")
        if reasons:
            if plan.inventories is not None and not plan.add:
                # Only the new inventory is short of what is allocated already.
                raise InUse(
                    f"reshape would leave provider {puuid} with allocations beyond its "
                    "inventory: " + "; ".join(reasons),
                    uuid=puuid,
                )
            raise InsufficientCapacity(
                f"does not fit on provider {puuid}: " + "; ".join(reasons),
                uuid=puuid,
                reasons=reasons,
            )
        return (
            replace(st, pending=(*st.pending, item)),
            [(q.WRITE_TXN_ROW, [puuid, "t:" + txn, deadline])],
        )

    def _write_pending(
        self,
        puuid: str,
        plan: _Plan,
        names: frozenset[str],
        txn: str,
        deadline: float,
        bump: bool,
        first: _Partition | None,
    ) -> _Partition | None:
        """Write one provider's pending part; returns the partition as written
        (None if that is not known), for the roll-forward to start from."""
        base: list[_Partition] = []

        def change(part: _Partition, now: float) -> _Change | None:
            base[:] = [part]
            if part.state.pending_part(txn) is not None:
                return None
            return self._pending_change(part, now, plan, names, txn, deadline, bump)

        new = self._update(
            puuid,
            plan.expected_generation,
            change,
            bump=bump,
            need_entries=True,
            entry_key="t:" + txn,
            first=first,
        )
        if not base or new.pending_part(txn) is None:
            return None
        return _Partition(new, dict(base[0].entries))

    def _create_txn(self, txn: str, deadline: float, plan: Plan) -> None:
        cell = txn_cell(txn)
        applied, row = self._lwt_sure(
            q.CREATE_TXN,
            [txn, deadline, plan.to_text(), self.clock(), TXN_RECORD_TTL],
            done=lambda: bool(self._run(q.READ_TXN, [txn], serial=True, cell=cell)),
            cell=cell,
        )
        if not applied and (row is None or row.status != PENDING):
            raise StoreUnavailable(f"transaction record {txn} could not be written")

    def _lock_consumer(self, uuid: str, txn: str, deadline: float, generation: int | None) -> None:
        # The consumer's home is the transaction's: a new one is made there.
        cell = txn_cell(txn)
        applied, row = self._lwt_sure(
            q.LOCK_CONSUMER,
            [txn, deadline, home_param(cell), uuid, generation],
            done=lambda: self._consumer_txn(uuid, cell) == txn,
            cell=cell,
        )
        if applied or (row is not None and row.txn == txn):
            return
        # Locked by another write, or moved since it was read: either way the
        # caller's reading is stale.
        raise _Busy(uuid)

    def _consumer_txn(self, uuid: str, cell: str | None) -> str | None:
        rows = self._run(q.GET_CONSUMER, [uuid], serial=True, cell=cell)
        return rows[0].txn if rows else None

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

    def usages_by_project(
        self, project_id: str, user_id: str | None = None, consumer_type: str | None = None
    ) -> dict[str, dict[str, int]]:
        # Any consumer may be joining the project by a transaction still
        # locking it: every decided one is finished first (the locks index
        # holds only writes in flight or left behind, so this stays small).
        for r in self._run(q.ALL_LOCKS):
            if r.txn is not None:
                self._finish(r.txn, consumer=r.uuid)
        now = self.clock()
        entries = [
            e
            for e in self._entries_by("project_id", project_id)
            if e.live(now) and (user_id is None or e.user_id == user_id)
        ]
        types: dict[str, str] = {}
        uuids = sorted({e.consumer_uuid for e in entries})
        for uuid, rows in zip(
            uuids, self._run_many(q.GET_CONSUMER, [[u] for u in uuids]), strict=True
        ):
            types[uuid] = (rows[0].consumer_type if rows else None) or "unknown"
        out: dict[str, dict[str, int]] = {}
        counted: dict[str, set[str]] = {}
        for e in entries:
            ctype = "all" if consumer_type == "all" else types[e.consumer_uuid]
            if consumer_type is not None and ctype != consumer_type:
                continue
            bucket = out.setdefault(ctype, {})
            counted.setdefault(ctype, set()).add(e.consumer_uuid)
            for rc, n in e.amounts.items():
                bucket[rc] = bucket.get(rc, 0) + n
        for ctype, bucket in out.items():
            bucket["consumer_count"] = len(counted[ctype])
        return out

    # -- bulk import (claimant/store/cassandra/bulk.py) -------------------------
    def import_providers(self, providers: Sequence[Provider]) -> int:
        return bulk.import_providers(self, providers)

    def import_allocations(self, consumers: Sequence[ImportedConsumer]) -> int:
        return bulk.import_allocations(self, consumers)

    # -- requests ----------------------------------------------------------------------
    @_uncut
    def create_request(self, request: Request) -> Request:
        # The uuid is claimed by one LWT in ``request_ids``; the record itself
        # is written plainly, as every later save_request is: a partition
        # written both ways can shadow a later plain save under clock skew.
        now = self.clock()
        saved = request.evolve(created_at=request.created_at or now, updated_at=now)
        owner = new_uuid()
        # Homed in the cell it is confined to, else this service's: a cell
        # cut off from the others still takes requests (docs/cells.md).
        home = saved.cell or self.local_cell()
        try:
            applied, _ = self._lwt(q.CLAIM_REQUEST_ID, [saved.uuid, owner, now], cell=home)
        except StoreUnavailable:
            # The outcome may be unknown: a SERIAL read says whether ours landed.
            rows = self._run(q.REQUEST_ID_OWNER, [saved.uuid], serial=True, cell=home)
            if not rows or rows[0].owner != owner:
                raise
            applied = True
        if not applied:
            raise AlreadyExists(f"request {saved.uuid} already exists", uuid=saved.uuid)
        self._write_request(saved)
        return saved

    @_uncut
    def save_request(self, request: Request) -> Request:
        now = self.clock()
        saved = request.evolve(created_at=request.created_at or now, updated_at=now)
        self._write_request(saved)
        return saved

    def _write_request(self, saved: Request) -> None:
        # In its home cell (create_request); read back by _in_any_cell.
        self._run(
            q.SAVE_REQUEST,
            [saved.uuid, saved.status.value, saved.created_at, json.dumps(request_to_dict(saved))],
            cell=saved.cell or self.local_cell(),
        )

    def summary(self, heartbeat_after: float | None) -> CloudSummary:
        return _summary.summary(self, heartbeat_after)

    def heartbeats_between(self, after: float, until: float) -> list[Provider]:
        return _summary.heartbeats_between(self, after, until)

    def add_events(self, events: Sequence[Event]) -> None:
        _events.add_events(self, events)

    def create_aggregate(self, name: str, uuid: str | None = None) -> AggregateName:
        return _aggregates.create(self, name, uuid)

    def get_aggregate(self, ref: str) -> AggregateName:
        return _aggregates.get(self, ref)

    def list_aggregates(self) -> list[AggregateName]:
        return _aggregates.list_all(self)

    def delete_aggregate(self, ref: str) -> None:
        _aggregates.delete(self, ref)

    def list_events(self, subject: Subject, subject_id: str, *, limit: int = 100) -> list[Event]:
        return _events.list_events(self, subject, subject_id, limit)

    def get_request(self, uuid: str) -> Request:
        rows = self._in_any_cell(q.GET_REQUEST, [uuid])
        if not rows:
            raise NotFound(f"no request {uuid}", kind="request", uuid=uuid)
        return request_from_dict(json.loads(rows[0].body))

    def list_requests(
        self, *, status: str | None = None, project_id: str | None = None, limit: int = 100
    ) -> list[Request]:
        rows = [r for r in self._run(q.ALL_REQUESTS) if status is None or r.status == status]
        rows.sort(key=lambda r: r.created_at or 0.0, reverse=True)
        out: list[Request] = []
        for row in rows:
            if len(out) >= limit:
                break
            request = request_from_dict(json.loads(row.body))
            if project_id is None or request.project_id == project_id:
                out.append(request)
        return out


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


def _conflict(uuid: str, have: int, expected: int | None) -> GenerationConflict:
    return GenerationConflict(
        f"provider {uuid} is at generation {have}, not {expected}: re-read and retry",
        uuid=uuid,
        generation=have,
    )


def _exists(what: str, value: str) -> AlreadyExists:
    return AlreadyExists(f"a provider with {what} {value!r} already exists", field=what)


def _type_from_json(body: str) -> ResourceType:
    d = json.loads(body)
    return ResourceType(
        d["name"],
        tuple(
            AttributeSpec(a["name"], a["kind"], a.get("required", False), a.get("description", ""))
            for a in d["attributes"]
        ),
        d.get("description", ""),
        builtin=False,
    )

"""The Cassandra store: one partition per provider, one lightweight transaction
per change to it. docs/cassandra.md explains the layout and the round trips."""

from __future__ import annotations

import json
import logging
import math
import random
import re
import time
from collections import namedtuple
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from cassandra import (
    ConsistencyLevel,
    DriverException,
    OperationTimedOut,
    RequestValidationException,
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
    AlreadyExists,
    AttributeSpec,
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
    new_uuid,
)
from claimant.model.codec import request_from_dict, request_to_dict
from claimant.model.names import (
    STANDARD_RESOURCE_CLASSES,
    STANDARD_TRAITS,
    default_discrete,
    validate_custom_name,
)
from claimant.model.types import AttributeConstraint, check_constraint, infer_spec
from claimant.store.base import (
    UNSET,
    CandidateQuery,
    ClaimSpec,
    ProviderFilter,
    ReshapeSpec,
    Store,
    _Unset,
)
from claimant.store.cassandra import queries as q
from claimant.store.cassandra.schema import DATA_TABLES, MIGRATIONS, keyspace_cql

log = logging.getLogger(__name__)

OPTIONS: Final = ("rf", "dc", "serial", "consistency", "port", "timeout", "fetch")
_CONSISTENCY = {
    name: getattr(ConsistencyLevel, name)
    for name in ("ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE")
}
_SERIAL = {"SERIAL": ConsistencyLevel.SERIAL, "LOCAL_SERIAL": ConsistencyLevel.LOCAL_SERIAL}
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
MIN_TOKEN, MAX_TOKEN = -(2**63), 2**63 - 1  # Murmur3Partitioner's ring
# Candidate pages read before settling for fewer than ``limit`` candidates.
MAX_PAGES = 20
# Unconfirmed holds kept as JSON: [claim uuid, expires_at, {class: amount}].
Hold = tuple[str, float, dict[str, int]]


class OutcomeUnknown(StoreUnavailable):
    """A lightweight transaction timed out and re-reading could not tell
    whether it was applied."""


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


def _translate(exc: BaseException) -> ClaimantError:
    if isinstance(exc, ClaimantError):
        return exc
    if isinstance(exc, RequestValidationException):
        # Schema missing or a query the node refuses: not the caller's input.
        return StoreUnavailable(f"Cassandra refused a query: {exc}", driver=type(exc).__name__)
    return StoreUnavailable(f"Cassandra unavailable: {exc}", driver=type(exc).__name__)


_DRIVER_ERRORS = (DriverException, NoHostAvailable, ConnectionException, OSError)


def _is_unknown_outcome(exc: BaseException) -> bool:
    """A CAS write whose fate the coordinator could not learn."""
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

    def live_holds(self, now: float) -> list[Hold]:
        return [h for h in self.holds if h[1] > now]

    def used(self, now: float) -> dict[str, int]:
        used = dict(self.alloc_used)
        for _, _, amounts in self.live_holds(now):
            for rc, n in amounts.items():
                used[rc] = used.get(rc, 0) + n
        return used

    def usages(self, now: float) -> dict[str, Usage]:
        used = self.used(now)
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
    for rc, amount in group.resources.items():
        inv = state.inventories.get(rc)
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
    """What one provider's transaction of a multi-provider write changes."""

    inventories: dict[str, Inventory] | None = None
    expected_generation: int | None = None
    remove_consumers: set[str] = field(default_factory=set)
    add: list[_Entry] = field(default_factory=list)


class CassandraStore(Store):
    """``cassandra://h1,h2,h3/keyspace?rf=3&dc=DC1&serial=LOCAL_SERIAL``.

    Options: ``rf`` replication factor used by ``migrate`` (default 1), ``dc``
    local data centre (NetworkTopologyStrategy, DC-aware routing, LOCAL_*
    consistency), ``serial`` SERIAL or LOCAL_SERIAL, ``consistency`` of plain
    reads and writes (default QUORUM, LOCAL_QUORUM with ``dc``), ``port``,
    ``timeout`` seconds per request, ``fetch`` candidate rows read per query.
    """

    def __init__(self, hosts: list[str], keyspace: str, *, url: str | None = None, **options: str):
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise InvalidInput(
                f"unknown Cassandra store URL option(s): {', '.join(unknown)}"
                f" (known: {', '.join(OPTIONS)})"
            )
        if not keyspace.replace("_", "a").isalnum() or not keyspace[0].isalpha():
            raise InvalidInput(f"keyspace {keyspace!r} must be letters, digits and _")
        if len(keyspace) > 48:
            raise InvalidInput("keyspace name is longer than 48 characters")
        self.url = url or f"cassandra://{','.join(hosts)}/{keyspace}"
        self.keyspace = keyspace
        self.rf = _int_option("rf", options.get("rf", "1"), 1, 20)
        self.dc = options.get("dc") or None
        serial = options.get("serial", "LOCAL_SERIAL" if self.dc else "SERIAL").upper()
        if serial not in _SERIAL:
            raise InvalidInput("store URL option serial must be SERIAL or LOCAL_SERIAL")
        self.serial = _SERIAL[serial]
        consistency = options.get("consistency", "LOCAL_QUORUM" if self.dc else "QUORUM").upper()
        if consistency not in _CONSISTENCY:
            raise InvalidInput(
                f"store URL option consistency must be one of {', '.join(_CONSISTENCY)}"
            )
        self.consistency = _CONSISTENCY[consistency]
        self.port = _int_option("port", options.get("port", "9042"), 1, 65535)
        self.timeout = float(_int_option("timeout", options.get("timeout", "10"), 1, 600))
        self.fetch = _int_option("fetch", options.get("fetch", "20"), 1, 100_000)
        self.hosts: list[str] = []
        for h in hosts:
            host, _, port = h.partition(":")
            if port and int(_int_option("port", port, 1, 65535)) != self.port:
                self.port = int(port)
            self.hosts.append(host)
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._prepared: dict[str, PreparedStatement] = {}
        # provider uuid -> the newest state this process has seen; a claim
        # against that generation needs no read first (docs/cassandra.md).
        self._states: dict[str, _State] = {}
        # Counters the benchmark reports.
        self.stats: dict[str, int] = {"cas": 0, "cas_lost": 0, "serial_reads": 0, "unknown": 0}

    # -- connection ----------------------------------------------------------------
    def _connect(self) -> Session:
        if self._session is not None:
            return self._session
        child = DCAwareRoundRobinPolicy(local_dc=self.dc) if self.dc else RoundRobinPolicy()
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(child),
            consistency_level=self.consistency,
            serial_consistency_level=self.serial,
            request_timeout=self.timeout,
            row_factory=_row_factory,
        )
        options: dict[str, Any] = {
            "contact_points": self.hosts,
            "port": self.port,
            "execution_profiles": {EXEC_PROFILE_DEFAULT: profile},
            "connect_timeout": self.timeout,
            # Claims are small and CPU is what runs out first (profiled): no LZ4.
            "compression": False,
            # Schema changes on a busy multi-node cluster take a while to agree.
            "max_schema_agreement_wait": 60,
        }
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
            raise StoreUnavailable(
                f"cannot reach Cassandra at {','.join(self.hosts)}:{self.port}: {exc}"
            ) from exc
        self._cluster, self._session = cluster, session
        return session

    def _use_keyspace(self) -> Session:
        session = self._connect()
        if session.keyspace != self.keyspace:
            try:
                session.set_keyspace(self.keyspace)
            except _DRIVER_ERRORS as exc:
                raise StoreUnavailable(
                    f"keyspace {self.keyspace} is not there: run migrate first ({exc})"
                ) from exc
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

    def _run(self, cql: str, params: Iterable[Any] = (), *, serial: bool = False) -> list[Any]:
        stmt = self._prep(cql).bind(list(params))
        if serial:
            stmt.consistency_level = self.serial
            self.stats["serial_reads"] += 1
        try:
            return list(self._use_keyspace().execute(stmt))
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    def _run_many(self, cql: str, param_lists: list[list[Any]]) -> list[list[Any]]:
        """The same statement for many partitions, in parallel (execute_async)."""
        session = self._use_keyspace()
        stmt = self._prep(cql)
        futures = [session.execute_async(stmt.bind(p)) for p in param_lists]
        out = []
        for f in futures:
            try:
                out.append(list(f.result()))
            except _DRIVER_ERRORS as exc:
                raise _translate(exc) from exc
        return out

    def _lwt(self, cql: str, params: Iterable[Any]) -> tuple[bool, Any]:
        """A single-statement LWT on a lookup table; (applied, current row)."""
        stmt = self._prep(cql).bind(list(params))
        try:
            rs = self._use_keyspace().execute(stmt)
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc
        row = rs.one()
        return _applied(row), row

    def _ddl(self, cql: str) -> None:
        try:
            self._connect().execute(cql, timeout=120)
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    # -- lifecycle -------------------------------------------------------------------
    def migrate(self) -> int:
        self._ddl(keyspace_cql(self.keyspace, self.rf, self.dc))
        for attempt in range(20):
            try:
                self._use_keyspace()
                break
            except StoreUnavailable:
                # The node asked may not have the new keyspace yet.
                if attempt == 19:
                    raise
                time.sleep(1)
        try:
            rows = self._run(q.GET_META, ["schema_version"])
            version = int(rows[0].value) if rows else 0
        except StoreUnavailable:
            version = 0  # no meta table yet
        for statements in MIGRATIONS[version:]:
            for cql in statements:
                self._ddl(cql.replace("{ks}", self.keyspace))
        self._run(q.SET_META, ["schema_version", str(len(MIGRATIONS))])
        return len(MIGRATIONS)

    def drop(self) -> None:
        self._ddl(f"DROP KEYSPACE IF EXISTS {self.keyspace}")
        self._prepared.clear()
        self._states.clear()
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

    def create_resource_class(self, rc: ResourceClass) -> ResourceClass:
        validate_custom_name(rc.name)
        applied, _ = self._lwt(q.CREATE_CLASS, [rc.name, rc.discrete, self.clock()])
        if not applied:
            raise AlreadyExists(f"resource class {rc.name} already exists", name=rc.name)
        return ResourceClass(rc.name, rc.discrete, False)

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

    def create_trait(self, name: str) -> bool:
        validate_custom_name(name, "trait")
        applied, _ = self._lwt(q.CREATE_TRAIT, [name, self.clock()])
        return applied

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
        rows = self._run(q.READ_STATE, [uuid], serial=serial)
        state = _state_from_row(rows[0]) if rows else None
        if state is None:
            self._states.pop(uuid, None)
            raise NotFound(f"provider {uuid} not found", kind="provider", uuid=uuid)
        return self._remember(state)

    def _read_partition(self, uuid: str, *, serial: bool = True) -> _Partition:
        rows = self._run(q.READ_PARTITION, [uuid], serial=serial)
        state = _state_from_row(rows[0]) if rows else None
        if state is None:
            self._states.pop(uuid, None)
            raise NotFound(f"provider {uuid} not found", kind="provider", uuid=uuid)
        part = _Partition(self._remember(state))
        for row in rows:
            entry = _entry_from_row(row)
            if entry is not None:
                part.entries[entry.uuid] = entry
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
        out = []
        for rc, inv in state.inventories.items():
            cap = inv.capacity
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
    ) -> bool:
        """Write ``new`` (whose version is fresh) if the partition is still at
        ``old``'s version: ONE conditional batch on the provider's partition.
        An unknown outcome is resolved by a SERIAL re-read."""
        batch = BatchStatement(
            batch_type=BatchType.LOGGED,
            consistency_level=self.consistency,
            serial_consistency_level=self.serial,
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
        self.stats["cas"] += 1
        try:
            rs = self._use_keyspace().execute(batch)
            applied = _applied(rs.one())
        except _DRIVER_ERRORS as exc:
            if not _is_unknown_outcome(exc):
                raise _translate(exc) from exc
            self.stats["unknown"] += 1
            log.warning("outcome of a write to provider %s unknown (%s): re-reading", new.uuid, exc)
            applied = self._resolve(new, entry_key)
        if applied:
            self._remember(new)
        else:
            self.stats["cas_lost"] += 1
            self._states.pop(new.uuid, None)
        return applied

    def _resolve(self, new: _State, entry_key: str | None) -> bool:
        """Did a CAS whose reply was lost apply? A SERIAL read finishes or
        supersedes any Paxos round still in flight, so what it sees is final:
        the claim row is there (or the partition carries the new version, or
        the one after it) exactly when the write applied."""
        last: BaseException | None = None
        for attempt in range(3):
            try:
                if entry_key is not None:
                    return bool(self._run(q.READ_ENTRY_KEY, [new.uuid, entry_key], serial=True))
                rows = self._run(q.READ_VERSION, [new.uuid], serial=True)
                if not rows:
                    return False
                if new.version in (rows[0].version, rows[0].prev_version):
                    return True
                if rows[0].version is None:
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
                time.sleep(0.05 * (attempt + 1))
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
        change: Callable[[_Partition, float], tuple[_State, list[tuple[str, list[Any]]]]],
        *,
        bump: bool = True,
        need_entries: bool = False,
    ) -> _State:
        """Read at SERIAL, check the generation, apply ``change``, CAS; a CAS
        lost to a write that left the generation alone (a heartbeat does
        not write here; an expiry sweep does) is retried."""
        for attempt in range(CAS_ATTEMPTS):
            _backoff(attempt)
            now = self.clock()
            if need_entries:
                part = self._read_partition(uuid)
            else:
                part = _Partition(self._read_state(uuid, serial=True))
            old = part.state
            if expected_generation is not None and old.generation != expected_generation:
                raise _conflict(uuid, old.generation, expected_generation)
            new, extra = change(part, now)
            new = self._next_state(old, new, now, bump=bump)
            if self._cas(old, new, now, extra):
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
        existing = self._run(q.READ_VERSION, [provider.uuid])
        if existing and existing[0].version:
            raise _exists("uuid", provider.uuid)
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
            )
            pending.append(session.execute_async(write.bind(self._state_params(state)[:-1])))
            pending.append(session.execute_async(name.bind([p.name, p.uuid])))
            for _, params in self._index_rows(state, now):
                pending.append(session.execute_async(index.bind(params)))
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
        return self._read_state(uuid).provider()

    def list_providers(self, flt: ProviderFilter | None = None) -> list[Provider]:
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
        return [s.provider() for s in states]

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

    def delete_provider(self, uuid: str) -> None:
        for attempt in range(CAS_ATTEMPTS):
            _backoff(attempt)
            now = self.clock()
            part = self._read_partition(uuid)
            if self._run(q.CHILDREN, [uuid]):
                raise InUse(f"provider {uuid} has children", uuid=uuid)
            if any(e.live(now) for e in part.entries.values()):
                raise InUse(f"provider {uuid} has claims or allocations", uuid=uuid)
            batch = BatchStatement(
                batch_type=BatchType.LOGGED,
                consistency_level=self.consistency,
                serial_consistency_level=self.serial,
            )
            batch.add(self._prep(q.DELETE_STATICS), [uuid, part.state.version])
            keys = ["i:" + rc for rc in part.state.inventories]
            keys += ["l:" + e for e in part.entries]
            for key in keys:
                batch.add(self._prep(q.DELETE_ROW), [uuid, key])
            try:
                applied = _applied(self._use_keyspace().execute(batch).one())
            except _DRIVER_ERRORS as exc:
                raise _translate(exc) from exc
            if applied:
                break
        else:
            raise GenerationConflict(f"provider {uuid} kept changing: retry", uuid=uuid)
        self._states.pop(uuid, None)
        self._lwt(q.FREE_NAME, [part.state.name, uuid])
        if part.state.parent_uuid:
            self._run(q.DROP_CHILD, [part.state.parent_uuid, uuid])

    def set_inventories(
        self,
        uuid: str,
        expected_generation: int | None,
        inventories: dict[str, Inventory],
        *,
        allow_overcapacity: bool = False,
    ) -> Provider:
        invs = self._validate_inventories(inventories)

        def change(part: _Partition, now: float) -> tuple[_State, list[tuple[str, list[Any]]]]:
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

    def set_traits(
        self, uuid: str, expected_generation: int | None, traits: Iterable[str]
    ) -> Provider:
        wanted = self._check_traits(traits)
        return self._update(
            uuid, expected_generation, lambda part, now: (replace(part.state, traits=wanted), [])
        ).provider()

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
        self._run(q.WRITE_HEARTBEAT, [self.clock() if at is None else at, uuid])

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
                if state is None or not state.enabled or state.uuid in query.exclude:
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

    def get_usage(self, uuid: str) -> ProviderUsage:
        return self._read_state(uuid, serial=True).usage(self.clock())

    # -- claims -----------------------------------------------------------------------
    def claim(self, spec: ClaimSpec) -> Claim:
        if spec.ttl <= 0:
            raise InvalidInput("a claim's ttl must be positive", field="ttl")
        _check_amounts(spec.amounts, "a claim")
        claim_uuid = spec.claim_uuid or new_uuid()
        if spec.claim_uuid and self._run(q.LOCATE, [claim_uuid]):
            raise AlreadyExists(f"claim {claim_uuid} already exists", uuid=claim_uuid)
        session = self._use_keyspace()
        locator = None
        state = self._states.get(spec.provider_uuid)
        if state is not None and state.generation != spec.expected_generation:
            state = None
        for attempt in range(CAS_ATTEMPTS):
            _backoff(attempt)
            now = self.clock()
            if state is None:
                state = self._read_state(spec.provider_uuid, serial=True)
            if state.generation != spec.expected_generation:
                raise _conflict(spec.provider_uuid, state.generation, spec.expected_generation)
            report = check_fit(state.inventories, state.used(now), spec.amounts)
            if not report.fits:
                raise InsufficientCapacity(
                    f"does not fit on provider {spec.provider_uuid}: " + "; ".join(report.reasons),
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
                # In parallel with the transaction: a claim is found by uuid later.
                locator = session.execute_async(
                    self._prep(q.WRITE_LOCATOR).bind(
                        [
                            claim_uuid,
                            spec.provider_uuid,
                            self._ttl(entry.expires_at, now) + int(TOMBSTONE_TTL),
                        ]
                    )
                )
            hold: Hold = (claim_uuid, now + spec.ttl, dict(spec.amounts))
            new = self._next_state(
                state, replace(state, holds=(*state.holds, hold)), now, bump=True
            )
            if self._cas(
                state, new, now, [self._entry_stmt(entry, now)], entry_key="l:" + claim_uuid
            ):
                self._wait_locator(locator, claim_uuid, spec.provider_uuid, entry, now)
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
        self._run(q.WRITE_LOCATOR, [claim_uuid, provider_uuid, ttl])

    def _locate(self, claim_uuid: str) -> str | None:
        """The claim's provider; None if unknown or gone."""
        rows = self._run(q.LOCATE, [claim_uuid])
        return rows[0].provider_uuid if rows and not rows[0].gone else None

    def _bury(self, claim_uuid: str, provider_uuid: str, why: str) -> None:
        self._run(q.BURY_LOCATOR, [claim_uuid, provider_uuid, why, int(TOMBSTONE_TTL)])

    def confirm_claim(self, claim_uuid: str) -> Claim:
        rows = self._run(q.LOCATE, [claim_uuid])
        if not rows:
            raise NotFound(f"no claim {claim_uuid}", kind="claim", uuid=claim_uuid)
        if rows[0].gone:
            raise ClaimNotActive(f"claim {claim_uuid} was {rows[0].gone}", uuid=claim_uuid)
        provider_uuid = rows[0].provider_uuid
        for attempt in range(CAS_ATTEMPTS):
            _backoff(attempt)
            now = self.clock()
            try:
                part = self._read_partition(provider_uuid)
            except NotFound:
                raise NotFound(f"no claim {claim_uuid}", kind="claim", uuid=claim_uuid) from None
            entry = part.entries.get(claim_uuid)
            if entry is None:
                # Located but not in the ledger: Cassandra's TTL removed it.
                raise ClaimNotActive(f"claim {claim_uuid} has expired", uuid=claim_uuid)
            if not entry.live(now):
                raise ClaimNotActive(f"claim {claim_uuid} has expired", uuid=claim_uuid)
            if entry.status == ClaimStatus.CONFIRMED:
                return entry.claim()
            old = part.state
            confirmed = replace(entry, status=ClaimStatus.CONFIRMED, expires_at=None)
            alloc = dict(old.alloc_used)
            for rc, n in entry.amounts.items():
                alloc[rc] = alloc.get(rc, 0) + n
            # No generation bump: what the provider holds does not change (as SQLite).
            new = self._next_state(
                old,
                replace(
                    old, alloc_used=alloc, holds=tuple(h for h in old.holds if h[0] != claim_uuid)
                ),
                now,
                bump=False,
            )
            if self._cas(old, new, now, [self._entry_stmt(confirmed, now)]):
                self._run(q.WRITE_LOCATOR, [claim_uuid, provider_uuid, 0])
                return confirmed.claim()
        raise GenerationConflict(f"provider {provider_uuid} kept changing: retry")

    def release_claim(self, claim_uuid: str) -> None:
        provider_uuid = self._locate(claim_uuid)
        if provider_uuid is None:
            raise NotFound(f"no live claim {claim_uuid}", kind="claim", uuid=claim_uuid)
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
            new = self._next_state(old, _without(old, [entry]), now, bump=True)
            if self._cas(old, new, now, [(q.DELETE_ROW, [provider_uuid, "l:" + claim_uuid])]):
                self._bury(claim_uuid, provider_uuid, "released")
                return
        raise GenerationConflict(f"provider {provider_uuid} kept changing: retry")

    def get_claim(self, claim_uuid: str) -> Claim:
        provider_uuid = self._locate(claim_uuid)
        rows = self._run(q.READ_ENTRY, [provider_uuid, "l:" + claim_uuid]) if provider_uuid else []
        entry = _entry_from_row(rows[0]) if rows else None
        if entry is None or not entry.live(self.clock()):
            raise NotFound(f"no live claim {claim_uuid}", kind="claim", uuid=claim_uuid)
        return entry.claim()

    def _entries_by(self, column: str, value: str) -> list[_Entry]:
        rows = self._run(q.ENTRIES_BY[column], [value])
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
                entries = list(self._read_partition(provider_uuid, serial=False).entries.values())
            except NotFound:
                return []
        elif consumer_uuid is not None:
            entries = self._entries_by("consumer_uuid", consumer_uuid)
        elif request_uuid is not None:
            entries = self._entries_by("request_uuid", request_uuid)
        elif group is not None:
            entries = self._entries_by("grp", group)
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
        providers = {r.provider_uuid for r in self._run(q.STALE_HOLDS, [now])}
        providers |= {r.provider_uuid for r in self._run(q.EXPIRED_ENTRIES, [now])}
        removed = 0
        for uuid in sorted(providers):
            removed += self._sweep(uuid)
        return removed

    def _sweep(self, uuid: str) -> int:
        """Drop a provider's expired claims (rows and holds), no generation bump:
        an expired claim already counted for nothing."""
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
                return len(dead)
        return 0

    def providers_of_consumers(self, consumer_uuids: Iterable[str]) -> set[str]:
        uuids = sorted(set(consumer_uuids))
        if not uuids:
            return set()
        now = self.clock()
        out: set[str] = set()
        for rows in self._run_many(q.ENTRIES_BY["consumer_uuid"], [[u] for u in uuids]):
            for e in map(_entry_from_row, rows):
                if e is not None and e.live(now):
                    out.add(e.provider_uuid)
        return out

    def providers_of_group(self, group: str) -> dict[str, int]:
        now = self.clock()
        consumers: dict[str, set[str]] = {}
        for e in self._entries_by("grp", group):
            if e.live(now):
                consumers.setdefault(e.provider_uuid, set()).add(e.consumer_uuid)
        return {p: len(c) for p, c in consumers.items()}

    # -- consumers ------------------------------------------------------------------
    def get_consumer(self, uuid: str) -> Consumer | None:
        rows = self._run(q.GET_CONSUMER, [uuid])
        if not rows:
            return None
        r = rows[0]
        return Consumer(r.uuid, r.project_id, r.user_id, r.consumer_type or "", r.generation)

    def write_allocations(self, writes: list[ConsumerAllocations]) -> None:
        self._apply(writes, {})

    def reshape(self, spec: ReshapeSpec) -> None:
        writes = [replace(w, provider_generations={}) for w in spec.allocations]
        self._apply(writes, spec.inventories)

    def _apply(
        self,
        writes: list[ConsumerAllocations],
        inventories: dict[str, tuple[int, dict[str, Inventory]]],
    ) -> None:
        """Allocations (and reshaped inventories) over several providers: one
        LWT per provider in uuid order; on a failure the providers already
        written are put back (docs/cassandra.md: the window)."""
        now = self.clock()
        consumers: dict[str, Consumer | None] = {}
        for w in writes:
            for amounts in w.allocations.values():
                if amounts:
                    _check_amounts(amounts, "an allocation")
            current = self._read_consumer(w.consumer_uuid)
            consumers[w.consumer_uuid] = current
            if w.expected_generation != "any":
                have = None if current is None else current.generation
                if have != w.expected_generation:
                    raise ConsumerGenerationConflict(
                        f"consumer {w.consumer_uuid} is at generation {have}, "
                        f"not {w.expected_generation}",
                        uuid=w.consumer_uuid,
                        generation=have,
                    )
        plans: dict[str, _Plan] = {}
        for puuid, (gen, invs) in inventories.items():
            plans[puuid] = _Plan(
                inventories=self._validate_inventories(invs), expected_generation=gen
            )
        for w in writes:
            for e in self._entries_by("consumer_uuid", w.consumer_uuid):
                if e.status == ClaimStatus.CONFIRMED:
                    plans.setdefault(e.provider_uuid, _Plan()).remove_consumers.add(w.consumer_uuid)
            for puuid, gen in w.provider_generations.items():
                plan = plans.setdefault(puuid, _Plan())
                plan.expected_generation = gen
            for puuid, amounts in w.allocations.items():
                if not amounts:
                    continue
                plan = plans.setdefault(puuid, _Plan())
                plan.add.append(
                    _Entry(
                        uuid=new_uuid(),
                        provider_uuid=puuid,
                        consumer_uuid=w.consumer_uuid,
                        amounts=dict(amounts),
                        status=ClaimStatus.CONFIRMED,
                        request_uuid=None,
                        group=None,
                        project_id=w.project_id,
                        user_id=w.user_id,
                        created_at=now,
                        expires_at=None,
                    )
                )
            for puuid, amounts in w.allocations.items():
                if amounts:
                    plans.setdefault(puuid, _Plan()).remove_consumers.add(w.consumer_uuid)
        # Every provider must exist before anything is written.
        for puuid in plans:
            self._read_state(puuid)
        # Check every provider first, so that only a race (not a request that
        # can never fit) leads to writing some providers and rolling back.
        for puuid in sorted(plans):
            self._apply_one(puuid, plans[puuid], dry_run=True)
        done: list[tuple[str, list[_Entry], list[_Entry], int]] = []
        try:
            for puuid in sorted(plans):
                removed, written = self._apply_one(puuid, plans[puuid])
                done.append((puuid, removed, plans[puuid].add, written))
            self._write_consumers(writes, consumers)
        except BaseException:
            self._roll_back(done)
            raise

    def remove_consumer_allocations(self, consumer_uuid: str) -> bool:
        held = [
            e
            for e in self._entries_by("consumer_uuid", consumer_uuid)
            if e.status == ClaimStatus.CONFIRMED
        ]
        if not held:
            return False
        for puuid in sorted({e.provider_uuid for e in held}):
            gone: list[_Entry] = []

            def change(
                part: _Partition, now: float, gone: list[_Entry] = gone
            ) -> tuple[_State, list[tuple[str, list[Any]]]]:
                gone[:] = [
                    e
                    for e in part.entries.values()
                    if e.consumer_uuid == consumer_uuid and e.status == ClaimStatus.CONFIRMED
                ]
                extra = [(q.DELETE_ROW, [part.state.uuid, "l:" + e.uuid]) for e in gone]
                return _without(part.state, gone), extra

            try:
                self._update(puuid, None, change, bump=False, need_entries=True)
            except NotFound:
                continue
            for e in gone:
                self._bury(e.uuid, puuid, "released")
        current = self._read_consumer(consumer_uuid)
        if current is not None:
            self._lwt(q.DELETE_CONSUMER, [consumer_uuid, current.generation])
        return True

    def _read_consumer(self, uuid: str) -> Consumer | None:
        rows = self._run(q.GET_CONSUMER, [uuid], serial=True)
        if not rows:
            return None
        r = rows[0]
        return Consumer(r.uuid, r.project_id, r.user_id, r.consumer_type or "", r.generation)

    def _apply_one(
        self, puuid: str, plan: _Plan, *, dry_run: bool = False
    ) -> tuple[list[_Entry], int]:
        """Write one provider's part; returns the entries it replaced and the
        generation written. ``dry_run`` only checks it against a SERIAL read."""
        removed: list[_Entry] = []

        def change(part: _Partition, now: float) -> tuple[_State, list[tuple[str, list[Any]]]]:
            removed.clear()
            removed.extend(
                e
                for e in part.entries.values()
                if e.consumer_uuid in plan.remove_consumers and e.status == ClaimStatus.CONFIRMED
            )
            old = part.state
            before = old.used(now)
            state = _without(old, removed)
            if plan.inventories is not None:
                state = replace(state, inventories=plan.inventories)
            alloc = dict(state.alloc_used)
            for e in plan.add:
                for rc, n in e.amounts.items():
                    alloc[rc] = alloc.get(rc, 0) + n
                inv_problems = [
                    p
                    for rc, n in e.amounts.items()
                    if rc in state.inventories
                    for p in state.inventories[rc].amount_problems(n)
                ]
                if inv_problems:
                    raise InvalidInput("; ".join(inv_problems))
            state = replace(state, alloc_used=alloc)
            after = state.used(now)
            reasons = []
            for rc, n in after.items():
                if n <= 0:
                    continue
                inv = state.inventories.get(rc)
                if inv is None:
                    reasons.append(f"{rc}: provider has no inventory of this class")
                elif n > inv.capacity and (plan.inventories is not None or n > before.get(rc, 0)):
                    reasons.append(f"{rc}: used {n} would exceed capacity {inv.capacity}")
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
            extra = [(q.DELETE_ROW, [puuid, "l:" + e.uuid]) for e in removed]
            extra += [self._entry_stmt(e, now) for e in plan.add]
            return state, extra

        if dry_run:
            part = self._read_partition(puuid)
            expected = plan.expected_generation
            if expected is not None and part.state.generation != expected:
                raise _conflict(puuid, part.state.generation, expected)
            change(part, self.clock())
            return [], part.state.generation
        new = self._update(puuid, plan.expected_generation, change, need_entries=True)
        for e in removed:
            self._bury(e.uuid, puuid, "released")
        for e in plan.add:
            self._run(q.WRITE_LOCATOR, [e.uuid, puuid, 0])
        return list(removed), new.generation

    def _roll_back(self, done: list[tuple[str, list[_Entry], list[_Entry], int]]) -> None:
        """Undo the providers already written, newest first. A restore that no
        longer fits (someone took the freed capacity) is not forced: nothing
        is ever over capacity; it is logged."""
        for puuid, removed, added, written in reversed(done):

            def change(
                part: _Partition,
                now: float,
                puuid: str = puuid,
                removed: list[_Entry] = removed,
                added_ids: frozenset[str] = frozenset(e.uuid for e in added),
                written: int = written,
            ) -> tuple[_State, list[tuple[str, list[Any]]]]:
                gone = [e for e in part.entries.values() if e.uuid in added_ids]
                state = _without(part.state, gone)
                # Untouched since our write: back to the generation it had, as
                # if nothing happened. Otherwise a change like any other.
                old_gen = part.state.generation
                state = replace(
                    state, generation=written - 1 if old_gen == written else old_gen + 1
                )
                alloc = dict(state.alloc_used)
                for e in removed:
                    for rc, n in e.amounts.items():
                        alloc[rc] = alloc.get(rc, 0) + n
                state = replace(state, alloc_used=alloc)
                used = state.used(now)
                for rc, n in used.items():
                    inv = state.inventories.get(rc)
                    if n > 0 and (inv is None or n > inv.capacity):
                        raise InsufficientCapacity(f"cannot restore {rc} on {puuid}")
                extra = [(q.DELETE_ROW, [puuid, "l:" + e.uuid]) for e in gone]
                extra += [self._entry_stmt(e, now) for e in removed]
                return state, extra

            try:
                self._update(puuid, None, change, bump=False, need_entries=True)
            except ClaimantError as exc:
                log.error("roll-back of provider %s incomplete: %s", puuid, exc)

    def _write_consumers(
        self, writes: list[ConsumerAllocations], consumers: dict[str, Consumer | None]
    ) -> None:
        for w in writes:
            current = consumers[w.consumer_uuid]
            holds = any(a for a in w.allocations.values())
            if holds and current is None:
                applied, _ = self._lwt(
                    q.CREATE_CONSUMER, [w.consumer_uuid, w.project_id, w.user_id, w.consumer_type]
                )
            elif holds and current is not None:
                applied, _ = self._lwt(
                    q.UPDATE_CONSUMER,
                    [
                        w.project_id,
                        w.user_id,
                        w.consumer_type or current.consumer_type or None,
                        current.generation + 1,
                        w.consumer_uuid,
                        current.generation,
                    ],
                )
            elif current is not None:
                applied, _ = self._lwt(q.DELETE_CONSUMER, [w.consumer_uuid, current.generation])
            else:
                applied = True
            if not applied:
                raise ConsumerGenerationConflict(
                    f"consumer {w.consumer_uuid} changed while its allocations were written",
                    uuid=w.consumer_uuid,
                )

    def usages_by_project(
        self, project_id: str, user_id: str | None = None, consumer_type: str | None = None
    ) -> dict[str, dict[str, int]]:
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

    # -- requests ----------------------------------------------------------------------
    def create_request(self, request: Request) -> Request:
        # One LWT; later saves of the record are plain writes. Mixing the two
        # on a partition is safe while the coordinators' clocks agree with the
        # clients' (a later save needs a later timestamp than the LWT's ballot).
        now = self.clock()
        saved = request.evolve(created_at=request.created_at or now, updated_at=now)
        body = json.dumps(request_to_dict(saved))
        try:
            applied, _ = self._lwt(
                q.CREATE_REQUEST, [saved.uuid, saved.status.value, saved.created_at, body]
            )
        except StoreUnavailable:
            # The outcome may be unknown: a SERIAL read says whether ours landed.
            rows = self._run(q.GET_REQUEST, [saved.uuid], serial=True)
            if not rows or rows[0].body != body:
                raise
            applied = True
        if not applied:
            raise AlreadyExists(f"request {saved.uuid} already exists", uuid=saved.uuid)
        return saved

    def save_request(self, request: Request) -> Request:
        now = self.clock()
        saved = request.evolve(created_at=request.created_at or now, updated_at=now)
        self._run(
            q.SAVE_REQUEST,
            [saved.uuid, saved.status.value, saved.created_at, json.dumps(request_to_dict(saved))],
        )
        return saved

    def get_request(self, uuid: str) -> Request:
        rows = self._run(q.GET_REQUEST, [uuid])
        if not rows:
            raise NotFound(f"no request {uuid}", kind="request", uuid=uuid)
        return request_from_dict(json.loads(rows[0].body))

    def list_requests(self, *, status: str | None = None, limit: int = 100) -> list[Request]:
        rows = [r for r in self._run(q.ALL_REQUESTS) if status is None or r.status == status]
        rows.sort(key=lambda r: r.created_at or 0.0, reverse=True)
        return [request_from_dict(json.loads(r.body)) for r in rows[: int(limit)]]


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

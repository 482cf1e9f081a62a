"""Sessions, cells and routing: the cluster connection, the keyspace, the
execution profile of each cell, and which cell a statement goes to."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import namedtuple
from collections.abc import Callable, Iterable
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    Session,
)
from cassandra.policies import DCAwareRoundRobinPolicy, RoundRobinPolicy, TokenAwarePolicy
from cassandra.query import PreparedStatement

from claimant.model import CellUnavailable, ClaimantError, InvalidInput, StoreUnavailable
from claimant.store.base import Store
from claimant.store.cassandra import connect
from claimant.store.cassandra.errors import _DRIVER_ERRORS, _cell_error, _translate
from claimant.store.cassandra.options import (
    _CONSISTENCY,
    _DC,
    _KEYSPACE,
    _SERIAL,
    OPTIONS,
    _int_option,
    _replication_option,
)
from claimant.store.cassandra.state import _State

log = logging.getLogger(__name__)


_ROW_TYPES: dict[tuple[str, ...], Any] = {}


def _row_factory(colnames: list[str], rows: list[Any]) -> list[Any]:
    """Named tuples, with one class per column list: the driver's default
    factory builds a new namedtuple class for every result, which costs more
    than decoding a small result."""
    key = tuple(colnames)
    row_type = _ROW_TYPES.get(key)
    if row_type is None:
        names = [re.sub(r"\W", "", c) or f"c{i}" for i, c in enumerate(colnames)]
        row_type = _ROW_TYPES[key] = namedtuple("Row", names, rename=True)
    return [row_type(*r) for r in rows]


class CassandraBase(Store):
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
        self._read_levels(options)
        self._read_connection_options(hosts, options)
        self._init_caches()

    def _read_levels(self, options: dict[str, str]) -> None:
        """``serial`` and ``consistency``, then what the URL's DCs allow."""
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

    def _read_connection_options(self, hosts: list[str], options: dict[str, str]) -> None:
        """Port, timeouts, fetch size, the fast path, credentials and TLS, hosts."""
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

    def _init_caches(self) -> None:
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

    def _fail(self, exc: BaseException, route: str | None, *, read: bool = False) -> ClaimantError:
        """``read``: a SELECT (plain or SERIAL), which applies nothing of the
        caller's, so a cell whose hosts are going away is simply unreachable
        (``_cell_error``)."""
        if route is None:
            return _translate(exc)
        return _cell_error(exc, route[5:], read=read)

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

    def _hook(self, phase: str, txn: str) -> None:
        if self.txn_hook is not None:
            self.txn_hook(phase, txn)

"""``CassandraStore``: the Cassandra backend, put together from its sections.

docs/cassandra.md explains the layout (one partition per provider, one
lightweight transaction per change to it) and the round trips. Each section
is a class in its own module, each on the one before it: ``connection``
(sessions, cells, routing) < ``statements`` (running CQL at its consistency
level) < ``partitions`` (a provider's compare-and-set) < ``catalog`` <
``settle`` (transaction outcomes) < ``candidates`` < ``providers`` < ``claims``
< ``transact`` (multi-provider writes) < ``consumers`` < ``requests`` < this
class (lifecycle, and the parts kept in plain-function modules: ``bulk``,
``summary``, ``events``, ``aggregates``). A chain rather than SQLite's side by
side mixins: Cassandra's sections call each other's private steps (a claim
read settles a transaction; listing providers uses the candidates' matcher),
and each class on the chain has every step it calls, so mypy checks them.
``state`` holds the partition state and the pure checks, ``errors`` what a
driver error means, ``options`` the URL's options.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from claimant.model import Provider, StoreUnavailable
from claimant.model.events import Event, Subject
from claimant.store.base import AggregateName, CloudSummary, ImportedConsumer
from claimant.store.cassandra import aggregates as _aggregates
from claimant.store.cassandra import bulk
from claimant.store.cassandra import events as _events
from claimant.store.cassandra import queries as q
from claimant.store.cassandra import summary as _summary
from claimant.store.cassandra.errors import _DRIVER_ERRORS, _translate
from claimant.store.cassandra.requests import Requests
from claimant.store.cassandra.schema import DATA_TABLES, MIGRATIONS, SHARING_SINCE, keyspace_cql
from claimant.store.cassandra.state import SHARING_TRAIT


class CassandraStore(Requests):
    """``cassandra://h1,h2,h3/keyspace?rf=dc1:3,dc2:3&dc=dc1``.

    Options: ``rf`` replication used by ``migrate`` (N, default 1, or per data
    centre ``dc1:3,dc2:3``), ``dc`` this service's data centre (DC-aware
    routing), ``serial`` SERIAL (default) or LOCAL_SERIAL (refused on a
    keyspace of several DCs), ``consistency`` of plain reads and writes
    (default QUORUM, LOCAL_QUORUM with ``dc`` on a keyspace of one DC),
    ``port``, ``timeout`` seconds per request, ``fetch`` candidate rows read
    per query; credentials and TLS: ``claimant.store.cassandra.connect``.
    """

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

    # -- bulk import (claimant/store/cassandra/bulk.py) -------------------------
    def import_providers(self, providers: Sequence[Provider]) -> int:
        return bulk.import_providers(self, providers)

    def import_allocations(self, consumers: Sequence[ImportedConsumer]) -> int:
        return bulk.import_allocations(self, consumers)

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

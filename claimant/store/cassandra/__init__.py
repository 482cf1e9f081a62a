"""The Apache Cassandra store (5.0+): one partition per provider, claims as
lightweight transactions, candidates found through Storage-Attached Indexes.

The modules, one section each (``store.py`` says how they fit together):
``connection`` (sessions, cells, routing), ``statements`` (running CQL at its
consistency level), ``partitions`` (a provider's compare-and-set), ``catalog``
(resource classes, traits, types), ``settle`` (finishing transactions),
``candidates``, ``providers``, ``claims``, ``transact`` (multi-provider
writes), ``consumers``, ``requests``; ``state`` (a partition's decision
state), ``errors`` (driver errors, retries, deadlines), ``options`` (the URL),
``connect`` (credentials and TLS), ``txn`` and ``fast`` (the transaction
record, the one-provider fast path), ``queries`` (the CQL), ``schema``,
``bulk``, ``summary``, ``events``, ``aggregates``.
"""

from claimant.store.cassandra.errors import OutcomeUnknown
from claimant.store.cassandra.store import CassandraStore

__all__ = ["CassandraStore", "OutcomeUnknown"]

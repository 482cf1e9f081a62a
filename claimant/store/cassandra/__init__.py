"""The Apache Cassandra store (5.0+): one partition per provider, claims as
lightweight transactions, candidates found through Storage-Attached Indexes."""

from claimant.store.cassandra.errors import OutcomeUnknown
from claimant.store.cassandra.store import CassandraStore

__all__ = ["CassandraStore", "OutcomeUnknown"]

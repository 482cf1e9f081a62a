"""The Cassandra schema, as numbered migrations.

``meta`` holds the schema version; ``migrate()`` runs the migrations past it,
in order. A migration is a list of CQL statements, each idempotent
(``IF NOT EXISTS``), so a migration cut short can simply be run again.

The layout (docs/cassandra.md explains why):

- ``providers``: ONE partition per provider. Static columns hold the provider
  and its decision state (generation, version, inventories, what confirmed
  allocations use, the unconfirmed claims it holds). Clustering rows are
  ``i:<class>`` (the denormalised free capacity the candidate index reads)
  and ``l:<claim uuid>`` (ledger entries: claims and allocations, negative
  amounts). Every change is one lightweight transaction on this partition.
- ``claim_locator``: claim uuid -> provider, to find a claim's partition.
- ``txns``: one record per multi-provider write, its commit point (V2).
- ``request_ids``: a request uuid claimed by ``create_request`` (V3), so that
  the ``requests`` rows themselves are only ever written plainly.
- ``sharing_providers``: the providers with MISC_SHARES_VIA_AGGREGATE (V4).
- names, children, consumers, requests, custom classes/traits/types: small
  lookup tables.
"""

from __future__ import annotations

from typing import Final

from claimant.store.cassandra.aggregates import MIGRATION as AGGREGATES_MIGRATION
from claimant.store.cassandra.aggregates import MIGRATION_V7 as AGGREGATES_HEAL
from claimant.store.cassandra.aggregates import TABLES as AGGREGATES_TABLES
from claimant.store.cassandra.events import TABLE as EVENTS_TABLE

# Indexes on the providers table, all Storage-Attached (SAI, Cassandra 5.0).
SAI_INDEXES: Final[tuple[tuple[str, str], ...]] = (
    ("providers_ckey", "ckey"),
    ("providers_free", "free"),
    ("providers_free_base", "free_base"),
    ("providers_holds_until", "holds_until"),
    ("providers_consumer", "consumer_uuid"),
    ("providers_request", "request_uuid"),
    ("providers_grp", "grp"),
    ("providers_project", "project_id"),
    ("providers_expires", "expires_at"),
)

_V1: Final[list[str]] = [
    "CREATE TABLE IF NOT EXISTS {ks}.meta (key text PRIMARY KEY, value text)",
    "CREATE TABLE IF NOT EXISTS {ks}.resource_classes"
    " (name text PRIMARY KEY, discrete boolean, created_at double)",
    "CREATE TABLE IF NOT EXISTS {ks}.traits (name text PRIMARY KEY, created_at double)",
    "CREATE TABLE IF NOT EXISTS {ks}.resource_types (name text PRIMARY KEY, body text)",
    "CREATE TABLE IF NOT EXISTS {ks}.provider_names (name text PRIMARY KEY, provider_uuid text)",
    "CREATE TABLE IF NOT EXISTS {ks}.provider_children"
    " (parent_uuid text, child_uuid text, PRIMARY KEY (parent_uuid, child_uuid))",
    "CREATE TABLE IF NOT EXISTS {ks}.claim_locator"
    " (claim_uuid text PRIMARY KEY, provider_uuid text, gone text)",
    "CREATE TABLE IF NOT EXISTS {ks}.consumers (uuid text PRIMARY KEY, project_id text,"
    " user_id text, consumer_type text, generation bigint)",
    "CREATE TABLE IF NOT EXISTS {ks}.requests"
    " (uuid text PRIMARY KEY, status text, created_at double, body text)",
    """CREATE TABLE IF NOT EXISTS {ks}.providers (
        provider_uuid text,
        ckey text,
        generation bigint static,
        version text static,
        prev_version text static,
        name text static,
        type text static,
        parent_uuid text static,
        root_uuid text static,
        attributes text static,
        traits set<text> static,
        aggregates set<text> static,
        enabled boolean static,
        heartbeat_at double static,
        created_at double static,
        seq double static,
        updated_at double static,
        inventories text static,
        alloc_used map<text, bigint> static,
        holds text static,
        free bigint,
        free_base bigint,
        holds_until double,
        consumer_uuid text,
        amounts map<text, bigint>,
        status text,
        request_uuid text,
        grp text,
        project_id text,
        user_id text,
        entry_created double,
        expires_at double,
        entry_seq double,
        PRIMARY KEY (provider_uuid, ckey)
    )""",
    *(
        f"CREATE CUSTOM INDEX IF NOT EXISTS {name} ON {{ks}}.providers ({column})"
        " USING 'StorageAttachedIndex'"
        for name, column in SAI_INDEXES
    ),
]

# Multi-provider writes as transactions (issue 8): a record per transaction
# (the commit point), pending parts on providers, locks on consumers.
_V2: Final[list[str]] = [
    "CREATE TABLE IF NOT EXISTS {ks}.txns (txn_uuid text PRIMARY KEY, status text,"
    " deadline double, plan text, created_at double)",
    "ALTER TABLE {ks}.providers ADD IF NOT EXISTS pending text static",
    "ALTER TABLE {ks}.consumers ADD IF NOT EXISTS (txn text, txn_deadline double)",
]

# Closing the transaction protocol's gaps (issue 8): the sweeper finds consumer
# locks past their deadline through an index; request creation claims its uuid
# by LWT in a table of its own, since mixing LWT and plain writes on one
# partition lets a later plain save be shadowed by the LWT's (Paxos) timestamp
# when clocks disagree.
_V3: Final[list[str]] = [
    "CREATE CUSTOM INDEX IF NOT EXISTS consumers_txn_deadline ON {ks}.consumers (txn_deadline)"
    " USING 'StorageAttachedIndex'",
    "CREATE TABLE IF NOT EXISTS {ks}.request_ids (uuid text PRIMARY KEY, owner text,"
    " created_at double)",
]

# Issue 10. Placement's candidates ask on every request whether any provider
# shares via aggregates: one row per such provider, in one partition, so the
# answer is one single-partition read, not a read of every provider.
# ``migrate()`` fills it from the providers that already share.
_V4: Final[list[str]] = [
    "CREATE TABLE IF NOT EXISTS {ks}.sharing_providers (bucket int, provider_uuid text,"
    " PRIMARY KEY (bucket, provider_uuid))",
    # The one-provider fast path's lock carries its plan (no ``txns`` record).
    "ALTER TABLE {ks}.consumers ADD IF NOT EXISTS txn_plan text",
]

# Statements name their tables as ``{ks}.table``: a new keyspace may not be
# known yet to every connection a session has (no USE on them).
# V5: events per request and per provider (cassandra/events.py).
_V5: Final[list[str]] = [EVENTS_TABLE]

# V6: names for aggregates (cassandra/aggregates.py).
_V6: Final[list[str]] = AGGREGATES_MIGRATION

# V7: a commit point for aggregate names, so a half-failed create heals.
_V7: Final[list[str]] = AGGREGATES_HEAL

# V8: a provider's home cell (docs/cells.md). Providers made before it have
# none: on a keyspace of several DCs their writes stay global SERIAL.
_V8: Final[list[str]] = ["ALTER TABLE {ks}.providers ADD IF NOT EXISTS cell text static"]

# V9 (issue 10): the providers of a tree by its root, in one read per tree
# (SAI on the static ``root_uuid``; ``SELECT DISTINCT ... WHERE root_uuid =
# ?``), instead of walking ``provider_children`` a level at a time.
# Cassandra keeps it; no write of ours changes.
TREE_INDEX: Final = "providers_root"
_V9: Final[list[str]] = [
    f"CREATE CUSTOM INDEX IF NOT EXISTS {TREE_INDEX} ON {{ks}}.providers (root_uuid)"
    " USING 'StorageAttachedIndex'",
]

# V10: a consumer's home cell (docs/cells.md), set by the first lock that
# makes it. Consumers made before it have none: their writes stay global.
_V10: Final[list[str]] = ["ALTER TABLE {ks}.consumers ADD IF NOT EXISTS cell text"]

MIGRATIONS: Final[list[list[str]]] = [_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10]
# The schema version that made ``sharing_providers``: ``migrate()`` from below
# it fills the table (found by the list, should the migrations be renumbered).
SHARING_SINCE: Final = MIGRATIONS.index(_V4) + 1
# The schema version that made the tree index (likewise found by the list).
TREE_INDEX_SINCE: Final = MIGRATIONS.index(_V9) + 1

# Tables emptied by reset() (everything but the schema version).
DATA_TABLES: Final[tuple[str, ...]] = (
    "resource_classes",
    "traits",
    "resource_types",
    "provider_names",
    "provider_children",
    "claim_locator",
    "consumers",
    "requests",
    "request_ids",
    "providers",
    "txns",
    "sharing_providers",
    "events",
    *AGGREGATES_TABLES,
)


def keyspace_cql(keyspace: str, rf: int | dict[str, int], dc: str | None) -> str:
    """``rf`` per DC ({dc: n}): NetworkTopologyStrategy over those DCs; a
    single ``rf`` with the local ``dc``: that DC only; else SimpleStrategy."""
    if isinstance(rf, dict):
        per_dc = ", ".join(f"'{name}': {n}" for name, n in rf.items())
        replication = f"{{'class': 'NetworkTopologyStrategy', {per_dc}}}"
    elif dc:
        replication = f"{{'class': 'NetworkTopologyStrategy', '{dc}': {rf}}}"
    else:
        replication = f"{{'class': 'SimpleStrategy', 'replication_factor': {rf}}}"
    return f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}"

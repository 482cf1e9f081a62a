"""CQL statements of the Cassandra store, in one place. Each is prepared once
per session (``CassandraStore._prep``)."""

from __future__ import annotations

from typing import Final

STATIC_COLUMNS: Final = (
    "provider_uuid, generation, version, prev_version, name, type, parent_uuid, root_uuid,"
    " attributes, traits, aggregates, enabled, heartbeat_at, created_at, seq, updated_at,"
    " inventories, alloc_used, holds, pending, cell"
)
ENTRY_COLUMNS: Final = (
    "ckey, consumer_uuid, amounts, status, request_uuid, grp, project_id, user_id,"
    " entry_created, expires_at, entry_seq"
)

# -- one provider partition ----------------------------------------------------
READ_STATE: Final = f"SELECT {STATIC_COLUMNS} FROM providers WHERE provider_uuid = ? LIMIT 1"
READ_PARTITION: Final = (
    f"SELECT {STATIC_COLUMNS}, {ENTRY_COLUMNS} FROM providers WHERE provider_uuid = ?"
)
READ_ENTRY: Final = (
    f"SELECT provider_uuid, {ENTRY_COLUMNS} FROM providers WHERE provider_uuid = ? AND ckey = ?"
)
READ_VERSION: Final = "SELECT version, prev_version FROM providers WHERE provider_uuid = ? LIMIT 1"
READ_ENTRY_KEY: Final = "SELECT ckey FROM providers WHERE provider_uuid = ? AND ckey = ?"
# A provider's home cell (V8; docs/cells.md), fixed when it is created.
READ_CELL: Final = "SELECT version, cell FROM providers WHERE provider_uuid = ? LIMIT 1"

# The decision state is rewritten whole by every change, so any read that
# returns a version returns that version's state (docs/cassandra.md).
WRITE_STATE: Final = (
    "UPDATE providers SET generation = ?, version = ?, prev_version = ?, name = ?, type = ?,"
    " parent_uuid = ?, root_uuid = ?, attributes = ?, traits = ?, aggregates = ?, enabled = ?,"
    " created_at = ?, seq = ?, updated_at = ?, inventories = ?, alloc_used = ?, holds = ?,"
    " pending = ?, cell = ? WHERE provider_uuid = ? IF version = ?"
)
# Bulk loading only (CassandraStore.load_providers_unchecked).
WRITE_STATE_UNCONDITIONAL: Final = WRITE_STATE.removesuffix(" IF version = ?")
WRITE_NAME: Final = "INSERT INTO provider_names (name, provider_uuid) VALUES (?, ?)"
WRITE_INDEX_ROW: Final = (
    "UPDATE providers SET free = ?, free_base = ?, holds_until = ?"
    " WHERE provider_uuid = ? AND ckey = ?"
)
DELETE_ROW: Final = "DELETE FROM providers WHERE provider_uuid = ? AND ckey = ?"
INSERT_ENTRY: Final = (
    "INSERT INTO providers (provider_uuid, ckey, consumer_uuid, amounts, status, request_uuid,"
    " grp, project_id, user_id, entry_created, expires_at, entry_seq)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    " USING TTL ?"
)
# A conditional delete cannot drop a whole partition: drop its statics under
# the condition, and each row it has in the same batch. ``cell`` stays: a
# uuid made again keeps its home, so its partition keeps one Paxos group.
DELETE_STATICS: Final = (
    "DELETE generation, version, prev_version, name, type, parent_uuid, root_uuid, attributes,"
    " traits, aggregates, enabled, heartbeat_at, created_at, seq, updated_at, inventories,"
    " alloc_used, holds, pending FROM providers WHERE provider_uuid = ? IF version = ?"
)
# The marker of a transaction's pending part on a provider: the sweeper finds
# it through the ``expires_at`` index once the transaction's deadline passed.
WRITE_TXN_ROW: Final = "INSERT INTO providers (provider_uuid, ckey, expires_at) VALUES (?, ?, ?)"
WRITE_HEARTBEAT: Final = "UPDATE providers SET heartbeat_at = ? WHERE provider_uuid = ?"

# -- candidate index (SAI) ---------------------------------------------------------
CANDIDATES_RANGE: Final = (
    f"SELECT {STATIC_COLUMNS}, free, token(provider_uuid) AS t FROM providers"
    " WHERE ckey = ? AND free >= ? AND token(provider_uuid) >= ? AND token(provider_uuid) <= ?"
    " LIMIT ?"
)
# Providers whose claims have all expired since they were last written: their
# conservative ``free`` is stale, ``free_base`` is exact.
CANDIDATES_EXPIRED: Final = (
    f"SELECT {STATIC_COLUMNS}, free FROM providers WHERE ckey = ? AND free_base >= ?"
    " AND holds_until > 0 AND holds_until <= ? LIMIT ?"
)
CLASS_IN_USE: Final = "SELECT provider_uuid FROM providers WHERE ckey = ? LIMIT 1"
STALE_HOLDS: Final = (
    "SELECT provider_uuid FROM providers WHERE holds_until > 0 AND holds_until <= ?"
)
EXPIRED_ENTRIES: Final = (
    "SELECT provider_uuid FROM providers WHERE expires_at > 0 AND expires_at <= ?"
)
ENTRIES_BY: Final = {
    column: f"SELECT provider_uuid, {ENTRY_COLUMNS} FROM providers WHERE {column} = ?"
    for column in ("consumer_uuid", "request_uuid", "grp", "project_id")
}
ALL_ENTRIES: Final = f"SELECT provider_uuid, {ENTRY_COLUMNS} FROM providers"
ALL_STATES: Final = f"SELECT DISTINCT {STATIC_COLUMNS} FROM providers"

# -- lookup tables ---------------------------------------------------------------
RESERVE_NAME: Final = "INSERT INTO provider_names (name, provider_uuid) VALUES (?, ?) IF NOT EXISTS"
FREE_NAME: Final = "DELETE FROM provider_names WHERE name = ? IF provider_uuid = ?"
NAME_OWNER: Final = "SELECT provider_uuid FROM provider_names WHERE name = ?"
ADD_CHILD: Final = "INSERT INTO provider_children (parent_uuid, child_uuid) VALUES (?, ?)"
DROP_CHILD: Final = "DELETE FROM provider_children WHERE parent_uuid = ? AND child_uuid = ?"
CHILDREN: Final = "SELECT child_uuid FROM provider_children WHERE parent_uuid = ?"
# Every provider of one tree (schema V9's index on the static root_uuid).
TREE: Final = f"SELECT DISTINCT {STATIC_COLUMNS} FROM providers WHERE root_uuid = ?"
ANY_CHILD: Final = "SELECT child_uuid FROM provider_children LIMIT 1"
ADD_SHARING: Final = "INSERT INTO sharing_providers (bucket, provider_uuid) VALUES (0, ?)"
DROP_SHARING: Final = "DELETE FROM sharing_providers WHERE bucket = 0 AND provider_uuid = ?"
ANY_SHARING: Final = "SELECT provider_uuid FROM sharing_providers WHERE bucket = 0 LIMIT 1"
LOCATE: Final = "SELECT provider_uuid, gone FROM claim_locator WHERE claim_uuid = ?"
WRITE_LOCATOR: Final = (
    "INSERT INTO claim_locator (claim_uuid, provider_uuid) VALUES (?, ?) USING TTL ?"
)
# What is left of a released or expired claim: confirming it says why it cannot.
BURY_LOCATOR: Final = (
    "INSERT INTO claim_locator (claim_uuid, provider_uuid, gone) VALUES (?, ?, ?) USING TTL ?"
)

LIST_CLASSES: Final = "SELECT name, discrete FROM resource_classes"
GET_CLASS: Final = "SELECT name, discrete FROM resource_classes WHERE name = ?"
CREATE_CLASS: Final = (
    "INSERT INTO resource_classes (name, discrete, created_at) VALUES (?, ?, ?) IF NOT EXISTS"
)
DELETE_CLASS: Final = "DELETE FROM resource_classes WHERE name = ?"
LIST_TRAITS: Final = "SELECT name FROM traits"
GET_TRAIT: Final = "SELECT name FROM traits WHERE name = ?"
CREATE_TRAIT: Final = "INSERT INTO traits (name, created_at) VALUES (?, ?) IF NOT EXISTS"
DELETE_TRAIT: Final = "DELETE FROM traits WHERE name = ?"
LIST_TYPES: Final = "SELECT body FROM resource_types"
GET_TYPE: Final = "SELECT body FROM resource_types WHERE name = ?"
CREATE_TYPE: Final = "INSERT INTO resource_types (name, body) VALUES (?, ?) IF NOT EXISTS"
DELETE_TYPE: Final = "DELETE FROM resource_types WHERE name = ?"

# A row with a null generation is a consumer a pending transaction is creating.
GET_CONSUMER: Final = (
    "SELECT uuid, project_id, user_id, consumer_type, generation, txn, txn_deadline"
    " FROM consumers WHERE uuid = ?"
)
# A consumer's home cell (V10; docs/cells.md), with its lock: a plain read
# in one cell, to learn where its compare-and-sets go.
FIND_CONSUMER: Final = "SELECT uuid, cell, generation, txn FROM consumers WHERE uuid = ?"
# Locks a consumer for a transaction (also one that does not exist yet:
# ``generation = null`` holds for a missing row). ``cell`` is the home it is
# made with (null: global), rewritten unchanged by later locks.
LOCK_CONSUMER: Final = (
    "UPDATE consumers SET txn = ?, txn_deadline = ?, cell = ? WHERE uuid = ?"
    " IF generation = ? AND txn = null"
)
# Every write that keeps the row writes ``cell`` again: a replica that got
# any of them knows the home, whatever order they arrive in.
COMMIT_CONSUMER: Final = (
    "UPDATE consumers SET project_id = ?, user_id = ?, consumer_type = ?, generation = ?,"
    " txn = null, txn_deadline = null, cell = ? WHERE uuid = ? IF txn = ?"
)
UNLOCK_CONSUMER: Final = (
    "UPDATE consumers SET txn = null, txn_deadline = null, cell = ? WHERE uuid = ? IF txn = ?"
)
DROP_CONSUMER: Final = "DELETE FROM consumers WHERE uuid = ? IF txn = ?"
# The one-provider fast path (V4): its lock carries its plan (txn.FastPlan).
GET_CONSUMER_FAST: Final = (
    "SELECT generation, txn, txn_deadline, txn_plan FROM consumers WHERE uuid = ?"
)
LOCK_CONSUMER_FAST: Final = (
    "UPDATE consumers SET txn = ?, txn_deadline = ?, txn_plan = ?, cell = ? WHERE uuid = ?"
    " IF generation = ? AND txn = null"
)
COMMIT_CONSUMER_FAST: Final = (
    "UPDATE consumers SET project_id = ?, user_id = ?, consumer_type = ?, generation = ?,"
    " txn = null, txn_deadline = null, txn_plan = null, cell = ? WHERE uuid = ? IF txn = ?"
)
COMMIT_CONSUMER_FAST_KEEP_TYPE: Final = (
    "UPDATE consumers SET project_id = ?, user_id = ?, generation = ?,"
    " txn = null, txn_deadline = null, txn_plan = null, cell = ? WHERE uuid = ? IF txn = ?"
)
UNLOCK_CONSUMER_FAST: Final = (
    "UPDATE consumers SET txn = null, txn_deadline = null, txn_plan = null, cell = ?"
    " WHERE uuid = ? IF txn = ?"
)
# A fast-path write abandoned past its deadline: this row in the provider's
# partition (with a new version) keeps its LWT from ever applying.
WRITE_FENCE: Final = (
    "INSERT INTO providers (provider_uuid, ckey, status) VALUES (?, ?, 'fenced') USING TTL ?"
)
# Consumers locked by a transaction (SAI on ``txn_deadline``, V3; an unlocked
# consumer's is null): those past the deadline are the sweeper's, all of them
# are what a project's usage must settle first.
STALE_LOCKS: Final = "SELECT uuid, txn FROM consumers WHERE txn_deadline > 0 AND txn_deadline <= ?"
ALL_LOCKS: Final = "SELECT uuid, txn FROM consumers WHERE txn_deadline > 0"

# -- transaction records (docs/cassandra.md, "Multi-provider writes") --------------
CREATE_TXN: Final = (
    "INSERT INTO txns (txn_uuid, status, deadline, plan, created_at)"
    " VALUES (?, 'pending', ?, ?, ?) IF NOT EXISTS USING TTL ?"
)
DECIDE_TXN: Final = (
    "UPDATE txns USING TTL ? SET status = ? WHERE txn_uuid = ? IF status = 'pending'"
)
# A marker whose record is gone (past its TTL): the record is re-made as aborted
# unless it is there after all.
ABORT_LOST_TXN: Final = (
    "INSERT INTO txns (txn_uuid, status, deadline, created_at)"
    " VALUES (?, 'aborted', 0, ?) IF NOT EXISTS USING TTL ?"
)
READ_TXN: Final = "SELECT status, deadline, plan FROM txns WHERE txn_uuid = ?"

SAVE_REQUEST: Final = "INSERT INTO requests (uuid, status, created_at, body) VALUES (?, ?, ?, ?)"
# The uuid is claimed here, not on ``requests``: the record's own writes stay
# plain (schema._V3 says why).
CLAIM_REQUEST_ID: Final = (
    "INSERT INTO request_ids (uuid, owner, created_at) VALUES (?, ?, ?) IF NOT EXISTS"
)
REQUEST_ID_OWNER: Final = "SELECT owner FROM request_ids WHERE uuid = ?"
GET_REQUEST: Final = "SELECT body FROM requests WHERE uuid = ?"
ALL_REQUESTS: Final = "SELECT status, created_at, body FROM requests"

GET_META: Final = "SELECT value FROM meta WHERE key = ?"
SET_META: Final = "INSERT INTO meta (key, value) VALUES (?, ?)"

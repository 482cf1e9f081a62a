"""Schema of the embedded SQLite store, one list of migrations.

Each migration is a list of statements; ``meta.schema_version`` says how many
have run. Never edit a released migration: append a new one.
"""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    # 1: the initial schema.
    [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE resource_classes (
            name TEXT PRIMARY KEY,
            discrete INTEGER NOT NULL DEFAULT 0,
            standard INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        """CREATE TABLE traits (
            name TEXT PRIMARY KEY,
            standard INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        """CREATE TABLE resource_types (
            name TEXT PRIMARY KEY,
            body TEXT NOT NULL,
            created_at REAL NOT NULL)""",
        """CREATE TABLE providers (
            id INTEGER PRIMARY KEY,
            uuid TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            parent_id INTEGER REFERENCES providers(id),
            root_id INTEGER NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1,
            generation INTEGER NOT NULL DEFAULT 0,
            heartbeat_at REAL,
            attributes TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        "CREATE INDEX providers_root ON providers(root_id)",
        "CREATE INDEX providers_parent ON providers(parent_id)",
        # capacity is (total - reserved) * allocation_ratio, floored, written by
        # Python; used is the sum of live ledger entries, kept in the same
        # transaction as the ledger so the (rc, free) index answers queries.
        """CREATE TABLE inventories (
            provider_id INTEGER NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
            rc TEXT NOT NULL REFERENCES resource_classes(name),
            total INTEGER NOT NULL,
            reserved INTEGER NOT NULL,
            min_unit INTEGER NOT NULL,
            max_unit INTEGER NOT NULL,
            step_size INTEGER NOT NULL,
            allocation_ratio REAL NOT NULL,
            capacity INTEGER NOT NULL,
            used INTEGER NOT NULL DEFAULT 0,
            free INTEGER GENERATED ALWAYS AS (capacity - used) STORED,
            PRIMARY KEY (provider_id, rc))""",
        "CREATE INDEX inventories_rc_free ON inventories(rc, free, provider_id)",
        """CREATE TABLE provider_traits (
            provider_id INTEGER NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
            trait TEXT NOT NULL REFERENCES traits(name),
            PRIMARY KEY (provider_id, trait)) WITHOUT ROWID""",
        "CREATE INDEX provider_traits_trait ON provider_traits(trait, provider_id)",
        """CREATE TABLE provider_aggregates (
            provider_id INTEGER NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
            aggregate TEXT NOT NULL,
            PRIMARY KEY (provider_id, aggregate)) WITHOUT ROWID""",
        "CREATE INDEX provider_aggregates_agg ON provider_aggregates(aggregate, provider_id)",
        # Attributes twice: JSON on the provider row for reading, and one row
        # per attribute so constraints become indexed conditions.
        """CREATE TABLE provider_attributes (
            provider_id INTEGER NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            num REAL,
            txt TEXT,
            PRIMARY KEY (provider_id, name)) WITHOUT ROWID""",
        "CREATE INDEX provider_attributes_num ON provider_attributes(name, num)",
        "CREATE INDEX provider_attributes_txt ON provider_attributes(name, txt)",
        # The ledger: claims and allocations, amounts stored negative.
        """CREATE TABLE ledger (
            id INTEGER PRIMARY KEY,
            uuid TEXT NOT NULL UNIQUE,
            provider_id INTEGER NOT NULL REFERENCES providers(id),
            consumer_uuid TEXT NOT NULL,
            request_uuid TEXT,
            grp TEXT,
            status TEXT NOT NULL,
            amounts TEXT NOT NULL,
            project_id TEXT NOT NULL DEFAULT '',
            user_id TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            expires_at REAL)""",
        "CREATE INDEX ledger_provider ON ledger(provider_id)",
        "CREATE INDEX ledger_consumer ON ledger(consumer_uuid)",
        "CREATE INDEX ledger_request ON ledger(request_uuid)",
        "CREATE INDEX ledger_grp ON ledger(grp) WHERE grp IS NOT NULL",
        "CREATE INDEX ledger_project ON ledger(project_id)",
        "CREATE INDEX ledger_expiry ON ledger(expires_at) WHERE expires_at IS NOT NULL",
        # Claims that were released or expired, so a late confirm says
        # "not active" rather than "never existed". Pruned after a day.
        """CREATE TABLE ledger_tombstones (
            uuid TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            at REAL NOT NULL)""",
        """CREATE TABLE consumers (
            uuid TEXT PRIMARY KEY,
            project_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            consumer_type TEXT,
            generation INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        """CREATE TABLE requests (
            uuid TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        "CREATE INDEX requests_status ON requests(status, created_at)",
    ],
    # 2: events per request and per provider (store/sqlite/events.py).
    [
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            subject TEXT NOT NULL,
            subject_id TEXT NOT NULL,
            at REAL NOT NULL,
            event TEXT NOT NULL,
            details TEXT NOT NULL)""",
        "CREATE INDEX events_subject ON events(subject, subject_id, id)",
    ],
    # 3: names for aggregates (store/sqlite/aggregates.py); membership stays
    # in provider_aggregates, keyed by uuid.
    [
        """CREATE TABLE aggregate_names (
            name TEXT PRIMARY KEY,
            uuid TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL)""",
    ],
]

TABLES = (
    "aggregate_names",
    "events",
    "requests",
    "consumers",
    "ledger_tombstones",
    "ledger",
    "provider_attributes",
    "provider_aggregates",
    "provider_traits",
    "inventories",
    "providers",
    "resource_types",
    "traits",
    "resource_classes",
    "meta",
)

"""``SQLiteStore``: the embedded backend, put together from its sections.

Each section of the contract is a mixin in its own module (``catalog``,
``providers``, ``candidates``, ``claims``, ``consumers``, ``requests``), all
on ``connection.SQLiteBase``, which owns the connections, the transactions
and the one error-translating path. Mixins rather than helper objects: the
store stays one object (tests subclass it, and the group commit's queue and
the per-thread connections are its state), while each file holds one noun.
What several sections share is plain functions of a connection (``ledger``,
``reads``, ``conditions``), so no mixin calls another's private method.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from contextlib import suppress

from claimant.model import Provider
from claimant.model.events import Event, Subject
from claimant.model.names import STANDARD_RESOURCE_CLASSES, STANDARD_TRAITS, default_discrete
from claimant.store.base import CloudSummary, ImportedConsumer
from claimant.store.sqlite import bulk
from claimant.store.sqlite import events as event_log
from claimant.store.sqlite import summary as cloud
from claimant.store.sqlite.candidates import CandidatesMixin
from claimant.store.sqlite.catalog import CatalogMixin
from claimant.store.sqlite.claims import ClaimsMixin
from claimant.store.sqlite.connection import translating
from claimant.store.sqlite.consumers import ConsumersMixin
from claimant.store.sqlite.providers import ProvidersMixin
from claimant.store.sqlite.requests import RequestsMixin
from claimant.store.sqlite.schema import MIGRATIONS, TABLES


class SQLiteStore(
    CatalogMixin,
    ProvidersMixin,
    CandidatesMixin,
    ClaimsMixin,
    ConsumersMixin,
    RequestsMixin,
):
    # One write lock per file: concurrent schedulers in one process only add
    # lost compare-and-sets (8 at once: about 1 claim in 4 conflicted and was
    # retried; one at a time: none).
    write_concurrency = 1

    # -- lifecycle ---------------------------------------------------------
    def migrate(self) -> int:
        with self._write() as conn:
            has_meta = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
            ).fetchone()
            version = 0
            if has_meta:
                row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else 0
            for statements in MIGRATIONS[version:]:
                for sql in statements:
                    conn.execute(sql)
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(len(MIGRATIONS)),),
            )
            now = self.clock()
            # Standard names are rows too, so foreign keys cover them; new
            # releases of os-resource-classes / os-traits add rows here.
            conn.executemany(
                "INSERT OR IGNORE INTO resource_classes VALUES (?, ?, 1, ?, ?)",
                [(n, int(default_discrete(n)), now, now) for n in STANDARD_RESOURCE_CLASSES],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO traits VALUES (?, 1, ?, ?)",
                [(n, now, now) for n in sorted(STANDARD_TRAITS)],
            )
        return len(MIGRATIONS)

    def drop(self) -> None:
        with self._write() as conn:
            conn.execute("PRAGMA foreign_keys=OFF")
            for table in TABLES:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
        with translating():
            self._conn().execute("PRAGMA foreign_keys=ON")

    def reset(self) -> None:
        with self._write() as conn:
            for table in TABLES:
                if table in ("meta", "resource_classes", "traits"):
                    continue
                conn.execute(f"DELETE FROM {table}")
            conn.execute("DELETE FROM resource_classes WHERE standard = 0")
            conn.execute("DELETE FROM traits WHERE standard = 0")

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    # -- bulk import (bulk.py) ------------------------------------------------
    def import_providers(self, providers: Sequence[Provider]) -> int:
        return bulk.import_providers(self, providers)

    def import_allocations(self, consumers: Sequence[ImportedConsumer]) -> int:
        return bulk.import_allocations(self, consumers)

    # -- operators' view and events -----------------------------------------
    def summary(self, heartbeat_after: float | None) -> CloudSummary:
        return cloud.summary(self, heartbeat_after)

    def heartbeats_between(self, after: float, until: float) -> list[Provider]:
        uuids = cloud.heartbeats_between(self, after, until)
        return [self.get_provider(u) for u in uuids]

    def add_events(self, events: Sequence[Event]) -> None:
        event_log.add_events(self, events)

    def list_events(self, subject: Subject, subject_id: str, *, limit: int = 100) -> list[Event]:
        return event_log.list_events(self, subject, subject_id, limit)

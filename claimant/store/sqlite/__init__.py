"""The embedded store: one SQLite file shared by threads and processes.

Why this is race-free: every write runs in a ``BEGIN IMMEDIATE`` transaction,
which takes SQLite's single write lock before reading anything, so the
generation check, the capacity check and the ledger write of a claim are one
atomic step across every thread and process that opens the file. WAL mode
lets readers (candidate queries) run while a writer holds the lock.

The modules, one section each (``store.py`` says how they fit together):
``connection`` (connections, transactions, group commit, driver errors),
``schema`` (migrations), ``catalog`` (resource classes, traits, types,
aggregate names), ``providers``, ``conditions`` (a request group as SQL),
``candidates`` (candidate and tree reads), ``claims``, ``consumers``
(allocations), ``requests``, ``events``, ``summary``, ``bulk`` (import);
``ledger`` and ``reads`` hold the row-level steps several of them share.
"""

from __future__ import annotations

from claimant.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]

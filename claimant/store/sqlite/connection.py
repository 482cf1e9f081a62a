"""Connections, transactions and group commit of the SQLite store, and the
one place its driver errors become claimant's (``translate``). Every section
of the store (``catalog``, ``providers``, ...) is a mixin of ``SQLiteBase``
and reaches the database only through ``_read``, ``_write``, ``_group`` and
``_select``, or a bare connection inside ``translating()`` (the hot reads
that are one statement and skip BEGIN and COMMIT)."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from claimant.model import InvalidInput, StoreUnavailable, deadline
from claimant.model.errors import DeadlineExceeded
from claimant.store.base import Store
from claimant.store.sqlite import ledger

log = logging.getLogger("claimant.store.sqlite")

_T = TypeVar("_T")


# SQLite VM instructions between two looks at the request's deadline.
PROGRESS_STEPS = 1000


def translate(exc: sqlite3.Error) -> Exception:
    """The one mapping of an ``sqlite3`` error to claimant's: the deadline's
    error if the deadline is what stopped the statement, else
    ``StoreUnavailable`` saying what an operator can do. The driver's text
    goes to the log only: messages reach clients and never quote a driver."""
    d = deadline.current()
    if d is not None and d.expired():
        # The progress handler interrupted the statement, or a busy wait
        # shortened to the deadline ran out: the deadline is what stopped us.
        try:
            d.check("querying the store")
        except DeadlineExceeded as cut:
            return cut
    log.warning("SQLite error (%s): %s", type(exc).__name__, exc)
    return StoreUnavailable(_describe(str(exc).lower()))


def _describe(text: str) -> str:
    if "no such table" in text or "no such column" in text:
        return "the store's schema is missing or out of date: run `claimant store migrate`"
    if "not a database" in text or "malformed" in text:
        return "the store's file is not a usable SQLite database"
    if "locked" in text or "busy" in text:
        return "the store's database is locked by another writer; retry later"
    if "unable to open" in text or "readonly" in text or "i/o" in text or "full" in text:
        return "the store's file cannot be opened or written (permissions, disk)"
    return "the SQLite store failed (the service log has the detail)"


@contextmanager
def translating() -> Iterator[None]:
    """For a connection used outside ``_read``, ``_write``, ``_group`` and
    ``_select``: its driver errors become claimant's (``translate``)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc) from exc


def _past_deadline() -> int:
    """SQLite's progress handler: non-zero interrupts the running statement
    (it raises, and a write transaction rolls back whole)."""
    d = deadline.current()
    return 1 if d is not None and d.expired() else 0


class _Op:
    """One write waiting for a group commit (see ``SQLiteStore._group``)."""

    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        self.fn = fn
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


def _create_private(path: str) -> None:
    """Create the database file 0600 (owner only) if it does not exist: it
    holds every project's requests. SQLite gives its -wal and -shm files the
    database file's mode."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SQLiteBase(Store):
    def __init__(self, path: str, *, url: str | None = None, busy_timeout: str = "30") -> None:
        self.path = os.path.abspath(path)
        self.url = url or f"sqlite:///{self.path}"
        try:
            self.busy_timeout = float(busy_timeout)
        except ValueError:
            raise InvalidInput(
                f"busy_timeout must be a number of seconds, got {busy_timeout!r}"
            ) from None
        # One connection per thread: sqlite3 connections must not be shared
        # between threads mid-transaction.
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._write_lock = threading.Lock()
        # Writes queued for the next group commit, guarded by _pending_lock.
        self._pending: list[_Op] = []
        self._pending_lock = threading.Lock()

    # -- connections and transactions -------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            directory = os.path.dirname(self.path)
            try:
                if directory:
                    os.makedirs(directory, mode=0o700, exist_ok=True)
                _create_private(self.path)
                conn = sqlite3.connect(
                    self.path,
                    timeout=self.busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL is durable against process crashes in WAL mode; only a
                # power loss can drop the last commits.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.set_progress_handler(_past_deadline, PROGRESS_STEPS)
            except sqlite3.Error as exc:
                raise translate(exc) from exc
            except OSError as exc:
                raise StoreUnavailable(f"cannot create {self.path}: {exc.strerror}") from exc
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        deadline.check("waiting to write to the store")
        conn = self._conn()
        # Writers of this process queue on a Python lock before asking SQLite:
        # SQLite's busy handler *sleeps* (1, 2, 5, 10 ... ms) while another
        # connection holds the write lock, so threads contending through it
        # spend most of their time asleep. Other processes still contend
        # through the busy handler; correctness never depends on this lock.
        left = deadline.remaining()
        if not self._write_lock.acquire(timeout=-1 if left is None else max(left, 0.0)):
            deadline.check("waiting to write to the store")
            raise StoreUnavailable("timed out waiting for the store's write lock")
        try:
            try:
                self._begin(conn)
            except sqlite3.Error as exc:
                raise translate(exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise translate(exc) from exc
            except BaseException:
                self._rollback(conn)
                raise
        finally:
            self._write_lock.release()

    def _begin(self, conn: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE, waiting for another process's write lock no longer
        than the request's deadline (progress handlers do not run while
        SQLite waits for a lock)."""
        left = deadline.remaining()
        wait = self.busy_timeout if left is None else min(self.busy_timeout, max(left, 0.001))
        wait_ms = int(wait * 1000)
        if getattr(self._local, "busy_ms", None) != wait_ms:
            conn.execute(f"PRAGMA busy_timeout = {wait_ms}")
            self._local.busy_ms = wait_ms
        conn.execute("BEGIN IMMEDIATE")

    def _select(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        """One SELECT on its own (no snapshot needed): checked against the
        deadline, its errors translated like any other."""
        deadline.check("reading the store")
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    def _one(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        rows = self._select(sql, params)
        return rows[0] if rows else None

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # An interrupted write statement has already rolled the transaction
        # back: a second ROLLBACK would raise over the error on its way.
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def _group(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn(conn)`` as one write, committed together with the writes
        other threads queued meanwhile (group commit): whoever gets the write
        lock runs every queued write in ONE transaction, each inside its own
        savepoint, so one that raises leaves no trace and does not touch the
        others. Each caller gets its own result or error, and only once the
        COMMIT succeeded. A claim burst of 8 schedulers pays for one BEGIN
        and one COMMIT (and writes each shared page to the WAL once) instead
        of one per claim. ``fn`` must only use ``conn`` and may run on
        another thread.

        Each caller's deadline is checked before it queues its write; once
        queued, a write is never cut by a deadline (the batch may be run by a
        thread whose deadline is not the caller's)."""
        deadline.check("waiting to write to the store")
        op = _Op(fn)
        with self._pending_lock:
            self._pending.append(op)
        with self._write_lock:
            if not op.done:
                self._run_group(op)
        if op.error is not None:
            raise op.error
        return op.result  # type: ignore[no-any-return]

    def _run_group(self, mine: _Op) -> None:
        """With the write lock held: one transaction for every queued write."""
        conn = self._conn()
        try:
            self._begin(conn)
        except sqlite3.Error as exc:
            # Only this thread's write fails; the others stay queued and the
            # next holder of the lock tries BEGIN for them.
            with self._pending_lock:
                self._pending.remove(mine)
            mine.error = translate(exc)
            mine.done = True
            return
        # Taken once SQLite's lock is ours: writes queued while we waited for
        # another process's transaction join this one.
        with self._pending_lock:
            batch, self._pending = self._pending, []
        # Alone in its transaction a write needs no savepoint: if it fails,
        # the transaction rolls back.
        single = len(batch) == 1
        try:
            # Other threads' writes: never cut by this thread's deadline.
            with deadline.shielded():
                for op in batch:
                    if not single:
                        conn.execute("SAVEPOINT op")
                    try:
                        op.result = op.fn(conn)
                    except Exception as exc:
                        op.error = translate(exc) if isinstance(exc, sqlite3.Error) else exc
                        if not single:
                            conn.execute("ROLLBACK TO op")
                            conn.execute("RELEASE op")
                        continue
                    if not single:
                        conn.execute("RELEASE op")
                conn.execute("ROLLBACK" if single and batch[0].error is not None else "COMMIT")
        except BaseException as exc:
            # A failed COMMIT or savepoint, or an interrupt: nothing of the
            # batch was committed, so no caller may see success.
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            for op in batch:
                op.result = None
                if op.error is None:
                    op.error = (
                        translate(exc)
                        if isinstance(exc, sqlite3.Error)
                        else StoreUnavailable("the write was interrupted and rolled back")
                    )
                op.done = True
            if not isinstance(exc, Exception):
                raise
            return
        for op in batch:
            op.done = True

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read snapshot: every statement inside sees the same state."""
        deadline.check("reading the store")
        conn = self._conn()
        try:
            conn.execute("BEGIN DEFERRED")
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        finally:
            if conn.in_transaction:
                with translating():
                    conn.execute("COMMIT")

    # -- expired claims ----------------------------------------------------
    def _sweep(self, conn: sqlite3.Connection, now: float) -> int:
        """Delete expired claims inside the caller's write transaction
        (``ledger.sweep``); counts what it saw expire."""
        seen, deleted = ledger.sweep(conn, now)
        self.expired_seen += seen
        return deleted

    def _sweep_if_due(self, now: float) -> None:
        """Before a read of ``used``: sweep if any claim has expired, so that
        expired claims never show as held. The probe is one index lookup."""
        if self._one(ledger.DUE, (now,)):
            with self._write() as conn:
                self._sweep(conn, now)

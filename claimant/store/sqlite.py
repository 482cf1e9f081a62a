"""The embedded store: one SQLite file shared by threads and processes.

Why this is race-free: every write runs in a ``BEGIN IMMEDIATE`` transaction,
which takes SQLite's single write lock before reading anything, so the
generation check, the capacity check and the ledger write of a claim are one
atomic step across every thread and process that opens the file. WAL mode
lets readers (candidate queries) run while a writer holds the lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import orjson

from claimant.model import (
    BUILTIN_TYPES,
    LOCAL_CELL,
    AlreadyExists,
    AttributeConstraint,
    AttributeSpec,
    Claim,
    ClaimNotActive,
    ClaimStatus,
    Consumer,
    ConsumerAllocations,
    ConsumerGenerationConflict,
    GenerationConflict,
    InsufficientCapacity,
    InUse,
    InvalidInput,
    Inventory,
    NotFound,
    Provider,
    ProviderUsage,
    Request,
    RequestGroup,
    ResourceClass,
    ResourceType,
    StoreUnavailable,
    Strategy,
    Usage,
    check_fit,
    deadline,
    new_uuid,
)
from claimant.model.build import maker
from claimant.model.codec import request_from_dict, request_to_dict
from claimant.model.errors import DeadlineExceeded
from claimant.model.events import (
    CLAIMED,
    CONFIRMED,
    DISABLED,
    ENABLED,
    RELEASED,
    Event,
    Subject,
    claim_events,
)
from claimant.model.names import (
    STANDARD_RESOURCE_CLASSES,
    STANDARD_TRAITS,
    default_discrete,
    validate_custom_name,
)
from claimant.model.types import check_constraint, infer_spec
from claimant.store import sqlite_aggregates, sqlite_bulk, sqlite_events, sqlite_summary
from claimant.store.base import (
    UNSET,
    AggregateName,
    CandidateQuery,
    ClaimSpec,
    CloudSummary,
    ImportedConsumer,
    ProviderFilter,
    ReshapeSpec,
    Store,
    TreePage,
    TreeQuery,
    _Unset,
)
from claimant.store.sqlite_schema import MIGRATIONS, TABLES

_LIVE = "(l.status = 'confirmed' OR l.expires_at > ?)"
# Any claim past its expiry (one lookup in the partial index ledger_expiry;
# confirmed entries have no expiry).
_DUE = "SELECT 1 FROM ledger WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT 1"
# How long a released or expired claim is remembered (for ClaimNotActive).
TOMBSTONE_TTL = 86400.0
# A trait, aggregate or tree matching at most this many providers drives the
# candidate query instead of the free-capacity index (see find_candidates).
# Measured at 100k providers: a trait on 1% (1,000) of them is still cheaper
# to find by walking the index; one on nobody cost 140 ms that way, 0.1 ms this way.
NARROW_MAX = 500
# Placement's trait for a provider whose inventory every tree in one of its
# aggregates may use.
SHARING_TRAIT = "MISC_SHARES_VIA_AGGREGATE"


_T = TypeVar("_T")


# SQLite VM instructions between two looks at the request's deadline.
PROGRESS_STEPS = 1000


def _translate(exc: sqlite3.Error) -> Exception:
    d = deadline.current()
    if d is not None and d.expired():
        # The progress handler interrupted the statement, or a busy wait
        # shortened to the deadline ran out: the deadline is what stopped us.
        try:
            d.check("querying the store")
        except DeadlineExceeded as cut:
            return cut
    return StoreUnavailable(f"SQLite store error: {exc}")


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


class SQLiteStore(Store):
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
            if directory:
                os.makedirs(directory, mode=0o700, exist_ok=True)
            try:
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
                raise _translate(exc) from exc
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
                raise _translate(exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise _translate(exc) from exc
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
            raise _translate(exc) from exc

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
            mine.error = _translate(exc)
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
                        op.error = _translate(exc) if isinstance(exc, sqlite3.Error) else exc
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
                        _translate(exc)
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
            raise _translate(exc) from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

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

    # -- resource classes --------------------------------------------------
    def list_resource_classes(self) -> list[ResourceClass]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT name, discrete, standard FROM resource_classes ORDER BY name"
            ).fetchall()
        return [ResourceClass(n, bool(d), bool(s)) for n, d, s in rows]

    def get_resource_class(self, name: str) -> ResourceClass:
        row = self._one(
            "SELECT name, discrete, standard FROM resource_classes WHERE name = ?", (name,)
        )
        if row is None:
            raise NotFound(f"no resource class {name!r}", kind="resource_class", name=name)
        return ResourceClass(row[0], bool(row[1]), bool(row[2]))

    def create_resource_class(self, rc: ResourceClass) -> ResourceClass:
        validate_custom_name(rc.name)
        now = self.clock()
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO resource_classes VALUES (?, ?, 0, ?, ?)",
                    (rc.name, int(rc.discrete), now, now),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(
                    f"resource class {rc.name} already exists", name=rc.name
                ) from None
        return ResourceClass(rc.name, rc.discrete, False)

    def delete_resource_class(self, name: str) -> None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT standard FROM resource_classes WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no resource class {name!r}", kind="resource_class", name=name)
            if row[0]:
                raise InvalidInput(f"{name} is a standard resource class and cannot be deleted")
            if conn.execute("SELECT 1 FROM inventories WHERE rc = ? LIMIT 1", (name,)).fetchone():
                raise InUse(f"resource class {name} is in use by inventories", name=name)
            conn.execute("DELETE FROM resource_classes WHERE name = ?", (name,))

    # -- traits ------------------------------------------------------------
    def list_traits(self) -> list[str]:
        # One row, not one per trait: each row stepped releases the GIL.
        (packed,) = self._one(
            "SELECT json_group_array(name) FROM (SELECT name FROM traits ORDER BY name)"
        )
        names: list[str] = orjson.loads(packed)
        return names

    def create_trait(self, name: str) -> bool:
        validate_custom_name(name, "trait")
        now = self.clock()
        with self._write() as conn:
            cur = conn.execute("INSERT OR IGNORE INTO traits VALUES (?, 0, ?, ?)", (name, now, now))
            return cur.rowcount == 1

    def delete_trait(self, name: str) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT standard FROM traits WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFound(f"no trait {name!r}", kind="trait", name=name)
            if row[0]:
                raise InvalidInput(f"{name} is a standard trait and cannot be deleted")
            if conn.execute(
                "SELECT 1 FROM provider_traits WHERE trait = ? LIMIT 1", (name,)
            ).fetchone():
                raise InUse(f"trait {name} is in use by providers", name=name)
            conn.execute("DELETE FROM traits WHERE name = ?", (name,))

    def traits_in_use(self) -> set[str]:
        return {r[0] for r in self._select("SELECT DISTINCT trait FROM provider_traits")}

    # -- resource types ----------------------------------------------------
    def list_resource_types(self) -> list[ResourceType]:
        rows = self._select("SELECT body FROM resource_types ORDER BY name")
        return list(BUILTIN_TYPES.values()) + [_type_from_json(r[0]) for r in rows]

    def get_resource_type(self, name: str) -> ResourceType:
        with self._read() as conn:
            return self._get_type(conn, name)

    def _get_type(self, conn: sqlite3.Connection, name: str) -> ResourceType:
        if name in BUILTIN_TYPES:
            return BUILTIN_TYPES[name]
        row = conn.execute("SELECT body FROM resource_types WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no resource type {name!r}", kind="resource_type", name=name)
        return _type_from_json(row[0])

    def create_resource_type(self, rtype: ResourceType) -> ResourceType:
        rtype.validate_type()
        if rtype.name in BUILTIN_TYPES:
            raise AlreadyExists(f"{rtype.name} is a built-in resource type", name=rtype.name)
        custom = ResourceType(
            rtype.name, tuple(rtype.attributes.values()), rtype.description, builtin=False
        )
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO resource_types VALUES (?, ?, ?)",
                    (custom.name, json.dumps(custom.to_dict()), self.clock()),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(
                    f"resource type {rtype.name} already exists", name=rtype.name
                ) from None
        return custom

    def delete_resource_type(self, name: str) -> None:
        if name in BUILTIN_TYPES:
            raise InvalidInput(f"{name} is a built-in resource type and cannot be deleted")
        with self._write() as conn:
            self._get_type(conn, name)
            if conn.execute("SELECT 1 FROM providers WHERE type = ? LIMIT 1", (name,)).fetchone():
                raise InUse(f"resource type {name} is in use by providers", name=name)
            conn.execute("DELETE FROM resource_types WHERE name = ?", (name,))

    # -- aggregate names ---------------------------------------------------
    def create_aggregate(self, name: str, uuid: str | None = None) -> AggregateName:
        return sqlite_aggregates.create(self, name, uuid)

    def get_aggregate(self, ref: str) -> AggregateName:
        return sqlite_aggregates.get(self, ref)

    def list_aggregates(self) -> list[AggregateName]:
        return sqlite_aggregates.list_all(self)

    def delete_aggregate(self, ref: str) -> None:
        sqlite_aggregates.delete(self, ref)

    # -- providers ---------------------------------------------------------
    def create_provider(self, provider: Provider) -> Provider:
        self.home_of(provider.cell)  # one cell: any other is unknown_cell
        now = self.clock()
        with self._write() as conn:
            rtype = self._get_type(conn, provider.type)
            attributes = rtype.validate_attributes(provider.attributes)
            parent_id = None
            root_id = None
            if provider.parent_uuid:
                parent = conn.execute(
                    "SELECT id, root_id FROM providers WHERE uuid = ?", (provider.parent_uuid,)
                ).fetchone()
                if parent is None:
                    raise NotFound(
                        f"parent provider {provider.parent_uuid} not found",
                        kind="provider",
                        uuid=provider.parent_uuid,
                    )
                parent_id, root_id = parent
            clash = conn.execute(
                "SELECT uuid, name FROM providers WHERE uuid = ? OR name = ?",
                (provider.uuid, provider.name),
            ).fetchone()
            if clash:
                what = "uuid" if clash[0] == provider.uuid else "name"
                value = provider.uuid if what == "uuid" else provider.name
                raise AlreadyExists(f"a provider with {what} {value!r} already exists", field=what)
            cur = conn.execute(
                "INSERT INTO providers (uuid, name, type, parent_id, root_id, enabled, generation,"
                " heartbeat_at, attributes, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 0, ?, 0, ?, ?, ?, ?)",
                (
                    provider.uuid,
                    provider.name,
                    provider.type,
                    parent_id,
                    int(provider.enabled),
                    provider.heartbeat_at,
                    json.dumps(attributes, sort_keys=True),
                    now,
                    now,
                ),
            )
            pid = int(cur.lastrowid or 0)
            conn.execute(
                "UPDATE providers SET root_id = ? WHERE id = ?",
                (root_id if root_id is not None else pid, pid),
            )
            self._write_attributes(conn, pid, attributes)
            self._replace_inventories(conn, pid, provider.inventories, check_usage=False)
            self._replace_traits(conn, pid, provider.traits)
            self._replace_aggregates(conn, pid, provider.aggregates)
            return self._load_provider(conn, pid)

    def get_provider(self, uuid: str) -> Provider:
        with self._read() as conn:
            return self._load_provider(conn, self._pid(conn, uuid))

    def list_providers(self, flt: ProviderFilter | None = None) -> list[Provider]:
        return [p for p, _ in self._list_rows(flt)]

    def list_usages(self, flt: ProviderFilter | None = None) -> list[ProviderUsage]:
        return [ProviderUsage(p, u) for p, u in self._list_rows(flt)]

    def _list_rows(self, flt: ProviderFilter | None) -> list[tuple[Provider, dict[str, Usage]]]:
        flt = flt or ProviderFilter()
        now = self.clock()
        where: list[str] = []
        params: list[Any] = []
        joins = ""
        if flt.uuid:
            where.append("p.uuid = ?")
            params.append(flt.uuid)
        if flt.name:
            where.append("p.name = ?")
            params.append(flt.name)
        if flt.in_tree:
            where.append("p.root_id = (SELECT root_id FROM providers WHERE uuid = ?)")
            params.append(flt.in_tree)
        if flt.group is not None:
            joins, jparams = self._resource_joins(flt.group.resources)
            params = jparams + params
            gw, gp = self._group_conditions(flt.group, check_types=False)
            where += gw
            params += gp
            if flt.group.required_traits:
                # Lets SQLite start from the trait's providers (a rowid IN
                # list) instead of probing every provider's traits: the
                # Placement API asks for sharing providers on every request.
                where.append("p.id IN (SELECT provider_id FROM provider_traits WHERE trait = ?)")
                params.append(min(flt.group.required_traits))
        sql = "SELECT p.id FROM providers p" + joins
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY p.id"
        self._sweep_if_due(now)
        with self._read() as conn:
            ids = [r[0] for r in conn.execute(sql, params)]
            return self._load_rows(conn, ids)

    def update_provider(
        self,
        uuid: str,
        expected_generation: int | None,
        *,
        name: str | _Unset = UNSET,
        parent_uuid: str | _Unset | None = UNSET,
        attributes: dict[str, Any] | _Unset = UNSET,
        enabled: bool | _Unset = UNSET,
    ) -> Provider:
        now = self.clock()
        with self._write() as conn:
            pid, _ = self._check_generation(conn, uuid, expected_generation)
            self._rename_reparent(conn, pid, name, parent_uuid)
            if not isinstance(attributes, _Unset):
                ptype = conn.execute("SELECT type FROM providers WHERE id = ?", (pid,)).fetchone()
                checked = self._get_type(conn, ptype[0]).validate_attributes(attributes)
                conn.execute(
                    "UPDATE providers SET attributes = ? WHERE id = ?",
                    (json.dumps(checked, sort_keys=True), pid),
                )
                self._write_attributes(conn, pid, checked)
            if not isinstance(enabled, _Unset):
                was = conn.execute("SELECT enabled FROM providers WHERE id = ?", (pid,)).fetchone()
                conn.execute("UPDATE providers SET enabled = ? WHERE id = ?", (int(enabled), pid))
                if bool(was[0]) != bool(enabled):
                    event = Event(Subject.PROVIDER, uuid, now, ENABLED if enabled else DISABLED)
                    sqlite_events.insert(conn, [event])
            self._bump(conn, pid, now)
            return self._load_provider(conn, pid)

    def _rename_reparent(
        self,
        conn: sqlite3.Connection,
        pid: int,
        name: str | _Unset,
        parent_uuid: str | _Unset | None,
    ) -> None:
        if not isinstance(name, _Unset):
            clash = conn.execute(
                "SELECT 1 FROM providers WHERE name = ? AND id != ?", (name, pid)
            ).fetchone()
            if clash:
                raise AlreadyExists(f"a provider named {name!r} already exists", field="name")
            conn.execute("UPDATE providers SET name = ? WHERE id = ?", (name, pid))
        if not isinstance(parent_uuid, _Unset):
            self._reparent(conn, pid, parent_uuid)

    def _reparent(self, conn: sqlite3.Connection, pid: int, parent_uuid: str | None) -> None:
        if parent_uuid is None:
            new_parent, new_root = None, pid
        else:
            row = conn.execute(
                "SELECT id, root_id FROM providers WHERE uuid = ?", (parent_uuid,)
            ).fetchone()
            if row is None:
                raise NotFound(f"parent provider {parent_uuid} not found", kind="provider")
            new_parent, new_root = row
            # Walk up from the new parent: meeting ourselves means a cycle.
            cursor: int | None = new_parent
            while cursor is not None:
                if cursor == pid:
                    raise InvalidInput("a provider cannot be its own ancestor", field="parent")
                cursor = conn.execute(
                    "SELECT parent_id FROM providers WHERE id = ?", (cursor,)
                ).fetchone()[0]
        conn.execute("UPDATE providers SET parent_id = ? WHERE id = ?", (new_parent, pid))
        # The whole subtree moves to the new root.
        conn.execute(
            "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL"
            " SELECT p.id FROM providers p JOIN sub ON p.parent_id = sub.id)"
            " UPDATE providers SET root_id = ? WHERE id IN (SELECT id FROM sub)",
            (pid, new_root),
        )

    def delete_provider(self, uuid: str) -> None:
        now = self.clock()
        with self._write() as conn:
            pid = self._pid(conn, uuid)
            if conn.execute(
                "SELECT 1 FROM providers WHERE parent_id = ? LIMIT 1", (pid,)
            ).fetchone():
                raise InUse(f"provider {uuid} has children", uuid=uuid)
            if conn.execute(
                f"SELECT 1 FROM ledger l WHERE l.provider_id = ? AND {_LIVE} LIMIT 1", (pid, now)
            ).fetchone():
                raise InUse(f"provider {uuid} has claims or allocations", uuid=uuid)
            conn.execute("DELETE FROM ledger WHERE provider_id = ?", (pid,))
            conn.execute("DELETE FROM providers WHERE id = ?", (pid,))

    def set_inventories(
        self,
        uuid: str,
        expected_generation: int | None,
        inventories: dict[str, Inventory],
        *,
        allow_overcapacity: bool = False,
    ) -> Provider:
        now = self.clock()
        with self._write() as conn:
            self._sweep(conn, now)
            pid, _ = self._check_generation(conn, uuid, expected_generation)
            self._replace_inventories(
                conn, pid, inventories, check_usage=True, allow_overcapacity=allow_overcapacity
            )
            self._bump(conn, pid, now)
            return self._load_provider(conn, pid)

    def set_traits(
        self, uuid: str, expected_generation: int | None, traits: Iterable[str]
    ) -> Provider:
        now = self.clock()
        with self._write() as conn:
            pid, _ = self._check_generation(conn, uuid, expected_generation)
            self._replace_traits(conn, pid, traits)
            self._bump(conn, pid, now)
            return self._load_provider(conn, pid)

    def set_aggregates(
        self, uuid: str, expected_generation: int | None, aggregates: Iterable[str]
    ) -> Provider:
        now = self.clock()
        with self._write() as conn:
            pid, _ = self._check_generation(conn, uuid, expected_generation)
            self._replace_aggregates(conn, pid, aggregates)
            self._bump(conn, pid, now)
            return self._load_provider(conn, pid)

    def heartbeat(self, uuid: str, at: float | None = None) -> None:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE providers SET heartbeat_at = ? WHERE uuid = ?",
                (self.clock() if at is None else at, uuid),
            )
            if cur.rowcount == 0:
                raise NotFound(f"provider {uuid} not found", kind="provider", uuid=uuid)

    # -- provider helpers --------------------------------------------------
    def _pid(self, conn: sqlite3.Connection, uuid: str) -> int:
        row = conn.execute("SELECT id FROM providers WHERE uuid = ?", (uuid,)).fetchone()
        if row is None:
            raise NotFound(f"provider {uuid} not found", kind="provider", uuid=uuid)
        return int(row[0])

    def _check_generation(
        self, conn: sqlite3.Connection, uuid: str, expected: int | None
    ) -> tuple[int, int]:
        row = conn.execute(
            "SELECT id, generation FROM providers WHERE uuid = ?", (uuid,)
        ).fetchone()
        return self._generation_matches(row, uuid, expected), int(row[1])

    @staticmethod
    def _generation_matches(row: Any, uuid: str, expected: int | None) -> int:
        """The provider id of a ``(id, generation, ...)`` row, unless the row is
        missing or at another generation than ``expected``."""
        if row is None:
            raise NotFound(f"provider {uuid} not found", kind="provider", uuid=uuid)
        if expected is not None and row[1] != expected:
            raise GenerationConflict(
                f"provider {uuid} is at generation {row[1]}, not {expected}: re-read and retry",
                uuid=uuid,
                generation=row[1],
            )
        return int(row[0])

    @staticmethod
    def _bump(conn: sqlite3.Connection, pid: int, now: float) -> None:
        conn.execute(
            "UPDATE providers SET generation = generation + 1, updated_at = ? WHERE id = ?",
            (now, pid),
        )

    @staticmethod
    def _write_attributes(conn: sqlite3.Connection, pid: int, attributes: dict[str, Any]) -> None:
        conn.execute("DELETE FROM provider_attributes WHERE provider_id = ?", (pid,))
        conn.executemany(
            "INSERT INTO provider_attributes VALUES (?, ?, ?, ?)",
            [
                (pid, k, None, v) if isinstance(v, str) else (pid, k, float(v), None)
                for k, v in attributes.items()
            ],
        )

    def _replace_inventories(
        self,
        conn: sqlite3.Connection,
        pid: int,
        inventories: dict[str, Inventory],
        *,
        check_usage: bool,
        allow_overcapacity: bool = False,
    ) -> None:
        classes = {
            r[0]: bool(r[1])
            for r in conn.execute("SELECT name, discrete FROM resource_classes").fetchall()
        }
        for rc, inv in inventories.items():
            if rc != inv.resource_class:
                raise InvalidInput(f"inventory keyed {rc} is for {inv.resource_class}")
            if rc not in classes:
                raise NotFound(f"no resource class {rc!r}", kind="resource_class", name=rc)
            inv.validate(discrete=classes[rc])
        used = {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT rc, used FROM inventories WHERE provider_id = ?", (pid,)
            ).fetchall()
        }
        if check_usage:
            for rc, amount in used.items():
                if amount <= 0:
                    continue
                if rc not in inventories:
                    raise InUse(f"cannot remove {rc} inventory: {amount} in use", resource_class=rc)
                if not allow_overcapacity and inventories[rc].capacity < amount:
                    raise InUse(
                        f"{rc}: new capacity {inventories[rc].capacity} is below the "
                        f"{amount} in use",
                        resource_class=rc,
                    )
        conn.execute("DELETE FROM inventories WHERE provider_id = ?", (pid,))
        conn.executemany(
            "INSERT INTO inventories (provider_id, rc, total, reserved, min_unit, max_unit,"
            " step_size, allocation_ratio, capacity, used) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    pid,
                    rc,
                    inv.total,
                    inv.reserved,
                    inv.min_unit,
                    inv.max_unit,
                    inv.step_size,
                    float(inv.allocation_ratio),
                    inv.capacity,
                    max(used.get(rc, 0), 0),
                )
                for rc, inv in inventories.items()
            ],
        )

    @staticmethod
    def _replace_traits(conn: sqlite3.Connection, pid: int, traits: Iterable[str]) -> None:
        wanted = sorted(set(traits))
        if wanted:
            marks = ",".join("?" * len(wanted))
            known = {
                r[0]
                for r in conn.execute(f"SELECT name FROM traits WHERE name IN ({marks})", wanted)
            }
            missing = [t for t in wanted if t not in known]
            if missing:
                raise NotFound(f"no such traits: {', '.join(missing)}", kind="trait", names=missing)
        conn.execute("DELETE FROM provider_traits WHERE provider_id = ?", (pid,))
        conn.executemany("INSERT INTO provider_traits VALUES (?, ?)", [(pid, t) for t in wanted])

    @staticmethod
    def _replace_aggregates(conn: sqlite3.Connection, pid: int, aggregates: Iterable[str]) -> None:
        wanted = sorted(set(aggregates))
        for agg in wanted:
            if not isinstance(agg, str) or not agg or len(agg) > 255:
                raise InvalidInput(f"aggregate {agg!r} must be a non-empty string")
        conn.execute("DELETE FROM provider_aggregates WHERE provider_id = ?", (pid,))
        conn.executemany(
            "INSERT INTO provider_aggregates VALUES (?, ?)", [(pid, a) for a in wanted]
        )

    def _load_provider(self, conn: sqlite3.Connection, pid: int) -> Provider:
        found = self._load_providers(conn, [pid])
        if not found:
            raise NotFound(f"provider #{pid} not found", kind="provider")
        return found[0]

    def _load_providers(self, conn: sqlite3.Connection, ids: list[int]) -> list[Provider]:
        return [p for p, _ in self._load_rows(conn, ids)]

    def _load_rows(
        self, conn: sqlite3.Connection, ids: list[int]
    ) -> list[tuple[Provider, dict[str, Usage]]]:
        """Providers with inventories, usage, traits and aggregates, in ``ids``
        order (unknown ids are left out)."""
        found: dict[int, tuple[Provider, dict[str, Usage]]] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            (packed,) = conn.execute(
                f"SELECT json_group_array({_PROVIDER_JSON}){_PROVIDER_FROM}"
                f" WHERE p.id IN ({marks})",
                chunk,
            ).fetchone()
            for row in orjson.loads(packed):
                found[row[0]] = _provider_row(row)
        return [found[pid] for pid in ids if pid in found]

    # -- queries -----------------------------------------------------------
    @staticmethod
    def _resource_joins(resources: dict[str, int]) -> tuple[str, list[Any]]:
        """One inventory join per requested class, each a fit condition."""
        sql = []
        params: list[Any] = []
        for n, (rc, amount) in enumerate(sorted(resources.items())):
            a = f"r{n}"
            sql.append(
                f" JOIN inventories {a} ON {a}.provider_id = p.id AND {a}.rc = ?"
                f" AND {a}.free >= ? AND {a}.min_unit <= ? AND {a}.max_unit >= ?"
                f" AND (? % {a}.step_size) = 0"
            )
            params += [rc, amount, amount, amount, amount]
        return "".join(sql), params

    @staticmethod
    def _resource_exists(resources: dict[str, int]) -> tuple[list[str], list[Any]]:
        """One EXISTS per requested class, each a fit condition. Not joins: with
        three classes joined, SQLite 3.40's planner sorts every fitting
        provider (75 ms at 10k) instead of walking the sort class's index
        (0.3 ms); a correlated EXISTS leaves a two-table join it orders right."""
        where = []
        params: list[Any] = []
        for rc, amount in sorted(resources.items()):
            where.append(
                "EXISTS (SELECT 1 FROM inventories r WHERE r.provider_id = p.id AND r.rc = ?"
                " AND r.free >= ? AND r.min_unit <= ? AND r.max_unit >= ?"
                " AND (? % r.step_size) = 0)"
            )
            params += [rc, amount, amount, amount, amount]
        return where, params

    def _group_conditions(
        self, group: RequestGroup, *, check_types: bool = True
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        for trait in sorted(group.required_traits):
            where.append(
                "EXISTS (SELECT 1 FROM provider_traits t WHERE t.provider_id = p.id"
                " AND t.trait = ?)"
            )
            params.append(trait)
        if group.forbidden_traits:
            names = sorted(group.forbidden_traits)
            where.append(
                "NOT EXISTS (SELECT 1 FROM provider_traits t WHERE t.provider_id = p.id"
                f" AND t.trait IN ({','.join('?' * len(names))}))"
            )
            params += names
        for any_of in group.any_traits:
            names = sorted(any_of)
            where.append(
                "EXISTS (SELECT 1 FROM provider_traits t WHERE t.provider_id = p.id"
                f" AND t.trait IN ({','.join('?' * len(names))}))"
            )
            params += names
        for any_of in group.member_of:
            names = sorted(any_of)
            where.append(
                "EXISTS (SELECT 1 FROM provider_aggregates a WHERE a.provider_id = p.id"
                f" AND a.aggregate IN ({','.join('?' * len(names))}))"
            )
            params += names
        if group.forbidden_aggregates:
            names = sorted(group.forbidden_aggregates)
            where.append(
                "NOT EXISTS (SELECT 1 FROM provider_aggregates a WHERE a.provider_id = p.id"
                f" AND a.aggregate IN ({','.join('?' * len(names))}))"
            )
            params += names
        if group.in_tree:
            where.append("p.root_id = (SELECT root_id FROM providers WHERE uuid = ?)")
            params.append(group.in_tree)
        if group.provider_type:
            where.append("p.type = ?")
            params.append(group.provider_type)
        rtype = None
        if group.provider_type and check_types:
            rtype = self._get_type(self._conn(), group.provider_type)
        for c in group.attributes:
            spec = rtype.attributes.get(c.name) if rtype else None
            if rtype is not None and spec is None:
                raise InvalidInput(
                    f"resource type {rtype.name} has no attribute {c.name!r}", field=c.name
                )
            checked = check_constraint(spec or infer_spec(c.name, c.value), c)
            sql, p = _attribute_condition(checked)
            where.append(sql)
            params += p
        return where, params

    def find_candidates(self, query: CandidateQuery) -> list[ProviderUsage]:
        group = query.group
        if not group.resources:
            raise InvalidInput("a candidate query needs at least one resource amount")
        now = self.clock()
        order_rc = query.order_class()
        if order_rc not in group.resources:
            raise InvalidInput(f"sort class {order_rc} is not requested by the group")
        amount = group.resources[order_rc]
        others = {rc: n for rc, n in group.resources.items() if rc != order_rc}
        where = (
            " WHERE o.rc = ? AND o.free >= ? AND o.min_unit <= ? AND o.max_unit >= ?"
            " AND (? % o.step_size) = 0"
        )
        if not query.include_disabled:
            where += " AND p.enabled = 1"
        params: list[Any] = [order_rc, amount, amount, amount, amount]
        rw, rp = self._resource_exists(others)
        for cond in rw:
            where += " AND " + cond
        params += rp
        if query.heartbeat_after is not None:
            where += " AND (p.heartbeat_at IS NULL OR p.heartbeat_at > ?)"
            params.append(query.heartbeat_after)
        if query.exclude:
            ex = sorted(query.exclude)
            where += f" AND p.uuid NOT IN ({','.join('?' * len(ex))})"
            params += ex
        if query.roots is not None:
            roots = sorted(query.roots)
            if not roots:
                return []
            where += (
                " AND p.root_id IN (SELECT id FROM providers WHERE uuid IN"
                f" ({','.join('?' * len(roots))}))"
            )
            params += roots
        gw, gp = self._group_conditions(group)
        for cond in gw:
            where += " AND " + cond
        params += gp
        direction = "DESC" if query.strategy == Strategy.SPREAD else "ASC"
        order = f" ORDER BY o.free {direction}, o.provider_id {direction} LIMIT ?"
        self._sweep_if_due(now)
        # No read transaction: the answer is ONE statement, so it sees one
        # state anyway (the counts before it only choose the plan), and
        # BEGIN and COMMIT would be two more GIL releases.
        conn = self._conn()
        try:
            driver = self._selective_driver(conn, query)
            if driver is None:
                # The sort class drives the scan: CROSS JOIN pins it as the
                # outer loop so SQLite walks the (rc, free, provider_id) index
                # in order and stops at LIMIT instead of sorting every fit.
                sql = (
                    "SELECT o.free AS free, p.id AS id FROM inventories o CROSS JOIN providers p"
                    " ON p.id = o.provider_id" + where + order
                )
                args = [*params, int(query.limit)]
            else:
                # A rare trait, aggregate or one tree: walking the index would
                # visit nearly every provider to find none; start from the few
                # that qualify and sort them instead.
                dsql, dparams = driver
                sql = (
                    f"SELECT o.free AS free, p.id AS id FROM ({dsql}) sel CROSS JOIN providers p"
                    " ON p.id = sel.id CROSS JOIN inventories o ON o.provider_id = p.id"
                    + where
                    + order
                )
                args = [*dparams, *params, int(query.limit)]
            # The candidates and everything loaded about them come back as ONE
            # row: the sqlite3 module releases the GIL on every row it steps,
            # and with many scheduler threads each release is a thread switch.
            (packed,) = conn.execute(
                f"SELECT json_group_array(json_array(c.free, {_PROVIDER_JSON}))"
                f" FROM ({sql}) c CROSS JOIN providers p ON p.id = c.id"
                " LEFT JOIN providers par ON par.id = p.parent_id"
                " JOIN providers root ON root.id = p.root_id",
                args,
            ).fetchone()
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        rows = orjson.loads(packed)
        # An aggregate's input order is not promised: sort as ORDER BY did.
        rows.sort(key=lambda r: (r[0], r[1][0]), reverse=query.strategy == Strategy.SPREAD)
        return [_make_provider_usage(*_provider_row(r[1])) for r in rows]

    def _selective_driver(
        self, conn: sqlite3.Connection, query: CandidateQuery
    ) -> tuple[str, list[Any]] | None:
        """The most selective narrowing condition of the query, as a sub-select
        of provider ids, if it matches at most NARROW_MAX providers."""
        group = query.group
        options: list[tuple[str, list[Any]]] = [
            ("SELECT provider_id AS id FROM provider_traits WHERE trait = ?", [t])
            for t in sorted(group.required_traits)
        ]
        for any_of in group.member_of:
            names = sorted(any_of)
            options.append(
                (
                    "SELECT DISTINCT provider_id AS id FROM provider_aggregates"
                    f" WHERE aggregate IN ({','.join('?' * len(names))})",
                    names,
                )
            )
        if group.in_tree:
            options.append(
                (
                    "SELECT id FROM providers WHERE root_id ="
                    " (SELECT root_id FROM providers WHERE uuid = ?)",
                    [group.in_tree],
                )
            )
        if query.roots:
            roots = sorted(query.roots)
            options.append(
                (
                    "SELECT id FROM providers WHERE root_id IN (SELECT id FROM providers"
                    f" WHERE uuid IN ({','.join('?' * len(roots))}))",
                    roots,
                )
            )
        best: tuple[int, tuple[str, list[Any]]] | None = None
        for sql, args in options:
            n = conn.execute(
                f"SELECT COUNT(*) FROM ({sql} LIMIT {NARROW_MAX + 1})", args
            ).fetchone()[0]
            if n <= NARROW_MAX and (best is None or n < best[0]):
                best = (n, (sql, args))
        return None if best is None else best[1]

    def _usages(self, conn: sqlite3.Connection, ids: list[int]) -> list[ProviderUsage]:
        return [_make_provider_usage(p, u) for p, u in self._load_rows(conn, ids)]

    def get_usage(self, uuid: str) -> ProviderUsage:
        self._sweep_if_due(self.clock())
        # One statement (a scheduler's re-read after a lost compare-and-set).
        try:
            (packed,) = (
                self._conn()
                .execute(
                    f"SELECT json_group_array({_PROVIDER_JSON}){_PROVIDER_FROM} WHERE p.uuid = ?",
                    (uuid,),
                )
                .fetchone()
            )
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        rows = orjson.loads(packed)
        if not rows:
            raise NotFound(f"provider {uuid} not found", kind="provider", uuid=uuid)
        return _make_provider_usage(*_provider_row(rows[0]))

    # -- claims ------------------------------------------------------------
    def claim(self, spec: ClaimSpec) -> Claim:
        _, write = self._claim_write(spec, self.clock())
        return self._group(write)

    def claim_and_record(
        self, spec: ClaimSpec, record: Callable[[Claim], Request]
    ) -> tuple[Claim, Request]:
        # One transaction (one group-commit entry): a placement's only write.
        now = self.clock()
        claim, write_claim = self._claim_write(spec, now)
        saved, row = self._request_row(record(claim), now)

        def write(conn: sqlite3.Connection) -> Claim:
            self._insert_request(conn, saved, row)
            return write_claim(conn)

        return self._group(write), saved

    def _claim_write(
        self, spec: ClaimSpec, now: float
    ) -> tuple[Claim, Callable[[sqlite3.Connection], Claim]]:
        """The claim ``spec`` makes at ``now``, and the write that takes it."""
        if spec.ttl <= 0:
            raise InvalidInput("a claim's ttl must be positive", field="ttl")
        if not spec.amounts:
            raise InvalidInput("a claim needs at least one resource amount")
        for rc, amount in spec.amounts.items():
            if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
                raise InvalidInput(f"{rc}: claim amounts are positive integers", field=rc)
        claim = Claim(
            uuid=spec.claim_uuid or new_uuid(),
            provider_uuid=spec.provider_uuid,
            consumer_uuid=spec.consumer_uuid,
            amounts=dict(spec.amounts),
            status=ClaimStatus.CLAIMED,
            request_uuid=spec.request_uuid,
            group=spec.group,
            project_id=spec.project_id,
            user_id=spec.user_id,
            created_at=now,
            expires_at=now + spec.ttl,
        )

        def write(conn: sqlite3.Connection) -> Claim:
            self._sweep(conn, now)
            # Generation and inventories in one row: each row stepped is a
            # GIL release, a thread switch when schedulers contend.
            row = conn.execute(
                "SELECT p.id, p.generation, (SELECT json_group_array(json_array(i.rc, i.total,"
                f" i.reserved, i.min_unit, i.max_unit, i.step_size, {_RATIO}, i.used))"
                " FROM inventories i WHERE i.provider_id = p.id) FROM providers p WHERE p.uuid = ?",
                (spec.provider_uuid,),
            ).fetchone()
            pid = self._generation_matches(row, spec.provider_uuid, spec.expected_generation)
            invs: dict[str, Inventory] = {}
            in_use: dict[str, int] = {}
            for rc, *fields, n in orjson.loads(row[2]):
                invs[rc] = _inventory((rc, *fields))
                in_use[rc] = n
            self._raise_unless_fits(spec.provider_uuid, invs, in_use, spec.amounts)
            try:
                self._insert_ledger(conn, pid, claim)
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"claim {claim.uuid} already exists", uuid=claim.uuid) from None
            self._add_used(conn, pid, spec.amounts)
            self._bump(conn, pid, now)
            sqlite_events.insert(conn, claim_events(claim, CLAIMED, now))
            return claim

        return claim, write

    def _check_fit(
        self,
        conn: sqlite3.Connection,
        pid: int,
        uuid: str,
        freed: dict[str, int],
        amounts: dict[str, int],
    ) -> None:
        """Raise unless ``amounts`` fit once ``freed`` is given back."""
        invs: dict[str, Inventory] = {}
        used: dict[str, int] = {}
        for row in conn.execute(
            "SELECT rc, total, reserved, min_unit, max_unit, step_size, allocation_ratio, used"
            " FROM inventories WHERE provider_id = ?",
            (pid,),
        ):
            invs[row[0]] = Inventory(*row[:7])
            used[row[0]] = row[7] - freed.get(row[0], 0)
        self._raise_unless_fits(uuid, invs, used, amounts)

    @staticmethod
    def _raise_unless_fits(
        uuid: str, invs: dict[str, Inventory], used: dict[str, int], amounts: dict[str, int]
    ) -> None:
        report = check_fit(invs, used, amounts)
        if not report.fits:
            raise InsufficientCapacity(
                f"does not fit on provider {uuid}: " + "; ".join(report.reasons),
                uuid=uuid,
                reasons=report.reasons,
            )

    @staticmethod
    def _insert_ledger(conn: sqlite3.Connection, pid: int, c: Claim) -> None:
        conn.execute(
            "INSERT INTO ledger (uuid, provider_id, consumer_uuid, request_uuid, grp, status,"
            " amounts, project_id, user_id, created_at, expires_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                c.uuid,
                pid,
                c.consumer_uuid,
                c.request_uuid,
                c.group,
                c.status.value,
                orjson.dumps(c.ledger_amounts(), option=orjson.OPT_SORT_KEYS).decode(),
                c.project_id,
                c.user_id,
                c.created_at,
                c.expires_at,
            ),
        )

    @staticmethod
    def _add_used(conn: sqlite3.Connection, pid: int, amounts: dict[str, int]) -> None:
        # One statement for every class: one step instead of one per class.
        if not amounts:
            return
        cases = " ".join("WHEN ? THEN ?" for _ in amounts)
        marks = ",".join("?" * len(amounts))
        conn.execute(
            f"UPDATE inventories SET used = used + CASE rc {cases} END"
            f" WHERE provider_id = ? AND rc IN ({marks})",
            [*(x for item in amounts.items() for x in item), pid, *amounts],
        )

    def confirm_claim(self, claim_uuid: str) -> Claim:
        def write(conn: sqlite3.Connection) -> Claim:
            # Read the clock only once we hold the write lock: waiting for it
            # can take long enough for the claim to expire meanwhile.
            now = self.clock()
            claim = self._get_claim(conn, claim_uuid, now)
            if claim.status == ClaimStatus.CONFIRMED:
                return claim
            conn.execute(
                "UPDATE ledger SET status = 'confirmed', expires_at = NULL WHERE uuid = ?",
                (claim_uuid,),
            )
            sqlite_events.insert(conn, claim_events(claim, CONFIRMED, now))
            return claim.evolve(status=ClaimStatus.CONFIRMED, expires_at=None)

        return self._group(write)

    def release_claim(self, claim_uuid: str) -> None:
        now = self.clock()

        def write(conn: sqlite3.Connection) -> None:
            self._sweep(conn, now)
            row = conn.execute(
                "SELECT provider_id, amounts FROM ledger WHERE uuid = ?", (claim_uuid,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no live claim {claim_uuid}", kind="claim", uuid=claim_uuid)
            sqlite_events.ledger_step(conn, claim_uuid, RELEASED, now)
            conn.execute("DELETE FROM ledger WHERE uuid = ?", (claim_uuid,))
            conn.execute(
                "INSERT OR REPLACE INTO ledger_tombstones VALUES (?, 'released', ?)",
                (claim_uuid, now),
            )
            self._add_used(conn, row[0], json.loads(row[1]))
            self._bump(conn, row[0], now)

        # Giving back is never cut by a deadline: it is how a request that ran
        # out of time leaves nothing behind.
        with deadline.shielded():
            self._group(write)

    def _get_claim(self, conn: sqlite3.Connection, claim_uuid: str, now: float) -> Claim:
        rows = self._select_claims(conn, "l.uuid = ?", [claim_uuid], now, live_only=False)
        if not rows:
            gone = conn.execute(
                "SELECT reason FROM ledger_tombstones WHERE uuid = ?", (claim_uuid,)
            ).fetchone()
            if gone:
                raise ClaimNotActive(f"claim {claim_uuid} was {gone[0]}", uuid=claim_uuid)
            raise NotFound(f"no claim {claim_uuid}", kind="claim", uuid=claim_uuid)
        claim = rows[0]
        if not claim.is_live(now):
            raise ClaimNotActive(f"claim {claim_uuid} has expired", uuid=claim_uuid)
        return claim

    def get_claim(self, claim_uuid: str) -> Claim:
        with self._read() as conn:
            rows = self._select_claims(conn, "l.uuid = ?", [claim_uuid], self.clock())
        if not rows:
            raise NotFound(f"no live claim {claim_uuid}", kind="claim", uuid=claim_uuid)
        return rows[0]

    @staticmethod
    def _select_claims(
        conn: sqlite3.Connection,
        where: str,
        params: list[Any],
        now: float,
        *,
        live_only: bool = True,
    ) -> list[Claim]:
        sql = (
            "SELECT l.uuid, p.uuid, l.consumer_uuid, l.amounts, l.status, l.request_uuid,"
            " l.grp, l.project_id, l.user_id, l.created_at, l.expires_at"
            " FROM ledger l JOIN providers p ON p.id = l.provider_id WHERE " + where
        )
        if live_only:
            sql += f" AND {_LIVE}"
            params = [*params, now]
        sql += " ORDER BY l.id"
        return [
            Claim(
                uuid=r[0],
                provider_uuid=r[1],
                consumer_uuid=r[2],
                amounts={rc: -n for rc, n in json.loads(r[3]).items()},
                status=ClaimStatus(r[4]),
                request_uuid=r[5],
                group=r[6],
                project_id=r[7],
                user_id=r[8],
                created_at=r[9],
                expires_at=r[10],
            )
            for r in conn.execute(sql, params)
        ]

    def list_claims(
        self,
        *,
        provider_uuid: str | None = None,
        consumer_uuid: str | None = None,
        request_uuid: str | None = None,
        group: str | None = None,
        status: ClaimStatus | None = None,
    ) -> list[Claim]:
        where = ["1 = 1"]
        params: list[Any] = []
        for column, value in (
            ("p.uuid", provider_uuid),
            ("l.consumer_uuid", consumer_uuid),
            ("l.request_uuid", request_uuid),
            ("l.grp", group),
            ("l.status", status.value if status else None),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        with self._read() as conn:
            return self._select_claims(conn, " AND ".join(where), params, self.clock())

    def expire_claims(self) -> int:
        with self._write() as conn:
            return self._sweep(conn, self.clock())

    def _sweep(self, conn: sqlite3.Connection, now: float) -> int:
        """Delete expired claims inside the caller's write transaction. No
        generation bump: an expired claim already counted for nothing, so the
        provider's state as anyone may read it does not change. Every claim
        and release sweeps first: a probe of the expiry index keeps that to
        one statement when nothing is due."""
        if not conn.execute(_DUE, (now,)).fetchone():
            return 0
        self.expired_seen += sqlite_events.expiring(conn, now)
        rows = conn.execute(
            "DELETE FROM ledger WHERE status = 'claimed' AND expires_at <= ?"
            " RETURNING provider_id, amounts, uuid",
            (now,),
        ).fetchall()
        for pid, amounts, _ in rows:
            self._add_used(conn, pid, json.loads(amounts))
        if rows:
            conn.executemany(
                "INSERT OR REPLACE INTO ledger_tombstones VALUES (?, 'expired', ?)",
                [(r[2], now) for r in rows],
            )
            conn.execute("DELETE FROM ledger_tombstones WHERE at < ?", (now - TOMBSTONE_TTL,))
        return len(rows)

    def _sweep_if_due(self, now: float) -> None:
        """Before a read of ``used``: sweep if any claim has expired, so that
        expired claims never show as held. The probe is one index lookup."""
        if self._one(_DUE, (now,)):
            with self._write() as conn:
                self._sweep(conn, now)

    def providers_of_consumers(self, consumer_uuids: Iterable[str]) -> set[str]:
        uuids = sorted(set(consumer_uuids))
        if not uuids:
            return set()
        with self._read() as conn:
            return {
                c.provider_uuid
                for chunk in _chunks(uuids)
                for c in self._select_claims(
                    conn,
                    f"l.consumer_uuid IN ({','.join('?' * len(chunk))})",
                    list(chunk),
                    self.clock(),
                )
            }

    def providers_of_group(self, group: str) -> dict[str, int]:
        rows = self._select(
            "SELECT p.uuid, COUNT(DISTINCT l.consumer_uuid) FROM ledger l"
            f" JOIN providers p ON p.id = l.provider_id WHERE l.grp = ? AND {_LIVE}"
            " GROUP BY p.uuid",
            (group, self.clock()),
        )
        return {r[0]: r[1] for r in rows}

    # -- consumers ---------------------------------------------------------
    def get_consumer(self, uuid: str) -> Consumer | None:
        row = self._one(
            "SELECT uuid, project_id, user_id, consumer_type, generation FROM consumers"
            " WHERE uuid = ?",
            (uuid,),
        )
        if row is None:
            return None
        return Consumer(row[0], row[1], row[2], row[3] or "", row[4])

    def write_allocations(self, writes: list[ConsumerAllocations]) -> None:
        now = self.clock()

        def write(conn: sqlite3.Connection) -> None:
            self._sweep(conn, now)
            self._write_allocations(conn, writes, now)

        self._group(write)

    def _write_allocations(
        self, conn: sqlite3.Connection, writes: list[ConsumerAllocations], now: float
    ) -> set[int]:
        """Apply every write; returns the provider ids touched."""
        touched: set[int] = set()
        added: dict[int, set[str]] = {}
        for w in writes:
            row = conn.execute(
                "SELECT generation FROM consumers WHERE uuid = ?", (w.consumer_uuid,)
            ).fetchone()
            if w.expected_generation != "any":
                current = None if row is None else row[0]
                if current != w.expected_generation:
                    raise ConsumerGenerationConflict(
                        f"consumer {w.consumer_uuid} is at generation {current}, "
                        f"not {w.expected_generation}",
                        uuid=w.consumer_uuid,
                        generation=current,
                    )
            for puuid, gen in w.provider_generations.items():
                self._check_generation(conn, puuid, gen)
            # Give back what the consumer holds now.
            for lid, pid, amounts in conn.execute(
                "SELECT id, provider_id, amounts FROM ledger WHERE consumer_uuid = ?"
                " AND status = 'confirmed'",
                (w.consumer_uuid,),
            ).fetchall():
                conn.execute("DELETE FROM ledger WHERE id = ?", (lid,))
                self._add_used(conn, pid, json.loads(amounts))
                touched.add(pid)
            adds: list[tuple[int, str, dict[str, int]]] = []
            for puuid, amounts in w.allocations.items():
                if not amounts:
                    continue
                pid = self._pid(conn, puuid)
                invs = self._inventories(conn, pid)
                for rc, amount in amounts.items():
                    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
                        raise InvalidInput(
                            f"{rc}: allocation amounts are positive integers", field=rc
                        )
                    if rc not in invs:
                        raise InsufficientCapacity(
                            f"provider {puuid} has no inventory of {rc}",
                            uuid=puuid,
                            reasons=[f"{rc}: provider has no inventory of this class"],
                        )
                    problems = invs[rc].amount_problems(amount)
                    if problems:
                        raise InvalidInput("; ".join(problems), field=rc, uuid=puuid)
                adds.append((pid, puuid, amounts))
            for pid, puuid, amounts in adds:
                self._insert_ledger(
                    conn,
                    pid,
                    Claim(
                        uuid=new_uuid(),
                        provider_uuid=puuid,
                        consumer_uuid=w.consumer_uuid,
                        amounts=dict(amounts),
                        status=ClaimStatus.CONFIRMED,
                        project_id=w.project_id,
                        user_id=w.user_id,
                        created_at=now,
                    ),
                )
                self._add_used(conn, pid, amounts)
                touched.add(pid)
                added.setdefault(pid, set()).update(amounts)
            if adds:
                if row is None:
                    conn.execute(
                        "INSERT INTO consumers VALUES (?, ?, ?, ?, 1, ?, ?)",
                        (w.consumer_uuid, w.project_id, w.user_id, w.consumer_type, now, now),
                    )
                else:
                    conn.execute(
                        "UPDATE consumers SET generation = generation + 1, project_id = ?,"
                        " user_id = ?, consumer_type = COALESCE(?, consumer_type),"
                        " updated_at = ? WHERE uuid = ?",
                        (w.project_id, w.user_id, w.consumer_type, now, w.consumer_uuid),
                    )
            elif row is not None:
                conn.execute("DELETE FROM consumers WHERE uuid = ?", (w.consumer_uuid,))
        # Checked after the whole batch, so moving amounts between consumers of
        # one provider never fails spuriously. Only classes being allocated are
        # checked: a provider an operator shrank below its usage (Placement
        # allows that) can still have its other allocations rewritten.
        for pid in sorted(added):
            classes = sorted(added[pid])
            marks = ",".join("?" * len(classes))
            over = conn.execute(
                "SELECT rc, used, capacity FROM inventories WHERE provider_id = ?"
                f" AND rc IN ({marks}) AND used > capacity",
                [pid, *classes],
            ).fetchall()
            if over:
                puuid = conn.execute("SELECT uuid FROM providers WHERE id = ?", (pid,)).fetchone()
                reasons = [f"{rc}: used {u} would exceed capacity {c}" for rc, u, c in over]
                raise InsufficientCapacity(
                    f"does not fit on provider {puuid[0]}: " + "; ".join(reasons),
                    uuid=puuid[0],
                    reasons=reasons,
                )
        for pid in sorted(touched):
            self._bump(conn, pid, now)
        return touched

    @staticmethod
    def _inventories(conn: sqlite3.Connection, pid: int) -> dict[str, Inventory]:
        return {
            row[0]: Inventory(*row)
            for row in conn.execute(
                "SELECT rc, total, reserved, min_unit, max_unit, step_size, allocation_ratio"
                " FROM inventories WHERE provider_id = ?",
                (pid,),
            )
        }

    def reshape(self, spec: ReshapeSpec) -> None:
        now = self.clock()
        with self._write() as conn:
            self._sweep(conn, now)
            # Inventories first (usage checked after the allocations moved),
            # then allocations: the end state is checked whole.
            for puuid, (gen, invs) in spec.inventories.items():
                pid, _ = self._check_generation(conn, puuid, gen)
                self._replace_inventories(conn, pid, invs, check_usage=False)
                self._bump(conn, pid, now)
            writes = [
                ConsumerAllocations(
                    consumer_uuid=w.consumer_uuid,
                    project_id=w.project_id,
                    user_id=w.user_id,
                    allocations=w.allocations,
                    consumer_type=w.consumer_type,
                    expected_generation=w.expected_generation,
                    provider_generations={},
                )
                for w in spec.allocations
            ]
            self._write_allocations(conn, writes, now)
            for puuid in spec.inventories:
                pid = self._pid(conn, puuid)
                over = conn.execute(
                    "SELECT rc, used, capacity FROM inventories WHERE provider_id = ?"
                    " AND used > capacity",
                    (pid,),
                ).fetchall()
                orphan = conn.execute(
                    "SELECT 1 FROM ledger l, json_each(l.amounts) j WHERE l.provider_id = ?"
                    " AND NOT EXISTS (SELECT 1 FROM inventories i WHERE i.provider_id = ?"
                    " AND i.rc = j.key) LIMIT 1",
                    (pid, pid),
                ).fetchone()
                if over or orphan:
                    raise InUse(
                        f"reshape would leave provider {puuid} with allocations beyond its "
                        "inventory",
                        uuid=puuid,
                    )

    def usages_by_project(
        self, project_id: str, user_id: str | None = None, consumer_type: str | None = None
    ) -> dict[str, dict[str, int]]:
        # "all" sums every consumer type into one bucket (Placement 1.38).
        kind = "'all'" if consumer_type == "all" else "COALESCE(c.consumer_type, 'unknown')"
        sql = (
            f"SELECT {kind}, j.key, -SUM(j.value),"
            " COUNT(DISTINCT l.consumer_uuid) FROM ledger l JOIN json_each(l.amounts) j"
            " LEFT JOIN consumers c ON c.uuid = l.consumer_uuid"
            f" WHERE l.project_id = ? AND {_LIVE}"
        )
        params: list[Any] = [project_id, self.clock()]
        if user_id is not None:
            sql += " AND l.user_id = ?"
            params.append(user_id)
        if consumer_type not in (None, "all"):
            sql += " AND COALESCE(c.consumer_type, 'unknown') = ?"
            params.append(consumer_type)
        sql += " GROUP BY 1, 2"
        out: dict[str, dict[str, int]] = {}
        counts = self._consumer_counts(project_id, user_id)
        if consumer_type == "all":
            counts = {"all": sum(counts.values())}
        with self._read() as conn:
            for ctype, rc, amount, _ in conn.execute(sql, params):
                bucket = out.setdefault(ctype, {"consumer_count": counts.get(ctype, 0)})
                bucket[rc] = amount
        return out

    def _consumer_counts(self, project_id: str, user_id: str | None) -> dict[str, int]:
        sql = (
            "SELECT COALESCE(c.consumer_type, 'unknown'), COUNT(DISTINCT l.consumer_uuid)"
            " FROM ledger l LEFT JOIN consumers c ON c.uuid = l.consumer_uuid"
            f" WHERE l.project_id = ? AND {_LIVE}"
        )
        params: list[Any] = [project_id, self.clock()]
        if user_id is not None:
            sql += " AND l.user_id = ?"
            params.append(user_id)
        sql += " GROUP BY 1"
        return {r[0]: r[1] for r in self._select(sql, params)}

    # -- Placement compatibility ---------------------------------------------
    def update_provider_quietly(
        self,
        uuid: str,
        *,
        name: str | _Unset = UNSET,
        parent_uuid: str | _Unset | None = UNSET,
    ) -> Provider:
        now = self.clock()
        with self._write() as conn:
            pid = self._pid(conn, uuid)
            self._rename_reparent(conn, pid, name, parent_uuid)
            conn.execute("UPDATE providers SET updated_at = ? WHERE id = ?", (now, pid))
            return self._load_provider(conn, pid)

    def has_nested_providers(self) -> bool:
        row = self._one("SELECT 1 FROM providers WHERE parent_id IS NOT NULL LIMIT 1")
        return row is not None

    def has_sharing_providers(self) -> bool:
        row = self._one("SELECT 1 FROM provider_traits WHERE trait = ? LIMIT 1", (SHARING_TRAIT,))
        return row is not None

    def candidate_trees(self, query: TreeQuery) -> TreePage:
        needs = sorted(query.needs.items())
        if not needs:
            return TreePage([], [], None)
        self._sweep_if_due(self.clock())
        with self._read() as conn:
            sharing = [
                r[0]
                for r in conn.execute(
                    "SELECT provider_id FROM provider_traits WHERE trait = ?", (SHARING_TRAIT,)
                )
            ]
            # Per class: sharing providers with room for it, and the roots of
            # every tree that shares an aggregate with one of them.
            useful: set[int] = set()
            anchored: list[list[int]] = []
            for rc, amount in needs:
                ids: list[int] = []
                for chunk in _chunks(sharing):
                    marks = ",".join("?" * len(chunk))
                    ids += [
                        r[0]
                        for r in conn.execute(
                            "SELECT provider_id FROM inventories WHERE rc = ? AND free >= ?"
                            f" AND provider_id IN ({marks})",
                            [rc, amount, *chunk],
                        )
                    ]
                useful.update(ids)
                anchored.append(self._anchor_roots(conn, ids))
            # The class fewest providers have room for drives the scan.
            counts = [
                conn.execute(
                    "SELECT COUNT(*) FROM inventories WHERE rc = ? AND free >= ?", (rc, amount)
                ).fetchone()[0]
                + len(anchored[n])
                for n, (rc, amount) in enumerate(needs)
            ]
            d = counts.index(min(counts))
            params: list[Any] = [needs[d][0], needs[d][1], json.dumps(anchored[d])]
            sql = (
                "SELECT r.id, r.uuid FROM providers r WHERE r.id IN ("
                " SELECT p.root_id FROM inventories i JOIN providers p ON p.id = i.provider_id"
                " WHERE i.rc = ? AND i.free >= ?"
                " UNION SELECT value FROM json_each(?))"
            )
            for n, (rc, amount) in enumerate(needs):
                if n == d:
                    continue
                sql += (
                    " AND (EXISTS (SELECT 1 FROM providers c JOIN inventories j"
                    " ON j.provider_id = c.id WHERE c.root_id = r.id AND j.rc = ? AND j.free >= ?)"
                    " OR r.id IN (SELECT value FROM json_each(?)))"
                )
                params += [rc, amount, json.dumps(anchored[n])]
            if query.after is not None:
                sql += " AND r.uuid > ?"
                params.append(query.after)
            sql += " ORDER BY r.uuid LIMIT ?"
            params.append(int(query.max_roots) + 1)
            rows = conn.execute(sql, params).fetchall()
            more = len(rows) > query.max_roots
            rows = rows[: query.max_roots]
            root_ids = [r[0] for r in rows]
            members: list[int] = []
            for chunk in _chunks(root_ids):
                marks = ",".join("?" * len(chunk))
                members += [
                    r[0]
                    for r in conn.execute(
                        f"SELECT id FROM providers WHERE root_id IN ({marks}) ORDER BY id", chunk
                    )
                ]
            linked: set[int] = set()
            if useful and root_ids:
                # Sharing providers that share an aggregate with a loaded tree.
                linked = {
                    r[0]
                    for r in conn.execute(
                        "SELECT DISTINCT a.provider_id FROM provider_aggregates a"
                        " JOIN provider_aggregates b ON b.aggregate = a.aggregate"
                        " JOIN providers p ON p.id = b.provider_id"
                        " WHERE a.provider_id IN (SELECT value FROM json_each(?))"
                        " AND p.root_id IN (SELECT value FROM json_each(?))",
                        (json.dumps(sorted(useful)), json.dumps(root_ids)),
                    )
                }
            ids = members + sorted(linked - set(members))
            return TreePage(
                [r[1] for r in rows],
                self._usages(conn, ids),
                rows[-1][1] if more and rows else None,
            )

    @staticmethod
    def _anchor_roots(conn: sqlite3.Connection, sharing_ids: list[int]) -> list[int]:
        """Roots of the trees that share an aggregate with these providers."""
        if not sharing_ids:
            return []
        return [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT p.root_id FROM provider_aggregates a"
                " JOIN provider_aggregates b ON b.aggregate = a.aggregate"
                " JOIN providers p ON p.id = b.provider_id"
                " WHERE a.provider_id IN (SELECT value FROM json_each(?))",
                (json.dumps(sharing_ids),),
            )
        ]

    def remove_consumer_allocations(self, consumer_uuid: str) -> bool:
        now = self.clock()
        with self._write() as conn:
            self._sweep(conn, now)
            rows = conn.execute(
                "SELECT id, provider_id, amounts FROM ledger WHERE consumer_uuid = ?"
                " AND status = 'confirmed'",
                (consumer_uuid,),
            ).fetchall()
            for lid, pid, amounts in rows:
                conn.execute("DELETE FROM ledger WHERE id = ?", (lid,))
                self._add_used(conn, pid, json.loads(amounts))
            conn.execute("DELETE FROM consumers WHERE uuid = ?", (consumer_uuid,))
            return bool(rows)

    # -- bulk import (claimant/store/sqlite_bulk.py) --------------------------
    def import_providers(self, providers: Sequence[Provider]) -> int:
        return sqlite_bulk.import_providers(self, providers)

    def import_allocations(self, consumers: Sequence[ImportedConsumer]) -> int:
        return sqlite_bulk.import_allocations(self, consumers)

    # -- requests ----------------------------------------------------------
    def create_request(self, request: Request) -> Request:
        saved, row = self._request_row(request, self.clock())
        self._group(lambda conn: self._insert_request(conn, saved, row))
        return saved

    @staticmethod
    def _request_row(request: Request, now: float) -> tuple[Request, tuple[Any, ...]]:
        saved = request.evolve(created_at=request.created_at or now, updated_at=now)
        row = (
            saved.uuid,
            saved.status.value,
            _request_json(saved),
            saved.created_at,
            saved.updated_at,
        )
        return saved, row

    @staticmethod
    def _insert_request(conn: sqlite3.Connection, saved: Request, row: tuple[Any, ...]) -> None:
        try:
            conn.execute("INSERT INTO requests VALUES (?, ?, ?, ?, ?)", row)
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"request {saved.uuid} already exists", uuid=saved.uuid) from None

    def save_request(self, request: Request) -> Request:
        now = self.clock()
        saved = request.evolve(created_at=request.created_at or now, updated_at=now)
        row = (
            saved.uuid,
            saved.status.value,
            _request_json(saved),
            saved.created_at,
            saved.updated_at,
        )
        self._group(
            lambda conn: conn.execute(
                "INSERT INTO requests VALUES (?, ?, ?, ?, ?) ON CONFLICT(uuid) DO UPDATE SET"
                " status = excluded.status, body = excluded.body, updated_at = excluded.updated_at",
                row,
            )
        )
        return saved

    def summary(self, heartbeat_after: float | None) -> CloudSummary:
        return sqlite_summary.summary(self, heartbeat_after)

    def heartbeats_between(self, after: float, until: float) -> list[Provider]:
        uuids = sqlite_summary.heartbeats_between(self, after, until)
        return [self.get_provider(u) for u in uuids]

    def add_events(self, events: Sequence[Event]) -> None:
        sqlite_events.add_events(self, events)

    def list_events(self, subject: Subject, subject_id: str, *, limit: int = 100) -> list[Event]:
        return sqlite_events.list_events(self, subject, subject_id, limit)

    def get_request(self, uuid: str) -> Request:
        row = self._one("SELECT body FROM requests WHERE uuid = ?", (uuid,))
        if row is None:
            raise NotFound(f"no request {uuid}", kind="request", uuid=uuid)
        return request_from_dict(orjson.loads(row[0]))

    def list_requests(
        self, *, status: str | None = None, project_id: str | None = None, limit: int = 100
    ) -> list[Request]:
        sql = "SELECT body FROM requests"
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if project_id is not None:
            where.append("json_extract(body, '$.project_id') = ?")
            params.append(project_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC LIMIT ?"
        params.append(int(limit))
        return [request_from_dict(orjson.loads(r[0])) for r in self._select(sql, params)]


# REALs as text that round-trips (see _PROVIDER_JSON): a ratio is what a
# claim's capacity check multiplies by.
_RATIO = "printf('%!.17g', i.allocation_ratio)"

# Everything loaded about a provider, as one JSON array (see _provider_row):
# candidate reads are the hot path, and each extra statement, row or
# JSON parse costs more than SQLite building the JSON. REALs go through
# printf('%!.17g') as strings, which Python parses: SQLite 3.40 writes REALs
# into JSON with 15 digits, which does not round-trip a timestamp, and
# json(printf(...)) costs SQLite a second parse of each number.
_PROVIDER_JSON = (
    "json_array(p.id, p.uuid, p.name, p.type, par.uuid, root.uuid, p.enabled, p.generation,"
    " iif(p.heartbeat_at IS NULL, NULL, printf('%!.17g', p.heartbeat_at)),"
    " printf('%!.17g', p.created_at), printf('%!.17g', p.updated_at),"
    " json(p.attributes),"
    " (SELECT json_group_array(json_array(i.rc, i.total, i.reserved, i.min_unit,"
    f"  i.max_unit, i.step_size, {_RATIO}, i.capacity, i.used))"
    "  FROM inventories i WHERE i.provider_id = p.id),"
    " (SELECT json_group_array(t.trait) FROM provider_traits t WHERE t.provider_id = p.id),"
    " (SELECT json_group_array(a.aggregate) FROM provider_aggregates a"
    "  WHERE a.provider_id = p.id))"
)
_PROVIDER_FROM = (
    " FROM providers p LEFT JOIN providers par ON par.id = p.parent_id"
    " JOIN providers root ON root.id = p.root_id"
)


# Inventories are immutable values and rarely change: one object per distinct
# inventory saves building three per candidate row. Keyed by the row's fields
# (the ratio as its exact text). Bounded; a race between threads only builds
# an equal object twice.
_INVENTORIES: dict[tuple[Any, ...], Inventory] = {}
_INVENTORIES_MAX = 65536

# Rows the store just read are valid by construction: no __init__ checks.
_make_provider = maker(Provider)
_make_usage = maker(Usage)
_make_provider_usage = maker(ProviderUsage)


def _inventory(key: tuple[Any, ...]) -> Inventory:
    inv = _INVENTORIES.get(key)
    if inv is None:
        if len(_INVENTORIES) >= _INVENTORIES_MAX:
            _INVENTORIES.clear()
        rc, total, reserved, min_unit, max_unit, step, ratio = key
        inv = _INVENTORIES[key] = Inventory(
            rc, total, reserved, min_unit, max_unit, step, float(ratio)
        )
    return inv


def _provider_row(row: list[Any]) -> tuple[Provider, dict[str, Usage]]:
    """A provider and its usage from one ``_PROVIDER_JSON`` array."""
    inventories: dict[str, Inventory] = {}
    usages: dict[str, Usage] = {}
    for rc, total, reserved, min_unit, max_unit, step, ratio, capacity, used in row[12]:
        inventories[rc] = _inventory((rc, total, reserved, min_unit, max_unit, step, ratio))
        usages[rc] = _make_usage(rc, capacity, used)
    heartbeat = row[8]
    # Positional, in field order: the hot path builds thousands of these.
    provider = _make_provider(
        row[1],  # uuid
        row[2],  # name
        row[3],  # type
        row[4],  # parent_uuid
        row[5],  # root_uuid (the JOIN always finds one: a root is its own)
        row[11],  # attributes
        frozenset(row[13]),  # traits
        frozenset(row[14]),  # aggregates
        inventories,
        bool(row[6]),  # enabled
        row[7],  # generation
        None if heartbeat is None else float(heartbeat),
        float(row[9]),  # created_at
        float(row[10]),  # updated_at
        LOCAL_CELL,  # cell: SQLite is one cell
    )
    return provider, usages


def _attribute_condition(c: AttributeConstraint) -> tuple[str, list[Any]]:
    values = list(c.value) if c.op == "in" else [c.value]
    column = "txt" if isinstance(values[0], str) else "num"
    values = [v if isinstance(v, str) else float(v) for v in values]
    base = "SELECT 1 FROM provider_attributes x WHERE x.provider_id = p.id AND x.name = ?"
    if c.op == "!=":
        # A provider without the attribute is "not equal" too.
        return f"NOT EXISTS ({base} AND x.{column} = ?)", [c.name, values[0]]
    if c.op == "in":
        marks = ",".join("?" * len(values))
        return f"EXISTS ({base} AND x.{column} IN ({marks}))", [c.name, *values]
    op = "=" if c.op == "==" else c.op
    return f"EXISTS ({base} AND x.{column} {op} ?)", [c.name, values[0]]


def _request_json(request: Request) -> str:
    body = request_to_dict(request)
    # orjson writes a NaN as null and refuses integers beyond 64 bits: an
    # attribute constraint may hold either, so those go through json.
    if not any(g.attributes for g in request.groups):
        with suppress(orjson.JSONEncodeError):
            return orjson.dumps(body).decode()
    return json.dumps(body)


def _type_from_json(body: str) -> ResourceType:
    d = json.loads(body)
    return ResourceType(
        d["name"],
        tuple(
            AttributeSpec(a["name"], a["kind"], a.get("required", False), a.get("description", ""))
            for a in d["attributes"]
        ),
        d.get("description", ""),
        builtin=False,
    )


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    # SQLite caps bound parameters per statement; chunk IN lists.
    for i in range(0, len(items), size):
        yield items[i : i + size]


__all__ = ["SQLiteStore"]

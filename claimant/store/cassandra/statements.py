"""Running statements: prepared statements, plain reads and writes at
their consistency level, lightweight transactions, schema changes, and the
rows looked for in every cell."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, Final

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, NoHostAvailable
from cassandra.query import PreparedStatement

from claimant.model import CellUnavailable, NotFound, deadline
from claimant.store.cassandra import events as _events
from claimant.store.cassandra import queries as q
from claimant.store.cassandra.connection import CassandraBase
from claimant.store.cassandra.errors import (
    _DRIVER_ERRORS,
    _cut_timeout,
    _is_timeout,
    _pause,
    _translate,
)
from claimant.store.cassandra.state import RESOLVE_ATTEMPTS, _Entry, _entry_from_row

log = logging.getLogger(__name__)


def _applied(row: Any) -> bool:
    """The ``[applied]`` column of a lightweight transaction's result."""
    return bool(row[0]) if row is not None else True


# Plain statements a service of a cell runs in its own cell (LOCAL_QUORUM
# there) on a keyspace of several: reads whose staleness a compare-and-set or
# a SERIAL re-read catches (provider states, candidates, what the expiry sweep
# should look at), views, the catalog, events, and rows looked for in every
# cell (``_in_any_cell``, a consumer's home). Statements on what is homed
# elsewhere name its cell (``_run(cell=)``); every other plain statement
# stays QUORUM (docs/cells.md).
_LOCAL: Final = frozenset(
    {
        q.READ_STATE,
        q.READ_PARTITION,
        q.READ_CELL,
        q.READ_VERSION,
        q.CANDIDATES_RANGE,
        q.CANDIDATES_EXPIRED,
        q.CLASS_IN_USE,
        q.ALL_STATES,
        q.NAME_OWNER,
        q.CHILDREN,
        q.TREE,
        q.ANY_CHILD,
        q.ANY_SHARING,
        q.LOCATE,
        q.LIST_CLASSES,
        q.GET_CLASS,
        q.LIST_TRAITS,
        q.GET_TRAIT,
        q.LIST_TYPES,
        q.GET_TYPE,
        q.GET_REQUEST,
        q.ALL_REQUESTS,
        q.GET_META,
        q.FIND_CONSUMER,
        q.STALE_LOCKS,
        q.STALE_HOLDS,
        q.EXPIRED_ENTRIES,
        _events.INSERT,
        _events.SELECT,
    }
)


class Statements(CassandraBase):
    def _home(self, uuid: str, *, found: bool = False) -> str | None:
        """A provider's home cell, for a write or SERIAL read of its
        partition. Read where this service is, else in each other cell (a
        provider just made elsewhere may not be here yet); None: no home
        (or no such provider, which the read that follows finds out)."""
        if len(self.dcs) < 2:
            return None
        known = self._homes.get(uuid)
        if known is not None:
            return known
        state = self._states.get(uuid)
        if state is not None:
            return state.cell
        rows = self._run(q.READ_CELL, [uuid])
        if not rows or rows[0].version is None:
            for other in self.dcs:
                if other == self.dc:
                    continue
                try:
                    rows = self._run(q.READ_CELL, [uuid], cell=other)
                except CellUnavailable:
                    continue
                if rows and rows[0].version is not None:
                    break
        exists = bool(rows) and rows[0].version is not None
        if found and not exists:
            # Not a global SERIAL round on a partition whose home this
            # service cannot see: that would be a second Paxos group.
            raise NotFound(f"provider {uuid} not found", kind="provider", uuid=uuid)
        cell = rows[0].cell if exists else None
        if cell is not None:
            self._homes[uuid] = cell
        return cell

    def _lock(self, provider_uuid: str) -> threading.RLock:
        lock = self._locks.get(provider_uuid)
        if lock is None:
            with self._locks_guard:
                if len(self._locks) > 200_000:
                    self._locks.clear()
                lock = self._locks.setdefault(provider_uuid, threading.RLock())
        return lock

    def _prep(self, cql: str) -> PreparedStatement:
        stmt = self._prepared.get(cql)
        if stmt is None:
            session = self._use_keyspace()
            try:
                stmt = session.prepare(cql)
            except _DRIVER_ERRORS as exc:
                # Prepared through the default profile, on this service's own
                # cell only: no host there is that cell unreachable.
                raise self._fail(exc, self._route(self.dc), read=True) from exc
            self._prepared[cql] = stmt
        return stmt

    def _run(
        self,
        cql: str,
        params: Iterable[Any] = (),
        *,
        serial: bool = False,
        cell: str | None = None,
    ) -> list[Any]:
        """One statement; ``cell``: what it reads or writes is homed there
        (``_route``)."""
        stmt = self._prep(cql).bind(list(params))
        local = cell is None and not serial and cql in _LOCAL
        route = self._route(self.dc if local else cell)
        if serial:
            stmt.consistency_level = ConsistencyLevel.LOCAL_SERIAL if route else self.serial
            self.stats["serial_reads"] += 1
        profile = route or EXEC_PROFILE_DEFAULT
        read = cql.startswith("SELECT")
        # A plain read is cut at the request's deadline. A write, or a SERIAL
        # read that settles a transaction, keeps the store's timeout: cut, its
        # outcome would be unknown.
        cut = read and not serial
        # A read that timed out is repeated: a SERIAL read contends with the
        # Paxos rounds it must finish, and a replica just gone times out until
        # the coordinator marks it down; only a quorum really unreachable is
        # a 503 (Unavailable is not retried).
        attempts = (RESOLVE_ATTEMPTS if serial else 3) if read else 1
        for attempt in range(attempts):
            timeout = _cut_timeout(self.timeout) if cut else None
            try:
                session = self._use_keyspace()
                if timeout is None:
                    return list(session.execute(stmt, execution_profile=profile))
                return self._drain(
                    session.execute(stmt, timeout=timeout, execution_profile=profile)
                )
            except _DRIVER_ERRORS as exc:
                if cut:
                    deadline.check("querying the store")
                if attempt + 1 == attempts or not _is_timeout(exc):
                    raise self._fail(exc, route, read=read) from exc
                _pause(attempt)
        raise AssertionError("unreachable")

    def _drain(self, rs: Any) -> list[Any]:
        """Every page of a result, each page fetched within what is left of
        the request's deadline."""
        rows = list(rs.current_rows)
        while rs.has_more_pages:
            timeout = _cut_timeout(self.timeout)
            if timeout is not None:
                rs.response_future.timeout = timeout
            rs.fetch_next_page()
            rows.extend(rs.current_rows)
        return rows

    def _run_many(
        self, cql: str, param_lists: list[list[Any]], *, cell: str | None = None
    ) -> list[list[Any]]:
        """The same statement for many partitions, in parallel (execute_async);
        ``cell``: they are homed there (``_route``)."""
        session = self._use_keyspace()
        stmt = self._prep(cql)
        timeout = _cut_timeout(self.timeout) if cql.startswith("SELECT") else None
        route = self._route(cell if cell is not None else self.dc if cql in _LOCAL else None)
        kw: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        kw["execution_profile"] = route or EXEC_PROFILE_DEFAULT
        futures = [session.execute_async(stmt.bind(p), **kw) for p in param_lists]
        out = []
        for f in futures:
            try:
                out.append(list(f.result()))
            except _DRIVER_ERRORS as exc:
                if timeout is not None:
                    deadline.check("querying the store")
                raise self._fail(exc, route, read=cql.startswith("SELECT")) from exc
        return out

    def _lwt(self, cql: str, params: Iterable[Any], *, cell: str | None = None) -> tuple[bool, Any]:
        """A single-statement LWT on a lookup table; (applied, current row)."""
        stmt = self._prep(cql).bind(list(params))
        route = self._route(cell)
        try:
            rs = self._use_keyspace().execute(stmt, execution_profile=route or EXEC_PROFILE_DEFAULT)
        except _DRIVER_ERRORS as exc:
            raise self._fail(exc, route) from exc
        row = rs.one()
        return _applied(row), row

    def _ddl(self, cql: str) -> None:
        for attempt in range(5):
            try:
                self._connect().execute(cql, timeout=120)
                return
            except NoHostAvailable as exc:
                # Just after connecting to a busy cluster, a node's pool may
                # not be up yet ("marked down"; the driver reconnects). Every
                # statement here is idempotent (IF [NOT] EXISTS): ask again.
                if attempt == 4:
                    raise _translate(exc) from exc
                log.warning("schema change waiting for a node: %r", exc)
                time.sleep(2.0 * (attempt + 1))
            except _DRIVER_ERRORS as exc:
                raise _translate(exc) from exc

    def _read_many(self, stmts: list[tuple[str, list[Any]]]) -> list[list[Any]]:
        """Different reads at once (execute_async), results in order."""
        session = self._use_keyspace()
        local = self._route(self.dc)
        routes = [local if cql in _LOCAL else None for cql, _ in stmts]
        futures = [
            session.execute_async(
                self._prep(cql).bind(p), execution_profile=route or EXEC_PROFILE_DEFAULT
            )
            for (cql, p), route in zip(stmts, routes, strict=True)
        ]
        out = []
        for f, route in zip(futures, routes, strict=True):
            try:
                out.append(list(f.result()))
            except _DRIVER_ERRORS as exc:
                raise self._fail(exc, route, read=True) from exc
        return out

    def _in_any_cell(self, cql: str, params: list[Any]) -> list[Any]:
        """A plain read here; if it finds nothing, in each other cell that
        answers: a row written at LOCAL_QUORUM in another cell may not have
        reached this one yet."""
        rows = self._run(cql, params)  # in _LOCAL: this cell
        if rows or len(self.dcs) < 2:
            return rows
        for other in self.dcs:
            if other == self.dc:
                continue
            try:
                rows = self._run(cql, params, cell=other)
            except CellUnavailable:
                continue
            if rows:
                return rows
        return []

    def _entries_by(self, column: str, value: str, *, cell: str | None = None) -> list[_Entry]:
        rows = self._run(q.ENTRIES_BY[column], [value], cell=cell)
        return [e for e in map(_entry_from_row, rows) if e is not None]

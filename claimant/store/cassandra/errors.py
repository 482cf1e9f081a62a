"""What a driver error means (translation, unknown outcomes), the pauses
before a retry, and how a request's deadline cuts (or never cuts) a call."""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from cassandra import (
    DriverException,
    OperationTimedOut,
    ReadTimeout,
    RequestValidationException,
    Unauthorized,
    Unavailable,
    WriteFailure,
    WriteTimeout,
    WriteType,
)
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException
from cassandra.protocol import OverloadedErrorMessage

from claimant.model import CellUnavailable, ClaimantError, StoreUnavailable, deadline

log = logging.getLogger(__name__)


# Protocol v5 error code for "Paxos outcome unknown" (CASSANDRA-15350); the
# driver has no class for it and raises its raw ErrorMessage.
_CAS_WRITE_UNKNOWN = 0x1700


class OutcomeUnknown(StoreUnavailable):
    """A lightweight transaction timed out and re-reading could not tell
    whether it was applied."""


class _CellLostMidWrite(OutcomeUnknown, CellUnavailable):
    """The cell a write went to stopped answering before its outcome was
    known: unknown (a claim it may have made lives until its TTL), and a
    cell the scheduler can skip."""

    code = CellUnavailable.code


def _going_away(error: object) -> bool:
    """One host's error in a NoHostAvailable that says the host is gone or
    going: its pool or connection closed, the connection refused, or the
    node draining ("Server is shutting down", its only Overloaded reply we
    take for gone: a merely busy node is not unreachable)."""
    if isinstance(error, ConnectionException | OSError):
        return True
    return isinstance(error, OverloadedErrorMessage) and "shutting down" in str(error)


def _cell_error(exc: BaseException, cell: str, *, read: bool = False) -> ClaimantError:
    """A driver error on a statement routed to ``cell``: no coordinator or
    too few replicas there is that cell being unreachable (nothing was
    applied); anything else as ``_translate``.

    A read whose every host there is going away is that cell unreachable
    too. The driver marks a stopped DC's hosts down only once their pooled
    connections fail, so for a moment the cell's reads fail on those
    (seen: 2-4 of a live cell's lookups in other cells, store_unavailable,
    each time a DC stopped). A write failing so is not: it may have been
    applied (the unknown-outcome path decides)."""
    if isinstance(exc, NoHostAvailable) and read and exc.errors:
        gone = all(_going_away(e) for e in exc.errors.values())
    else:
        gone = isinstance(exc, NoHostAvailable) and not exc.errors
    if gone or isinstance(exc, Unavailable):
        log.warning("cell %s unreachable: %r", cell, exc)
        return CellUnavailable(f"cell {cell} is unreachable", cell=cell)
    return _translate(exc)


def _backoff(attempt: int) -> None:
    """Jittered, growing pause before retrying a lost transaction: Paxos rounds
    on one partition that keep colliding would otherwise collide again."""
    if attempt:
        time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))


def _pause(attempt: int) -> None:
    """Jittered exponential pause before repeating a timed-out request."""
    time.sleep(random.uniform(0.01, min(1.0, 0.05 * 2**attempt)))


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, ReadTimeout | WriteTimeout | OperationTimedOut)


def _translate(exc: BaseException) -> ClaimantError:
    if isinstance(exc, ClaimantError):
        return exc
    if isinstance(exc, Unauthorized):
        log.warning("Cassandra refused a query: %s", exc)
        return StoreUnavailable(
            "the Cassandra role lacks a permission this store needs (docs/cassandra.md,"
            " 'Connecting with credentials and TLS')",
            reason="unauthorized",
        )
    # The driver's text names tables, hosts and protocol codes: it goes to the
    # log only, so no caller (API, CLI, sim) has to scrub the message.
    if isinstance(exc, RequestValidationException):
        # Schema missing or a query the node refuses: not the caller's input.
        log.warning("Cassandra refused a query: %s", exc)
        return StoreUnavailable(
            "Cassandra refused a query (is the schema migrated? claimant store migrate);"
            " the service log has the node's answer",
            driver=type(exc).__name__,
        )
    log.warning("Cassandra unavailable: %s", exc)
    return StoreUnavailable(
        f"Cassandra is unavailable ({type(exc).__name__}); retry later",
        driver=type(exc).__name__,
    )


_DRIVER_ERRORS = (DriverException, NoHostAvailable, ConnectionException, OSError)


_P = ParamSpec("_P")


_R = TypeVar("_R")


def _uncut(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """A write of several statements: the request's deadline is checked once,
    before it starts, and never cuts it half-way (its reads would otherwise
    time out between two of its writes). The store's own timeout bounds it."""

    @functools.wraps(method)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        deadline.check(f"starting {method.__name__.replace('_', ' ')}")
        with deadline.shielded():
            return method(*args, **kwargs)

    return run


def _never_cut(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Giving back (a claim's release) runs even past the deadline: it is how
    a request that ran out of time leaves nothing behind."""

    @functools.wraps(method)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with deadline.shielded():
            return method(*args, **kwargs)

    return run


def _cut_timeout(default: float) -> float | None:
    """The timeout of a plain read under the request's deadline (None: no
    deadline, the session's own); raises DeadlineExceeded once it passed."""
    left = deadline.remaining()
    if left is None:
        return None
    deadline.check("querying the store")
    return max(min(default, left), 0.001)


def _is_unknown_outcome(exc: BaseException) -> bool:
    """A CAS write whose fate the coordinator could not learn."""
    if isinstance(exc, NoHostAvailable) and not exc.errors:
        return False  # no host was even tried (a whole cell down): never sent
    if isinstance(exc, WriteTimeout | WriteFailure):
        return exc.write_type in (WriteType.CAS, "CAS")
    if getattr(exc, "code", None) == _CAS_WRITE_UNKNOWN:
        return True
    # The client gave up waiting, or the connection died mid-request: the
    # request may have reached Paxos.
    return isinstance(exc, OperationTimedOut | ConnectionException | NoHostAvailable)

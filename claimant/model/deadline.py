"""Cooperative deadlines for work whose cost grows with the data.

A request handler opens a deadline; every loop that can grow with the data
(candidate search, filtering, weighing, listing) calls :func:`check`, which
raises :class:`DeadlineExceeded` once the time is up or the deadline was
cancelled (the client went away, the server is shutting down). With no
deadline open, ``check`` is a no-op, so library callers (the simulator,
tests) are never cut.

The deadline travels in a ``ContextVar``: it follows the request into the
thread pool (Starlette copies the context) and never leaks between requests.
Work that gives something back (releasing claims, recording how a request
ended) runs :func:`shielded`, so a deadline that already passed cannot stop it
half-way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from claimant.model.errors import DeadlineExceeded

#: ``DeadlineExceeded.details["reason"]`` values.
REASON_DEADLINE = "deadline"
REASON_CANCELLED = "cancelled"


class Deadline:
    """A point in monotonic time after which work must stop."""

    __slots__ = ("cancelled", "expires_at", "parent", "seconds", "tripped", "what")

    def __init__(self, seconds: float, what: str = "", parent: Deadline | None = None) -> None:
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds
        self.what = what
        self.cancelled: str | None = None
        # The first DeadlineExceeded a check raised (None: work was never cut).
        self.tripped: DeadlineExceeded | None = None
        # A cancel of the enclosing deadline (client gone) must stop us too.
        self.parent = parent

    def remaining(self) -> float:
        """Seconds left (0 once cancelled); never more than the enclosing deadline's."""
        if self.cancelled is not None:
            return 0.0
        left = self.expires_at - time.monotonic()
        if self.parent is not None:
            left = min(left, self.parent.remaining())
        return left

    def expired(self) -> bool:
        if self.parent is not None and self.parent.expired():
            return True
        return self.cancelled is not None or time.monotonic() >= self.expires_at

    def cancel(self, reason: str = "client disconnected") -> None:
        """Stop the work at its next check (e.g. the client disconnected)."""
        if self.cancelled is None:
            self.cancelled = reason

    def _trip(self, exc: DeadlineExceeded) -> DeadlineExceeded:
        d: Deadline | None = self
        while d is not None:
            if d.tripped is None:
                d.tripped = exc
            d = d.parent
        return exc

    def _doing(self, doing: str) -> str:
        if doing and self.what:
            return f"{doing} ({self.what})"
        return doing or self.what or "working"

    def check(self, doing: str = "") -> None:
        if self.expired():
            raise self.exceeded(doing)

    def exceeded(self, doing: str = "") -> DeadlineExceeded:
        """The error a check past this deadline raises (recorded as the cut),
        for a caller that knows the time is up before a check would."""
        if self.parent is not None and self.parent.expired():
            return self.parent.exceeded(doing)
        if self.cancelled is not None:
            return self._trip(
                DeadlineExceeded(
                    f"stopped while {self._doing(doing)}: {self.cancelled}",
                    reason=REASON_CANCELLED,
                    doing=doing or self.what,
                )
            )
        return self._trip(
            DeadlineExceeded(
                f"deadline of {self.seconds:g}s exceeded while {self._doing(doing)}",
                reason=REASON_DEADLINE,
                deadline_seconds=self.seconds,
                doing=doing or self.what,
            )
        )


_current: ContextVar[Deadline | None] = ContextVar("claimant_deadline", default=None)


def current() -> Deadline | None:
    return _current.get()


def check(doing: str = "") -> None:
    """Raise DeadlineExceeded if the current deadline has passed; else nothing."""
    d = _current.get()
    if d is not None:
        d.check(doing)


def remaining() -> float | None:
    """Seconds left on the current deadline, or None when there is none."""
    d = _current.get()
    return None if d is None else d.remaining()


@contextmanager
def deadline(seconds: float | None, what: str = "") -> Iterator[Deadline | None]:
    """Run the block under a deadline; ``None`` or ``<= 0`` means no deadline.

    A nested deadline never extends an outer one: the earlier of the two wins.
    """
    if seconds is None or seconds <= 0:
        yield _current.get()
        return
    outer = _current.get()
    d = Deadline(seconds, what, outer)
    token = _current.set(d)
    try:
        yield d
    finally:
        _current.reset(token)


@contextmanager
def entered(d: Deadline | None) -> Iterator[Deadline | None]:
    """Run the block under an existing deadline (one made by whoever may cancel it)."""
    token = _current.set(d)
    try:
        yield d
    finally:
        _current.reset(token)


@contextmanager
def shielded() -> Iterator[None]:
    """Run the block under no deadline: work that must finish once started
    (giving claims back, recording how a request ended) even though the
    deadline that stopped the rest has passed. It is bounded by the store's
    own timeouts instead."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)

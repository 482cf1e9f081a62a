"""Cooperative deadlines for work whose cost grows with the data.

A request handler opens a deadline; every loop that can grow with the data
(candidate search, filtering, weighing, listing) calls :func:`check`, which
raises :class:`DeadlineExceeded` once the time is up or the deadline was
cancelled (the client went away). With no deadline open, ``check`` is a
no-op, so library callers (the simulator, tests) are never cut.

The deadline travels in a ``ContextVar``: it follows the request into the
thread pool (Starlette copies the context) and never leaks between requests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from claimant.model.errors import DeadlineExceeded


class Deadline:
    """A point in monotonic time after which work must stop."""

    __slots__ = ("cancelled", "expires_at", "parent", "seconds", "what")

    def __init__(self, seconds: float, what: str = "", parent: Deadline | None = None) -> None:
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds
        self.what = what
        self.cancelled: str | None = None
        # A cancel of the enclosing deadline (client gone) must stop us too.
        self.parent = parent

    def remaining(self) -> float:
        return self.expires_at - time.monotonic()

    def expired(self) -> bool:
        if self.parent is not None and self.parent.expired():
            return True
        return self.cancelled is not None or time.monotonic() >= self.expires_at

    def cancel(self, reason: str = "client disconnected") -> None:
        """Stop the work at its next check (e.g. the client disconnected)."""
        self.cancelled = reason

    def check(self, doing: str = "") -> None:
        if self.parent is not None:
            self.parent.check(doing)
        if self.cancelled is not None:
            raise DeadlineExceeded(
                f"stopped {doing or self.what or 'work'}: {self.cancelled}",
                reason="cancelled",
                doing=doing or self.what,
            )
        if time.monotonic() >= self.expires_at:
            raise DeadlineExceeded(
                f"deadline of {self.seconds:g}s exceeded while {doing or self.what or 'working'}",
                reason="deadline",
                deadline_seconds=self.seconds,
                doing=doing or self.what,
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

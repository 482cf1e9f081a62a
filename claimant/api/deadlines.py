"""Every request runs under a deadline, and stops when its client leaves.

``DeadlineMiddleware`` wraps both APIs. For each HTTP request it

- names the request: the caller's ``X-Request-Id`` (or OpenStack's
  ``X-OpenStack-Request-Id`` / ``openstack-request-id``) when it is a short
  token, else ``req-<uuid4>``; the id goes back in ``X-Request-Id`` and
  ``X-OpenStack-Request-Id`` and is in every log line about the request
  (``claimant.logs.REQUEST_ID``);
- opens a :class:`~claimant.model.deadline.Deadline`: ``read_timeout`` for
  GET, HEAD and OPTIONS, ``write_timeout`` (the placement budget) for the rest.
  Handlers, the scheduler and the store check it; past it they raise
  ``DeadlineExceeded``, which both APIs answer 503 ``deadline_exceeded``;
- watches for the client's disconnection once the request body is read and
  cancels the deadline then, so the work stops at its next check;
- counts each request a deadline cut in ``claimant_requests_cut`` (reason
  ``deadline``, ``disconnect`` or ``shutdown``) and logs it with its id.

``Inflight`` holds the deadlines of requests still running, so a shutting-down
server can cancel them all (``claimant.api.server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
import uuid
import weakref
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claimant import logs
from claimant.api.metrics import Metrics, route_label
from claimant.model import deadline
from claimant.model.deadline import REASON_DEADLINE, Deadline

log = logging.getLogger("claimant.api")

DEFAULT_READ_TIMEOUT = 5.0
DEFAULT_WRITE_TIMEOUT = 30.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

DISCONNECTED = "client disconnected"
SHUTTING_DOWN = "server shutting down"

REQUEST_ID_HEADERS = (b"x-request-id", b"x-openstack-request-id", b"openstack-request-id")
# What a caller may name its request: ids end up in logs and headers.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def request_id_of(scope: Scope) -> str:
    """The request's id as ``DeadlineMiddleware`` set it (a new one otherwise)."""
    state = scope.get("state") or {}
    rid = state.get("request_id")
    return rid if isinstance(rid, str) else "req-" + str(uuid.uuid4())


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name in REQUEST_ID_HEADERS:
            text: str = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
    return "req-" + str(uuid.uuid4())


def cut_reason(d: Deadline) -> str:
    """``deadline``, ``disconnect`` or ``shutdown``: why ``d`` stopped its work."""
    tripped = d.tripped
    if tripped is not None and tripped.details.get("reason") == REASON_DEADLINE:
        return "deadline"
    return "shutdown" if d.cancelled == SHUTTING_DOWN else "disconnect"


class Inflight:
    """Deadlines of the requests an app is running.

    ``cancel_all`` stops them at their next check (a server shutting down);
    ``wait_idle`` waits, bounded, until every one has ended."""

    def __init__(self) -> None:
        _APPS.add(self)
        self._lock = threading.Lock()
        self._running: set[Deadline] = set()
        self._idle = threading.Event()
        self._idle.set()
        self.closing: str | None = None

    def open(self) -> None:
        """Take requests again (an app's lifespan may start more than once)."""
        with self._lock:
            self.closing = None

    def add(self, d: Deadline) -> None:
        with self._lock:
            self._running.add(d)
            self._idle.clear()
            if self.closing is not None:
                d.cancel(self.closing)

    def discard(self, d: Deadline) -> None:
        with self._lock:
            self._running.discard(d)
            if not self._running:
                self._idle.set()

    def __len__(self) -> int:
        return len(self._running)

    def cancel_all(self, reason: str = SHUTTING_DOWN) -> int:
        with self._lock:
            self.closing = reason
            running = list(self._running)
        for d in running:
            d.cancel(reason)
        return len(running)

    async def wait_idle(self, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while not self._idle.is_set():
            if time.monotonic() >= end:
                return False
            await asyncio.sleep(0.05)
        return True


_APPS: weakref.WeakSet[Inflight] = weakref.WeakSet()


def cancel_everything(reason: str = SHUTTING_DOWN) -> int:
    """Cancel the requests of every app in this process; how many there were."""
    return sum(inflight.cancel_all(reason) for inflight in list(_APPS))


class _Receiver:
    """The app's ``receive``. Once the request body has been read, a task
    owns the server's ``receive`` and waits for ``http.disconnect``: that is
    when the client went away, and the deadline is cancelled. Before that the
    app reads the body itself, so nothing is read ahead of the body limit and
    the auth gate."""

    def __init__(self, receive: Receive, d: Deadline) -> None:
        self._receive = receive
        self.d = d
        self._pending: deque[Message] = deque()
        self._disconnect: Message | None = None
        self._changed = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._watcher is None and self._disconnect is None:
            self._watcher = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._disconnect = message
                self.d.cancel(DISCONNECTED)
                self._changed.set()
                return
            # A body the app has not asked for yet (a GET's empty one): keep it.
            self._pending.append(message)
            self._changed.set()

    async def __call__(self) -> Message:
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._disconnect is not None:
                return self._disconnect
            if self._watcher is None:
                message = await self._receive()
                if message["type"] == "http.disconnect":
                    self._disconnect = message
                    self.d.cancel(DISCONNECTED)
                elif message["type"] == "http.request" and not message.get("more_body"):
                    self.start()
                return message
            self._changed.clear()
            await self._changed.wait()


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding":
            return True
        if name == b"content-length" and value.strip() not in (b"", b"0"):
            return True
    return False


class DeadlineMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        inflight: Inflight,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
        unmatched: str = "unmatched",
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.inflight = inflight
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.unmatched = unmatched

    def budget(self, method: str) -> float:
        return self.read_timeout if method in SAFE_METHODS else self.write_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        method = scope.get("method", "")
        d = Deadline(self.budget(method), f"{method} {scope.get('path', '')}")
        receiver = _Receiver(receive, d)
        if method in SAFE_METHODS and not _has_body(scope):
            # Nothing to read first: watch from the start. (Anything else is
            # watched once the app has read the body, never ahead of it.)
            receiver.start()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                value = rid.encode("latin-1")
                headers.append((b"x-request-id", value))
                if not any(k.lower() == b"x-openstack-request-id" for k, _ in headers):
                    headers.append((b"x-openstack-request-id", value))
                message = {**message, "headers": headers}
            await send(message)

        self.inflight.add(d)
        try:
            with deadline.entered(d), logs.request_id(rid):
                await self.app(scope, receiver, send_with_id)
        except asyncio.CancelledError:
            # The server gave up waiting (graceful timeout): the handler's
            # thread goes on until its next check, so make that check fail.
            d.cancel(SHUTTING_DOWN)
            raise
        finally:
            await receiver.stop()
            self.inflight.discard(d)
            if d.tripped is not None:
                self._cut(scope, rid, d)

    def _cut(self, scope: Scope, rid: str, d: Deadline) -> None:
        reason = cut_reason(d)
        method = scope.get("method", "")
        route = route_label(scope, self.unmatched)
        self.metrics.requests_cut.labels(reason, method, route).inc()
        message = d.tripped.message if d.tripped is not None else ""
        log.warning(
            "request %s %s %s cut (%s): %s", rid, method, scope.get("path"), reason, message
        )

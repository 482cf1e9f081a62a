"""uvicorn's HTTP protocol with a header timeout, and a bounded shutdown.

uvicorn times out idle keep-alive connections only after a first response: a
client that connects and never finishes its request line and headers holds a
connection (and a file descriptor) for ever. Here every request must have
sent its headers within ``CLAIMANT_HEADER_TIMEOUT`` seconds of the connection
(or of its first byte on a kept-alive connection), or the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

ENV_HEADER_TIMEOUT = "CLAIMANT_HEADER_TIMEOUT"
DEFAULT_HEADER_TIMEOUT = 10.0


def header_timeout() -> float:
    return float(os.environ.get(ENV_HEADER_TIMEOUT, DEFAULT_HEADER_TIMEOUT))


class HeaderTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout()
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._header_timer is None and self._header_timeout > 0:
            self._header_timer = self.loop.call_later(self._header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()


PROTOCOL = f"{__name__}:HeaderTimeoutProtocol"


ENV_GRACEFUL_TIMEOUT = "CLAIMANT_GRACEFUL_TIMEOUT"
DEFAULT_GRACEFUL_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Shutdown:
    """How a server spends its graceful timeout after SIGTERM (or SIGINT):

    - until ``drain``: requests in flight finish; no new connection is taken;
    - at ``drain``: every running request's deadline is cancelled, so each
      stops at its next check, gives back what it took and answers 503;
    - at ``uvicorn_timeout``: uvicorn cancels what still runs;
    - for ``final_wait``: the app's shutdown waits for handler threads, then
      closes the store, and the process exits, within ``graceful``.

    uvicorn alone waits for in-flight requests for ever."""

    graceful: float = DEFAULT_GRACEFUL_TIMEOUT

    @property
    def _rollback(self) -> float:
        return min(3.0, self.graceful / 3)

    @property
    def drain(self) -> float:
        return self.graceful - self._rollback

    @property
    def uvicorn_timeout(self) -> float:
        return self.graceful - self._rollback / 3

    @property
    def final_wait(self) -> float:
        return self._rollback / 6

    @classmethod
    def from_env(cls) -> Shutdown:
        return cls(float(os.environ.get(ENV_GRACEFUL_TIMEOUT, DEFAULT_GRACEFUL_TIMEOUT)))


@contextlib.contextmanager
def drain_on_signal(shutdown: Shutdown, on_drain: Callable[[], object]) -> Iterator[None]:
    """Call ``on_drain`` ``shutdown.drain`` seconds after the server is told
    to stop. Used in an app's lifespan, which runs under ``uvicorn.Server``'s
    signal handlers: ours calls theirs first. Nothing happens outside
    uvicorn's main thread (TestClient), or when no handler of theirs is set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    started: list[asyncio.TimerHandle] = []

    def arm() -> None:
        if not started:
            started.append(loop.call_later(max(shutdown.drain, 0.0), on_drain))

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(sig: int, frame: FrameType | None) -> None:
        prev = previous[signal.Signals(sig)]
        if callable(prev):
            prev(sig, frame)
        loop.call_soon_threadsafe(arm)

    chained = [sig for sig, prev in previous.items() if callable(prev)]
    for sig in chained:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig in chained:
            signal.signal(sig, previous[sig])
        for timer in started:
            timer.cancel()

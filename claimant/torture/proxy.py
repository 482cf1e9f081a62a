"""A small HTTP proxy between the conductor and one agent that can lose or
delay replies *after* the agent did the work.

The agent advertises the proxy's address to the conductor, so every build
and destroy goes through it. Each request is forwarded whole to the agent
and its whole reply read back; only then does the mode decide: ``pass``
hands the reply on, ``drop`` closes the client's connection without a word
(the agent built, the conductor never hears it), ``delay`` holds the reply
for ``delay`` seconds. One request per connection (``Connection: close`` both
ways) keeps the proxy a few lines long.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

PASS, DROP, DELAY = "pass", "drop", "delay"
_MAX_HEAD = 64 * 1024


def _with_close(head: bytes) -> bytes:
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    kept = [line for line in lines if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n"


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


class ReplyProxy:
    """Listens on ``127.0.0.1:port``, forwards to ``127.0.0.1:upstream_port``."""

    def __init__(self, port: int, upstream_port: int) -> None:
        self.port = port
        self.upstream_port = upstream_port
        self.mode = PASS
        self.delay = 0.0
        self.dropped = 0
        self.delayed = 0
        self._lock = threading.Lock()

    def set_mode(self, mode: str, delay: float = 0.0) -> None:
        with self._lock:
            self.mode, self.delay = mode, delay

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > _MAX_HEAD:
                return
            body = await reader.readexactly(_content_length(head))
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            try:
                up_writer.write(_with_close(head) + body)
                await up_writer.drain()
                reply = await up_reader.read()  # the agent closes after its reply
            finally:
                up_writer.close()
            with self._lock:
                mode, delay = self.mode, self.delay
            if mode == DROP:
                self.dropped += 1
                return
            if mode == DELAY:
                self.delayed += 1
                await asyncio.sleep(delay)
            rhead, sep, rbody = reply.partition(b"\r\n\r\n")
            writer.write(_with_close(rhead + sep) + rbody if sep else reply)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the client sees a closed connection: an unknown outcome, as with a real fault
        finally:
            # No wait_closed(): when the peer was SIGKILLed it can wait forever,
            # and the stream's task is then collected mid-await (noise on stderr).
            writer.close()


class ProxyThread:
    """Runs every proxy of a run on one event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._servers: list[asyncio.base_events.Server] = []
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="proxy")
        self._thread.start()

    def add(self, proxy: ReplyProxy) -> ReplyProxy:
        async def serve() -> asyncio.base_events.Server:
            return await asyncio.start_server(proxy.handle, "127.0.0.1", proxy.port)

        server = asyncio.run_coroutine_threadsafe(serve(), self.loop).result(timeout=10)
        self._servers.append(server)
        return proxy

    def close(self) -> None:
        async def shut() -> None:
            for s in self._servers:
                s.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shut(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

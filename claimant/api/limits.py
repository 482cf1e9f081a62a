"""Input bounds applied before anything else: the size of a request body.

A body is refused with 413 from its ``Content-Length`` before a byte of it is
read, and counted as it streams (chunked bodies have no length), so no
request can make the server buffer more than ``max_body`` bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claimant.model.errors import PAYLOAD_TOO_LARGE

DEFAULT_MAX_BODY = 1024 * 1024


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


def declared_length(scope: Scope) -> int | None:
    """The Content-Length header, or None when absent or not a number (the
    HTTP server refuses a malformed one before the app sees it)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def limited_receive(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises ``BodyTooLarge`` once more than ``limit`` bytes arrived."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return wrapped


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, joined once (never ``+=``), at most ``limit`` bytes."""
    chunks: list[bytes] = []
    receive = limited_receive(receive, limit)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def native_413(limit: int) -> tuple[bytes, str]:
    body = {
        "error": {
            "code": PAYLOAD_TOO_LARGE,
            "message": f"the request body is larger than {limit} bytes",
            "details": {"max_body": limit},
        }
    }
    return json.dumps(body).encode(), "application/json"


Render413 = Callable[[int], tuple[bytes, str]]


async def send_413(send: Send, limit: int, render: Render413) -> None:
    payload, ctype = render(limit)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", ctype.encode()),
                (b"content-length", str(len(payload)).encode()),
                # The unread body is still on the wire: close rather than
                # let the server read and discard it for keep-alive.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware:
    """413 from Content-Length before reading; on the stream, the app's
    body read fails with an ``HTTPException(413)`` its error handlers render."""

    def __init__(self, app: ASGIApp, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None and length > self.max_body:
            await send_413(send, self.max_body, native_413)
            return
        inner = limited_receive(receive, self.max_body)

        async def checked() -> Message:
            try:
                return await inner()
            except BodyTooLarge as exc:
                # FastAPI turns any other error raised while reading into a 400.
                raise HTTPException(413, str(exc), headers={"connection": "close"}) from None

        await self.app(scope, checked, send)

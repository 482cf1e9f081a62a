"""Issue 9: input bounds before anything else, on both APIs. A body larger
than the limit is refused from its Content-Length without reading it, or as it
streams; a caller without a token (or refused by the policy) is answered
before its body is read or parsed."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI

from claimant.api import AuthConfig, create_app
from claimant.store import Store

LIMIT = 64 * 1024
DEEP = b"[" * 100_000 + b"]" * 100_000


@dataclass
class Result:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks_read: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    app: Any,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: list[bytes],
    *,
    content_length: bool = True,
) -> Result:
    """One request through the ASGI app, counting the body chunks it reads."""
    out = Result()
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if content_length:
        raw.append((b"content-length", str(sum(map(len, chunks))).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), *raw],
        "server": ("127.0.0.1", 8778),
        "client": ("127.0.0.1", 5000),
    }
    pending = list(chunks)

    async def main() -> None:
        responded = asyncio.Event()

        async def receive() -> dict[str, Any]:
            if not pending:
                # As a server does: a client that stays connected is only
                # "disconnected" once the response is sent (ASGI spec).
                await responded.wait()
                return {"type": "http.disconnect"}
            out.chunks_read += 1
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out.status = message["status"]
                out.headers = {k.decode(): v.decode() for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                out.body += message.get("body", b"")
                if not message.get("more_body"):
                    responded.set()

        await app(scope, receive, send)

    asyncio.run(main())
    return out


@pytest.fixture
def limited(store: Store) -> FastAPI:
    return create_app(store, auth=AuthConfig.noauth2(), max_body=LIMIT)


JSON = {"content-type": "application/json", "openstack-api-version": "placement latest"}
ADMIN = {"x-auth-token": "admin", **JSON}
WRITES = [
    ("native", "POST", "/v1/providers"),
    ("native", "POST", "/v1/requests"),
    ("placement", "POST", "/resource_providers"),
    ("placement", "POST", "/allocations"),
]


@pytest.mark.parametrize(("api", "method", "path"), WRITES)
def test_declared_length_over_the_limit_is_413_unread(
    limited: FastAPI, api: str, method: str, path: str
) -> None:
    chunks = [b"x" * 65536] * 4
    r = call(limited, method, path, ADMIN, chunks)
    assert r.status == 413, r.body
    assert r.chunks_read == 0
    assert r.headers.get("connection") == "close"
    body = r.json()
    if api == "native":
        assert body["error"]["code"] == "payload_too_large"
    else:
        assert body["errors"][0]["status"] == 413


@pytest.mark.parametrize(("api", "method", "path"), WRITES)
def test_streamed_body_over_the_limit_is_413(
    limited: FastAPI, api: str, method: str, path: str
) -> None:
    chunks = [b"[" * 16384] * 16  # no Content-Length: counted as it arrives
    r = call(limited, method, path, ADMIN, chunks, content_length=False)
    assert r.status == 413, r.body
    assert r.chunks_read <= LIMIT // 16384 + 1


@pytest.mark.parametrize(("api", "method", "path"), WRITES)
def test_no_token_is_401_before_the_body_is_read(
    limited: FastAPI, api: str, method: str, path: str
) -> None:
    r = call(limited, method, path, JSON, [DEEP[:30000], DEEP[-30000:]])
    assert r.status == 401, r.body
    assert r.chunks_read == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/resource_classes"), ("POST", "/resource_classes")],
)
def test_refused_by_policy_before_the_body_is_read(
    limited: FastAPI, method: str, path: str
) -> None:
    headers = {"x-auth-token": "svc", "x-roles": "service", **JSON}
    r = call(limited, method, path, headers, [b'{"name": "CUSTOM_X"}'])
    assert r.status == 403, r.body
    assert r.chunks_read == 0


def test_within_the_limit_is_served(limited: FastAPI) -> None:
    body = json.dumps({"name": "cn1"}).encode()
    r = call(limited, "POST", "/v1/providers", ADMIN, [body])
    assert r.status == 201, r.body
    body = json.dumps({"name": "cn2"}).encode()
    r = call(limited, "POST", "/resource_providers", ADMIN, [body])
    assert r.status == 200, r.body

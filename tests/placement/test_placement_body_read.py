"""When the Placement framework reads a request body (issue 10).

The body is read in the event loop once the request is admitted (version,
route, authentication, policy), before the handler's worker thread starts:
reading it from the worker thread through the event loop was a second thread
hop per PUT /allocations. A request that is refused never has its body read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest

from claimant.api.placement import create_placement_app
from claimant.store import Store, open_store

RP = "0b5e8f0a-7c1f-4c8a-9e79-1b2d3c4d5e6f"
CONSUMER = "9f0c3bd4-6a57-4f0e-8c1d-2b5f8e7a6c3d"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = open_store("sqlite:///" + str(tmp_path / "claimant.db").lstrip("/"))
    st.migrate()
    try:
        yield st
    finally:
        st.close()


def call(app: Any, method: str, path: str, body: dict[str, Any], token: str | None) -> Any:
    """One request straight through the ASGI app; returns (status, receive calls)."""
    raw = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        (b"openstack-api-version", b"placement 1.39"),
    ]
    if token is not None:
        headers.append((b"x-auth-token", token.encode()))
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "scheme": "http",
        "server": ("127.0.0.1", 8778),
    }
    received: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        received.append(1)
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    return sent[0]["status"], len(received)


def test_the_body_is_read_before_the_worker_thread(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_placement_app(store)
    status, _ = call(app, "POST", "/resource_providers", {"name": "cn", "uuid": RP}, "admin")
    assert status == 200
    status, _ = call(
        app,
        "PUT",
        f"/resource_providers/{RP}/inventories",
        {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}},
        "admin",
    )
    assert status == 200

    def no_hop(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the handler reached back into the event loop for the body")

    monkeypatch.setattr(anyio.from_thread, "run", no_hop)
    body = {
        "allocations": {RP: {"resources": {"VCPU": 2}}},
        "project_id": "p",
        "user_id": "u",
        "consumer_generation": None,
        "consumer_type": "INSTANCE",
    }
    status, reads = call(app, "PUT", f"/allocations/{CONSUMER}", body, "admin")
    assert status == 204
    assert reads == 1
    assert store.get_usage(RP).usages["VCPU"].used == 2


@pytest.mark.parametrize(
    ("name", "token", "status"),
    [("no token", None, 401), ("a reader may not write", "reader", 403)],
)
def test_a_refused_request_never_has_its_body_read(
    store: Store, name: str, token: str | None, status: int
) -> None:
    from claimant.api.placement.framework import Caller

    def auth(headers: Any) -> Caller | None:
        if headers.get("x-auth-token") is None:
            return None
        return Caller(roles=frozenset({"reader"}), project_id="p", user_id="u")

    app = create_placement_app(store, auth)
    body = {"allocations": {RP: {"resources": {"VCPU": 2}}}, "project_id": "p", "user_id": "u"}
    got, reads = call(app, "PUT", f"/allocations/{CONSUMER}", body, token)
    assert got == status, name
    assert reads == 0, name

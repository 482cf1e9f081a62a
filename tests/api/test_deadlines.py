"""Issue 16: every request has a deadline; past it (or once its client left)
the work stops, the caller gets 503 ``deadline_exceeded``, the request's
claims are given back and its record says why. On SQLite and Cassandra."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from claimant.api import AuthConfig, create_app
from claimant.model import Inventory, Provider, RequestStatus, new_uuid
from claimant.scheduler import SchedulerConfig
from claimant.store import Store, open_store
from tests.api.slow_plugin import NAME as SLOW
from tests.api.slow_plugin import SlowFilter

ADMIN = {"x-auth-token": "admin"}
PROVIDERS = 20


# tests/conftest.py's any_store (each backend), with a small cloud in it.
@pytest.fixture
def any_store(any_store: Store) -> Store:
    st = any_store
    for i in range(PROVIDERS):
        st.create_provider(
            Provider(
                uuid=new_uuid(),
                name=f"cn{i}",
                inventories={
                    "VCPU": Inventory("VCPU", total=16),
                    "MEMORY_MB": Inventory("MEMORY_MB", total=16384),
                },
            )
        )
    return st


def slow_app(store: Store, *, delay: float, from_instance: int, **kw: Any) -> FastAPI:
    config = SchedulerConfig(
        filters=[SLOW],
        options={SLOW: {"delay": delay, "from_instance": from_instance}},
        candidate_limit=PROVIDERS,
        heartbeat_timeout=None,
    )
    return create_app(store, auth=AuthConfig.noauth2(), scheduler_config=config, **kw)


def request_body(uuid: str, count: int) -> dict[str, Any]:
    return {"uuid": uuid, "count": count, "groups": [{"resources": {"VCPU": 1}}]}


def cut_count(client: TestClient, reason: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("claimant_requests_cut_total{") and f'reason="{reason}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_slow_placement_is_cut_at_its_deadline_and_gives_its_claims_back(
    any_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # The first instance is placed (and claimed) at once; filtering for the
    # second would take 20 x 0.2 s, far past the 1 s budget.
    app = slow_app(any_store, delay=0.2, from_instance=1, schedule_timeout=1.0)
    uuid = new_uuid()
    with TestClient(app, headers=ADMIN) as client, caplog.at_level(logging.WARNING):
        started = time.monotonic()
        r = client.post(
            "/v1/requests", json=request_body(uuid, 2), headers={"X-Request-Id": "slow-one"}
        )
        elapsed = time.monotonic() - started
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert error["code"] == "deadline_exceeded"
        assert error["details"]["doing"] == "filtering candidates"
        assert error["details"]["reason"] == "deadline"
        assert "filtering candidates" in error["message"]
        assert r.headers["x-request-id"] == "slow-one"
        # The bound: no request outlives its deadline by more than a second.
        assert elapsed < 1.0 + 1.0
        assert cut_count(client, "deadline") == 1
    logged = [rec.getMessage() for rec in caplog.records]
    assert any("slow-one" in m and "cut (deadline)" in m for m in logged), logged
    assert any_store.list_claims(request_uuid=uuid) == []
    record = any_store.get_request(uuid)
    assert record.status == RequestStatus.FAILED
    assert record.claims == ()
    assert record.history[-1]["code"] == "deadline_exceeded"


def test_a_placement_whose_client_left_stops(any_store: Store) -> None:
    app = slow_app(any_store, delay=0.1, from_instance=0, schedule_timeout=60.0)
    uuid = new_uuid()
    body = json.dumps(request_body(uuid, 1)).encode()
    SlowFilter.calls = 0
    sent: list[dict[str, Any]] = []

    async def main() -> None:
        stage = 0

        async def receive() -> dict[str, Any]:
            nonlocal stage
            stage += 1
            if stage == 1:
                return {"type": "http.request", "body": body, "more_body": False}
            # The client hangs up while the scheduler is filtering.
            while SlowFilter.calls < 2:
                await asyncio.sleep(0.01)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/requests",
            "raw_path": b"/v1/requests",
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"x-auth-token", b"admin"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "server": ("127.0.0.1", 8778),
            "client": ("127.0.0.1", 5000),
        }
        await app(scope, receive, send)

    with TestClient(app, headers=ADMIN) as client:
        asyncio.run(main())
        assert cut_count(client, "disconnect") == 1
    assert SlowFilter.calls < PROVIDERS
    assert sent[0]["status"] == 503
    record = any_store.get_request(uuid)
    assert record.status == RequestStatus.FAILED
    assert "client disconnected" in record.history[-1]["message"]
    assert any_store.list_claims(request_uuid=uuid) == []


def test_placement_api_answers_503_deadline_exceeded_in_its_format(any_store: Store) -> None:
    app = create_app(any_store, auth=AuthConfig.noauth2(), request_timeout=1e-6)
    headers = {**ADMIN, "openstack-api-version": "placement latest"}
    with TestClient(app, headers=headers) as client:
        r = client.get("/resource_providers?resources=VCPU:1")
        assert r.status_code == 503, r.text
        err = r.json()["errors"][0]
        assert err["code"] == "placement.deadline_exceeded"
        assert "deadline of" in err["detail"]
        assert r.headers["openstack-request-id"] == r.headers["x-request-id"]
        assert err["request_id"] == r.headers["x-request-id"]


def test_native_reads_answer_503_deadline_exceeded(any_store: Store) -> None:
    app = create_app(any_store, auth=AuthConfig.noauth2(), request_timeout=1e-6)
    with TestClient(app, headers=ADMIN) as client:
        r = client.get("/v1/providers")
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "deadline_exceeded"
        # Driver text never reaches the client.
        assert "sqlite" not in r.text.lower() and "cassandra" not in r.text.lower()
        assert cut_count(client, "deadline") == 1


def test_within_the_deadline_nothing_changes(any_store: Store) -> None:
    app = create_app(any_store, auth=AuthConfig.noauth2())
    with TestClient(app, headers=ADMIN) as client:
        r = client.post("/v1/requests", json=request_body(new_uuid(), 2))
        assert r.status_code == 201, r.text
        assert r.headers["x-request-id"].startswith("req-")
        assert client.get("/v1/providers").status_code == 200
        assert cut_count(client, "deadline") == 0


def test_a_placement_queued_past_its_deadline_is_answered_at_once_and_never_starts(
    tmp_path: Path,
) -> None:
    store = open_store("sqlite:///" + str(tmp_path / "q.db").lstrip("/"))
    store.migrate()
    # SQLite schedules one request at a time: a placement queued behind a
    # long one must not wait for it to learn that its own time is up.
    app = create_app(store, auth=AuthConfig.noauth2(), schedule_timeout=0.5, schedule_concurrency=1)
    release = threading.Event()
    busy = app.state.schedule_executor.submit(release.wait, 30)
    uuid = new_uuid()
    try:
        with TestClient(app, headers=ADMIN) as client:
            started = time.monotonic()
            r = client.post("/v1/requests", json=request_body(uuid, 1))
            elapsed = time.monotonic() - started
            assert r.status_code == 503, r.text
            assert r.json()["error"]["details"]["doing"] == "waiting to be scheduled"
            assert elapsed < 0.5 + 1.0
            release.set()
            busy.result(timeout=30)
            # The job it left in the queue never ran: no record, nothing held.
            app.state.schedule_executor.submit(lambda: None).result(timeout=30)
            assert client.get(f"/v1/requests/{uuid}").status_code == 404
    finally:
        release.set()
        store.close()

"""Bad input to the conductor's HTTP surface: clear errors with stable codes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from claimant.conductor import AgentDirectory, Conductor
from claimant.conductor.http import create_conductor_app
from claimant.model import new_uuid
from claimant.scheduler import Scheduler
from claimant.store import Store

from .conftest import LOOPBACK

FLAVOR = {"flavor": {"vcpus": 1, "memory_mb": 256}}
# Fixed, not random: it appears in test ids, the same in every process.
UNKNOWN = "3c9d2b7a-1e4f-4d6a-8b2c-5f0e9a7d6c41"


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "status", "code"),
    [
        ("body not json", "POST", "/v1/builds", b"{", 400, "invalid_input"),
        ("no groups or flavor", "POST", "/v1/builds", b"{}", 400, "invalid_input"),
        (
            "negative vcpus",
            "POST",
            "/v1/builds",
            b'{"flavor": {"vcpus": -1, "memory_mb": 1}}',
            422,
            "invalid_input",
        ),
        (
            "unknown class",
            "POST",
            "/v1/builds",
            b'{"groups": [{"resources": {"CUSTOM_NOPE": 1}}]}',
            400,
            "invalid_input",
        ),
        (
            "count zero",
            "POST",
            "/v1/builds",
            b'{"flavor": {"vcpus": 1, "memory_mb": 1}, "count": 0}',
            422,
            "invalid_input",
        ),
        ("malformed uuid", "GET", "/v1/builds/nope", None, 400, "invalid_input"),
        ("unknown request", "GET", f"/v1/builds/{UNKNOWN}", None, 404, "not_found"),
        ("destroy unknown", "DELETE", f"/v1/builds/{UNKNOWN}", None, 404, "not_found"),
        ("agent without url", "POST", "/v1/agents", b'{"providers": []}', 400, "invalid_input"),
        (
            "agent bad scheme",
            "POST",
            "/v1/agents",
            b'{"url": "ftp://x", "providers": ["x"]}',
            400,
            "invalid_input",
        ),
        (
            "agent bad provider",
            "POST",
            "/v1/agents",
            b'{"url": "http://x", "providers": ["x"]}',
            400,
            "invalid_input",
        ),
        ("wrong method", "PUT", "/v1/builds", b"{}", 405, "method_not_allowed"),
    ],
)
def test_bad_input(
    sqlite_store: Store,
    case: str,
    method: str,
    path: str,
    body: bytes | None,
    status: int,
    code: str,
) -> None:
    conductor = Conductor(sqlite_store, Scheduler(sqlite_store), AgentDirectory())
    with TestClient(create_conductor_app(conductor), base_url=LOOPBACK) as http:
        headers = {"content-type": "application/json"} if body is not None else {}
        r = http.request(method, path, content=body, headers=headers)
    assert r.status_code == status, f"{case}: {r.text}"
    assert r.json()["error"]["code"] == code, case


def test_duplicate_uuid_is_refused(sqlite_store: Store) -> None:
    conductor = Conductor(sqlite_store, Scheduler(sqlite_store), AgentDirectory())
    uuid = new_uuid()
    with TestClient(create_conductor_app(conductor), base_url=LOOPBACK) as http:
        # No provider: the build fails (409), but the request is recorded.
        first = http.post("/v1/builds", params={"wait": "true"}, json={**FLAVOR, "uuid": uuid})
        assert first.status_code == 409, first.text
        again = http.post("/v1/builds", json={**FLAVOR, "uuid": uuid})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_exists"


def test_a_failed_build_is_not_a_success(sqlite_store: Store) -> None:
    """Issue 11: POST /v1/builds?wait=true answered 201 for a failed build."""
    conductor = Conductor(sqlite_store, Scheduler(sqlite_store), AgentDirectory())
    with TestClient(create_conductor_app(conductor), base_url=LOOPBACK) as http:
        r = http.post("/v1/builds", params={"wait": "true"}, json=FLAVOR)
        assert r.status_code == 409, r.text
        err = r.json()["error"]
        assert err["code"] == "no_valid_host"
        uuid = err["details"]["request_uuid"]
        shown = http.get(f"/v1/builds/{uuid}").json()
        assert shown["status"] == "failed"
        assert shown["reason"] and shown["reason"] in err["message"]

"""Issue 11: a request's status follows reality, and says why.

A request whose claims expired read ``scheduled``; a partial one (2 of 3)
looked complete; a failed one hid its reason in its history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from claimant.store import Store


def test_expired_claims_make_an_expired_request(
    client: TestClient, store: Store, make_provider: Callable[..., dict[str, Any]]
) -> None:
    make_provider("cn1")
    r = client.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 1}}], "count": 2})
    assert r.status_code == 201, r.text
    uuid = r.json()["uuid"]
    real = store.clock
    store.clock = lambda: real() + 3600  # past the claims' TTL (300 s)
    try:
        got = client.get(f"/v1/requests/{uuid}").json()
    finally:
        store.clock = real
    assert got["status"] == "expired"
    assert got["reason"].startswith("2 of 2 claim(s) expired")
    assert got["claims"] == [] and got["placements"] == []
    events = [e["event"] for e in client.get(f"/v1/requests/{uuid}/events").json()["events"]]
    assert events[-3:] == ["expired", "expired", "expired"]  # two claims, then the request
    listed = client.get("/v1/requests", params={"status": "expired"}).json()["requests"]
    assert [x["uuid"] for x in listed] == [uuid]


def test_released_claims_do_not_make_it_expired(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    make_provider("cn1")
    body = client.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 1}}]}).json()
    client.delete(f"/v1/claims/{body['claims'][0]}")
    assert client.get(f"/v1/requests/{body['uuid']}").json()["status"] == "scheduled"


def test_partial_request_says_partial(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    make_provider("cn1", vcpu=4)
    r = client.post(
        "/v1/requests",
        json={"groups": [{"resources": {"VCPU": 2}}], "count": 3, "all_or_nothing": False},
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "partial"
    got = client.get(f"/v1/requests/{r.json()['uuid']}").json()
    assert got["status"] == "partial"
    assert "instance 3 of 3" in got["reason"]


def test_failed_request_keeps_its_reason(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    make_provider("cn1", vcpu=1)
    uuid = "00000000-0000-4000-8000-00000000000a"
    r = client.post("/v1/requests", json={"uuid": uuid, "groups": [{"resources": {"VCPU": 2}}]})
    assert r.status_code == 409
    got = client.get(f"/v1/requests/{uuid}").json()
    assert got["status"] == "failed"
    assert "no valid host" in got["reason"] and "VCPU" in got["reason"]

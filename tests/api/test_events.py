"""Issue 11: a request's and a provider's story, with timestamps, over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient


def test_request_and_provider_events(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    cn = make_provider("cn1")
    r = client.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 2}}]})
    assert r.status_code == 201, r.text
    body = r.json()
    claim = body["placements"][0]["claims"][0]["uuid"]
    assert client.post(f"/v1/claims/{claim}/confirm").status_code == 200
    gen = client.get(f"/v1/providers/{cn['uuid']}").json()["generation"]
    r = client.put(f"/v1/providers/{cn['uuid']}", json={"enabled": False, "generation": gen})
    assert r.status_code == 200, r.text

    got = client.get(f"/v1/requests/{body['uuid']}/events")
    assert got.status_code == 200, got.text
    events = got.json()["events"]
    assert [e["event"] for e in events] == ["claimed", "scheduled", "confirmed"]
    assert all(isinstance(e["at"], float) for e in events)
    assert events[0]["provider_uuid"] == cn["uuid"]

    got = client.get(f"/v1/providers/{cn['uuid']}/events", params={"limit": 2})
    assert [e["event"] for e in got.json()["events"]] == ["confirmed", "disabled"]


def test_events_of_unknown_subjects(client: TestClient) -> None:
    missing = "00000000-0000-4000-8000-000000000001"
    for path in (f"/v1/requests/{missing}/events", f"/v1/providers/{missing}/events"):
        assert client.get(path).status_code == 404
    assert client.get("/v1/requests/nope/events").status_code == 400

"""Named aggregates on the native API: /v1/aggregates, names wherever the
native API takes an aggregate, names in /v1/capacity; Placement stays uuids."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

Make = Callable[..., dict[str, Any]]


def _create(client: TestClient, name: str, agg: str | None = None) -> dict[str, Any]:
    r = client.post("/v1/aggregates", json={"name": name, **({"uuid": agg} if agg else {})})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_create_list_show_delete(client: TestClient, make_provider: Make) -> None:
    agg = str(uuid.uuid4())
    make_provider("h1", aggregates=[agg])
    made = _create(client, "rack-1", agg.upper())
    assert (made["name"], made["uuid"], made["providers"]) == ("rack-1", agg, 1)
    auto = _create(client, "az-east")
    listed = client.get("/v1/aggregates").json()["aggregates"]
    assert [(a["name"], a["providers"]) for a in listed] == [("az-east", 0), ("rack-1", 1)]
    for ref in ("rack-1", agg):
        shown = client.get(f"/v1/aggregates/{ref}").json()
        assert shown["uuid"] == agg and [m["name"] for m in shown["members"]] == ["h1"]
    assert client.delete(f"/v1/aggregates/{auto['uuid']}").status_code == 204
    assert client.delete("/v1/aggregates/rack-1").status_code == 204
    # deleting the name leaves the membership
    h1 = client.get("/v1/providers/h1/aggregates").json()
    assert h1["aggregates"] == [agg]
    r = client.get("/v1/aggregates/rack-1")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_taken_and_bad_names_are_4xx(client: TestClient) -> None:
    agg = str(uuid.uuid4())
    _create(client, "rack-1", agg)
    for body in ({"name": "rack-1"}, {"name": "rack-2", "uuid": agg}):
        r = client.post("/v1/aggregates", json=body)
        assert r.status_code == 409 and r.json()["error"]["code"] == "already_exists", r.text
    for body in ({"name": str(uuid.uuid4())}, {"name": "a,b"}, {"name": ""}, {"name": 3}):
        r = client.post("/v1/aggregates", json=body)
        # 422: the body's schema refused it; 400: the store's name rules
        assert r.status_code in (400, 422) and r.json()["error"]["code"] == "invalid_input"
    r = client.post("/v1/aggregates", json={"name": "x", "uuid": "nope"})
    assert r.status_code == 422


def test_names_in_provider_aggregates_and_member_of(
    client: TestClient, make_provider: Make
) -> None:
    rack = _create(client, "rack-1")
    h1 = make_provider("h1")
    make_provider("h2")
    r = client.put(
        "/v1/providers/h1/aggregates",
        json={"generation": h1["generation"], "aggregates": ["rack-1"]},
    )
    assert r.status_code == 200 and r.json()["aggregates"] == [rack["uuid"]], r.text
    found = client.get("/v1/providers", params={"member_of": "rack-1"}).json()["providers"]
    assert [p["name"] for p in found] == ["h1"]
    found = client.get("/v1/providers", params={"member_of": "!rack-1"}).json()["providers"]
    assert [p["name"] for p in found] == ["h2"]
    body = {"groups": [{"resources": {"VCPU": 1}, "member_of": [["rack-1"]]}]}
    r = client.post("/v1/requests", json=body)
    assert r.status_code == 201, r.text
    placed = {c["provider_uuid"] for p in r.json()["placements"] for c in p["claims"]}
    assert placed == {h1["uuid"]}
    h3 = make_provider("h3", aggregates=["rack-1"])
    assert h3["aggregates"] == [rack["uuid"]]


def test_unknown_names_are_400_naming_the_fix(client: TestClient, make_provider: Make) -> None:
    h1 = make_provider("h1")
    vcpu = {"resources": {"VCPU": 1}}
    calls = [
        (
            "PUT",
            "/v1/providers/h1/aggregates",
            {"generation": h1["generation"], "aggregates": ["x"]},
        ),
        ("GET", "/v1/providers?member_of=in:x", None),
        ("POST", "/v1/providers", {"name": "h2", "aggregates": ["x"]}),
        ("POST", "/v1/requests", {"groups": [{**vcpu, "member_of": [["x"]]}]}),
        ("POST", "/v1/requests", {"groups": [{**vcpu, "forbidden_aggregates": ["x"]}]}),
    ]
    for method, url, body in calls:
        r = client.request(method, url, json=body)
        assert r.status_code == 400, (url, r.text)
        err = r.json()["error"]
        assert err["code"] == "unknown_aggregate"
        assert "claimant aggregate create x" in err["message"]


def test_capacity_rows_carry_names(client: TestClient, make_provider: Make) -> None:
    named, bare = str(uuid.uuid4()), str(uuid.uuid4())
    make_provider("h1", aggregates=[named, bare])
    _create(client, "rack-1", named)
    rows = {a["uuid"]: a for a in client.get("/v1/capacity").json()["aggregates"]}
    assert rows[named]["name"] == "rack-1" and rows[bare]["name"] is None


def test_placement_api_takes_uuids_only(client: TestClient, make_provider: Make) -> None:
    _create(client, "rack-1")
    r = client.get(
        "/resource_providers",
        params={"member_of": "rack-1"},
        headers={"openstack-api-version": "placement latest"},
    )
    assert r.status_code == 400, r.text


def test_writes_are_admin_reads_are_readers(app: FastAPI) -> None:
    def h(role: str) -> dict[str, str]:
        return {"x-auth-token": "user:p1", "x-roles": role}

    with TestClient(app) as c:
        assert c.post("/v1/aggregates", json={"name": "r"}, headers=h("service")).status_code == 403
        assert c.post("/v1/aggregates", json={"name": "r"}, headers=h("admin")).status_code == 201
        assert c.get("/v1/aggregates", headers=h("reader")).status_code == 200
        assert c.get("/v1/aggregates/r", headers=h("reader")).status_code == 200
        assert c.delete("/v1/aggregates/r", headers=h("service")).status_code == 403
        assert c.delete("/v1/aggregates/r", headers=h("admin")).status_code == 204

"""What an operator reads (issue 11): providers with usage and health in one
call, providers named by name wherever a uuid is taken, and /v1/capacity."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from claimant.model import Health, provider_health
from claimant.store import Store

AGG = str(uuid.uuid4())


@pytest.mark.parametrize(
    ("case", "heartbeat_age", "timeout", "expected"),
    [
        ("never heartbeated", None, 60.0, Health.NO_AGENT),
        ("fresh", 5.0, 60.0, Health.UP),
        ("just past the timeout", 61.0, 60.0, Health.STALE),
        ("silent five timeouts", 301.0, 60.0, Health.DOWN),
        ("no timeout configured", 10_000.0, None, Health.UP),
    ],
)
def test_provider_health(
    case: str, heartbeat_age: float | None, timeout: float | None, expected: Health
) -> None:
    now = 1_000_000.0
    at = None if heartbeat_age is None else now - heartbeat_age
    assert provider_health(at, now, timeout) is expected


def _claim(client: TestClient, resources: dict[str, int], **group: Any) -> dict[str, Any]:
    r = client.post("/v1/requests", json={"groups": [{"resources": resources, **group}]})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def test_list_with_usage_and_health(
    client: TestClient, store: Store, make_provider: Callable[..., dict[str, Any]]
) -> None:
    up = make_provider("up", vcpu=8)
    stale = make_provider("stale", vcpu=8)
    make_provider("api-only", vcpu=8)
    store.heartbeat(up["uuid"])
    store.heartbeat(stale["uuid"], at=time.time() - 120)
    _claim(client, {"VCPU": 3}, in_tree=up["uuid"])
    listed = client.get("/v1/providers", params={"include": "usage"}).json()["providers"]
    by_name = {p["name"]: p for p in listed}
    assert by_name["up"]["usages"]["VCPU"] == {"capacity": 8, "used": 3, "free": 5}
    assert by_name["stale"]["usages"]["VCPU"]["used"] == 0
    assert {n: p["health"] for n, p in by_name.items()} == {
        "up": "up",
        "stale": "stale",
        "api-only": "no_agent",
    }
    assert all(p["enabled"] for p in listed)
    plain = client.get("/v1/providers").json()["providers"]
    assert "usages" not in plain[0] and plain[0]["health"]
    shown = client.get("/v1/providers/up", params={"include": "usage"}).json()
    assert shown["uuid"] == up["uuid"] and shown["usages"]["VCPU"]["free"] == 5
    bad = client.get("/v1/providers", params={"include": "everything"})
    assert bad.status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/v1/providers/cn-named",
        "/v1/providers/cn-named/usages",
        "/v1/providers/cn-named/inventories",
        "/v1/providers/cn-named/traits",
        "/v1/providers/cn-named/aggregates",
        "/v1/providers/cn-named/claims",
    ],
)
def test_a_provider_may_be_named_by_name(
    client: TestClient, make_provider: Callable[..., dict[str, Any]], path: str
) -> None:
    p = make_provider("cn-named")
    r = client.get(path)
    assert r.status_code == 200, r.text
    assert p["uuid"] in (r.json().get("uuid"), r.json().get("provider_uuid"))
    missing = client.get(path.replace("cn-named", "cn-nope"))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert "cn-nope" in missing.json()["error"]["message"]


def test_in_tree_takes_a_name(client: TestClient, make_provider: Callable[..., Any]) -> None:
    root = make_provider("root")
    make_provider("child", parent_uuid=root["uuid"])
    make_provider("other")
    tree = client.get("/v1/providers", params={"in_tree": "root"}).json()["providers"]
    assert {p["name"] for p in tree} == {"root", "child"}
    nothing = client.get("/v1/providers", params={"in_tree": "nope"})
    assert nothing.status_code == 400 and "nope" in nothing.json()["error"]["message"]


def test_names_in_writes(client: TestClient, make_provider: Callable[..., Any]) -> None:
    p = make_provider("cn-w")
    r = client.put("/v1/providers/cn-w", json={"generation": p["generation"], "enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert client.delete("/v1/providers/cn-w").status_code == 204


def test_capacity_summary(
    client: TestClient, store: Store, make_provider: Callable[..., dict[str, Any]]
) -> None:
    a = make_provider("a", vcpu=8, memory_mb=1000, aggregates=[AGG])
    b = make_provider("b", vcpu=8, memory_mb=1000, aggregates=[AGG])
    c = make_provider("c", vcpu=4, memory_mb=1000)
    store.heartbeat(a["uuid"])
    store.heartbeat(b["uuid"], at=time.time() - 1000)  # down
    client.put("/v1/providers/c", json={"generation": c["generation"], "enabled": False})
    _claim(client, {"VCPU": 2, "MEMORY_MB": 500}, in_tree=a["uuid"])
    cap = client.get("/v1/capacity").json()
    assert cap["providers"] == {
        "total": 3,
        "enabled": 2,
        "disabled": 1,
        "health": {"up": 1, "stale": 0, "down": 1, "no_agent": 1},
    }
    vcpu = cap["resource_classes"]["VCPU"]
    assert vcpu == {
        "capacity": 20,
        "used": 2,
        "free": 18,
        "used_percent": 10.0,
        # b is down and c is disabled: only a's 6 free VCPUs can be scheduled
        "schedulable_free": 6,
        "providers": 3,
    }
    (agg,) = cap["aggregates"]
    assert agg["uuid"] == AGG and agg["providers"] == 2
    assert agg["resource_classes"]["MEMORY_MB"]["used_percent"] == 25.0


def test_capacity_needs_a_role(app: Any) -> None:
    with TestClient(app) as anon:
        assert anon.get("/v1/capacity", headers={"x-auth-token": "nobody"}).status_code == 403
        reader = {"x-auth-token": "r", "x-roles": "reader"}
        assert anon.get("/v1/capacity", headers=reader).status_code == 200

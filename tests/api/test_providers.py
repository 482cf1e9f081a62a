"""/v1/providers and what hangs off a provider: inventories, traits,
aggregates, usages, claims."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

AGG1 = str(uuid.uuid4())
AGG2 = str(uuid.uuid4())


def test_create_get_list(client: TestClient) -> None:
    r = client.post(
        "/v1/providers",
        json={
            "name": "cn1",
            "attributes": {"cpu_arch": "x86_64", "numa_nodes": 2},
            "traits": ["HW_CPU_X86_AVX2"],
            "aggregates": [AGG1],
            "inventories": {"VCPU": {"total": 16, "allocation_ratio": 2.0}},
        },
    )
    assert r.status_code == 201, r.text
    p = r.json()
    assert r.headers["location"] == f"/v1/providers/{p['uuid']}"
    assert p["generation"] == 0
    assert p["inventories"]["VCPU"]["capacity"] == 32
    assert p["attributes"] == {"cpu_arch": "x86_64", "numa_nodes": 2}
    got = client.get(f"/v1/providers/{p['uuid']}").json()
    assert got["traits"] == ["HW_CPU_X86_AVX2"] and got["aggregates"] == [AGG1]
    names = [x["name"] for x in client.get("/v1/providers").json()["providers"]]
    assert names == ["cn1"]


def test_create_with_explicit_uuid_and_child(client: TestClient) -> None:
    root = str(uuid.uuid4())
    assert client.post("/v1/providers", json={"uuid": root, "name": "root"}).status_code == 201
    r = client.post("/v1/providers", json={"name": "numa0", "parent_uuid": root})
    assert r.status_code == 201
    assert r.json()["root_uuid"] == root
    tree = client.get("/v1/providers", params={"in_tree": root}).json()["providers"]
    assert {p["name"] for p in tree} == {"root", "numa0"}


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("by name", {"name": "big"}, {"big"}),
        ("by resources", {"resources": "VCPU:10"}, {"big"}),
        ("by required trait", {"required": "HW_CPU_X86_AVX2"}, {"small"}),
        ("by forbidden trait", {"required": "!HW_CPU_X86_AVX2"}, {"big"}),
        ("by any-of traits", {"required": "in:HW_CPU_X86_AVX2,HW_CPU_X86_SSE"}, {"small"}),
        ("by aggregate", {"member_of": AGG2}, {"big"}),
        ("by aggregate any-of", {"member_of": f"in:{AGG1},{AGG2}"}, {"big", "small"}),
        ("by type", {"type": "compute"}, {"big", "small"}),
        ("by type none", {"type": "baremetal"}, set()),
    ],
)
def test_list_filters(
    client: TestClient,
    make_provider: Callable[..., dict[str, Any]],
    name: str,
    params: dict[str, str],
    expected: set[str],
) -> None:
    make_provider("big", vcpu=32, aggregates=[AGG2])
    make_provider("small", vcpu=4, traits=["HW_CPU_X86_AVX2"], aggregates=[AGG1])
    r = client.get("/v1/providers", params=params)
    assert r.status_code == 200, r.text
    assert {p["name"] for p in r.json()["providers"]} == expected


def test_update_with_generation(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    p = make_provider("cn1")
    url = f"/v1/providers/{p['uuid']}"
    r = client.put(url, json={"generation": 0, "name": "renamed", "enabled": False})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "renamed" and r.json()["enabled"] is False
    assert r.json()["generation"] == 1
    stale = client.put(url, json={"generation": 0, "name": "again"})
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "generation_conflict"
    assert client.get(url).json()["name"] == "renamed"


def test_update_attributes_checked_against_type(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    p = make_provider("cn1")
    url = f"/v1/providers/{p['uuid']}"
    bad = client.put(url, json={"generation": 0, "attributes": {"ram_gb": 12}})
    assert bad.status_code == 400
    ok = client.put(url, json={"generation": 0, "attributes": {"hypervisor": "kvm"}})
    assert ok.status_code == 200 and ok.json()["attributes"] == {"hypervisor": "kvm"}


def test_delete(client: TestClient, make_provider: Callable[..., dict[str, Any]]) -> None:
    p = make_provider("cn1")
    assert client.delete(f"/v1/providers/{p['uuid']}").status_code == 204
    r = client.get(f"/v1/providers/{p['uuid']}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_duplicate_name_is_conflict(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    make_provider("cn1")
    r = client.post("/v1/providers", json={"name": "cn1"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_exists"


def test_inventories_replace(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    p = make_provider("cn1")
    url = f"/v1/providers/{p['uuid']}/inventories"
    got = client.get(url).json()
    assert set(got["inventories"]) == {"VCPU", "MEMORY_MB"} and got["generation"] == 0
    body = {"generation": 0, "inventories": {"DISK_GB": {"total": 100, "reserved": 10}}}
    r = client.put(url, json=body)
    assert r.status_code == 200, r.text
    assert set(r.json()["inventories"]) == {"DISK_GB"}
    assert r.json()["inventories"]["DISK_GB"]["capacity"] == 90
    again = client.put(url, json=body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "generation_conflict"


def test_discrete_class_refuses_overcommit(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    p = make_provider("cn1")
    body = {"generation": 0, "inventories": {"VGPU": {"total": 2, "allocation_ratio": 2.0}}}
    r = client.put(f"/v1/providers/{p['uuid']}/inventories", json=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"


def test_traits_and_aggregates(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    p = make_provider("cn1")
    url = f"/v1/providers/{p['uuid']}"
    r = client.put(url + "/traits", json={"generation": 0, "traits": ["HW_CPU_X86_AVX2"]})
    assert r.status_code == 200 and r.json() == {
        "provider_uuid": p["uuid"],
        "generation": 1,
        "traits": ["HW_CPU_X86_AVX2"],
    }
    assert client.get(url + "/traits").json()["traits"] == ["HW_CPU_X86_AVX2"]
    r = client.put(url + "/aggregates", json={"generation": 1, "aggregates": [AGG1]})
    assert r.status_code == 200 and r.json()["aggregates"] == [AGG1]
    assert client.get(url + "/aggregates").json()["generation"] == 2
    stale = client.put(url + "/traits", json={"generation": 1, "traits": []})
    assert stale.status_code == 409


def test_unknown_trait_on_provider_is_400(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    p = make_provider("cn1")
    r = client.put(
        f"/v1/providers/{p['uuid']}/traits", json={"generation": 0, "traits": ["CUSTOM_NOPE"]}
    )
    assert r.status_code == 400 and "CUSTOM_NOPE" in r.json()["error"]["message"]
    assert client.get(f"/v1/providers/{p['uuid']}").json()["generation"] == 0


def test_usages_and_claims_of_a_provider(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    p = make_provider("cn1", vcpu=4)
    r = client.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 3}}]})
    assert r.status_code == 201, r.text
    usages = client.get(f"/v1/providers/{p['uuid']}/usages").json()["usages"]
    assert usages["VCPU"] == {"capacity": 4, "used": 3, "free": 1}
    claims = client.get(f"/v1/providers/{p['uuid']}/claims").json()["claims"]
    assert [c["amounts"] for c in claims] == [{"VCPU": 3}]
    none = client.get(f"/v1/providers/{p['uuid']}/claims", params={"status": "confirmed"})
    assert none.json()["claims"] == []

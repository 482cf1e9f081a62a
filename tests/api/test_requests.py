"""/v1/requests, /v1/claims and /v1/usages: a request is persisted and scheduled."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient


def _claims(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for p in body["placements"] for c in p["claims"]]


def test_request_is_scheduled_and_persisted(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    make_provider("cn1", traits=["HW_CPU_X86_AVX2"])
    make_provider("cn2")
    r = client.post(
        "/v1/requests",
        json={
            "groups": [
                {
                    "resources": {"VCPU": 2, "MEMORY_MB": 1024},
                    "required_traits": ["HW_CPU_X86_AVX2"],
                }
            ],
            "count": 2,
            "project_id": "proj",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "scheduled"
    assert len(body["placements"]) == 2
    claims = _claims(body)
    assert {c["provider_uuid"] for c in claims} == {
        p["uuid"] for p in client.get("/v1/providers", params={"name": "cn1"}).json()["providers"]
    }
    assert sorted(body["claims"]) == sorted(c["uuid"] for c in claims)
    got = client.get(f"/v1/requests/{body['uuid']}").json()
    assert got["status"] == "scheduled" and len(_claims(got)) == 2
    listed = client.get("/v1/requests", params={"status": "scheduled"}).json()["requests"]
    assert [x["uuid"] for x in listed] == [body["uuid"]]
    usage = client.get("/v1/usages", params={"project_id": "proj"}).json()
    assert usage["project_id"] == "proj"


def test_flavor_shorthand(client: TestClient, make_provider: Callable[..., dict[str, Any]]) -> None:
    make_provider("cn1", disk_gb=100, traits=["HW_CPU_X86_AVX2"])
    r = client.post(
        "/v1/requests",
        json={
            "flavor": {
                "vcpus": 2,
                "memory_mb": 512,
                "disk_gb": 10,
                "extra": {"trait:HW_CPU_X86_AVX2": "required"},
            }
        },
    )
    assert r.status_code == 201, r.text
    group = r.json()["groups"][0]
    assert group["resources"] == {"VCPU": 2, "MEMORY_MB": 512, "DISK_GB": 10}
    assert group["required_traits"] == ["HW_CPU_X86_AVX2"]


def test_no_valid_host(client: TestClient, make_provider: Callable[..., dict[str, Any]]) -> None:
    make_provider("cn1", vcpu=2)
    r = client.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 4}}]})
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "no_valid_host"
    request_uuid = err["details"]["request_uuid"]
    assert client.get(f"/v1/requests/{request_uuid}").json()["status"] == "failed"


def test_attribute_constraints_and_type(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    make_provider("arm", attributes={"cpu_arch": "aarch64"})
    make_provider("x86", attributes={"cpu_arch": "x86_64"})
    r = client.post(
        "/v1/requests",
        json={
            "groups": [
                {
                    "resources": {"VCPU": 1},
                    "provider_type": "compute",
                    "attributes": [{"name": "cpu_arch", "op": "==", "value": "aarch64"}],
                }
            ]
        },
    )
    assert r.status_code == 201, r.text
    arm = client.get("/v1/providers", params={"name": "arm"}).json()["providers"][0]
    assert _claims(r.json())[0]["provider_uuid"] == arm["uuid"]
    bad = client.post(
        "/v1/requests",
        json={
            "groups": [
                {
                    "resources": {"VCPU": 1},
                    "provider_type": "compute",
                    "attributes": [{"name": "ram_gb", "op": ">=", "value": 1}],
                }
            ]
        },
    )
    assert bad.status_code == 400


def test_anti_affinity_hint(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    make_provider("cn1")
    make_provider("cn2")
    body = {
        "groups": [{"resources": {"VCPU": 1}}],
        "count": 2,
        "hints": {"group": "web", "group_policy": "anti-affinity"},
    }
    r = client.post("/v1/requests", json=body)
    assert r.status_code == 201, r.text
    assert len({c["provider_uuid"] for c in _claims(r.json())}) == 2
    third = client.post("/v1/requests", json={**body, "count": 1})
    assert third.status_code == 409 and third.json()["error"]["code"] == "no_valid_host"


def test_duplicate_request_uuid(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    make_provider("cn1")
    body = {"uuid": str(uuid.uuid4()), "groups": [{"resources": {"VCPU": 1}}]}
    assert client.post("/v1/requests", json=body).status_code == 201
    again = client.post("/v1/requests", json=body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_exists"


def test_claim_confirm_and_release(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    p = make_provider("cn1", vcpu=4)
    r = client.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 4}}]})
    claim = _claims(r.json())[0]
    url = f"/v1/claims/{claim['uuid']}"
    assert client.get(url).json()["status"] == "claimed"
    confirmed = client.post(url + "/confirm")
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    assert confirmed.json()["expires_at"] is None
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    assert client.delete(url).status_code == 404
    free = client.get(f"/v1/providers/{p['uuid']}/usages").json()["usages"]["VCPU"]["free"]
    assert free == 4


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("unknown resource class", {"groups": [{"resources": {"CUSTOM_NOPE": 1}}]}),
        ("unknown trait", {"groups": [{"resources": {"VCPU": 1}, "required_traits": ["NOPE"]}]}),
        ("unknown provider type", {"groups": [{"resources": {"VCPU": 1}, "provider_type": "x"}]}),
        ("no groups", {}),
        (
            "trait required and forbidden",
            {
                "groups": [
                    {
                        "resources": {"VCPU": 1},
                        "required_traits": ["HW_CPU_X86_AVX2"],
                        "forbidden_traits": ["HW_CPU_X86_AVX2"],
                    }
                ]
            },
        ),
        (
            "duplicate group names",
            {"groups": [{"resources": {"VCPU": 1}}, {"resources": {"VCPU": 1}}]},
        ),
        (
            "policy without group",
            {"groups": [{"resources": {"VCPU": 1}}], "hints": {"group_policy": "affinity"}},
        ),
        (
            "flavor bad trait value",
            {"flavor": {"vcpus": 1, "memory_mb": 1, "extra": {"trait:HW_CPU_X86_AVX2": "maybe"}}},
        ),
        (
            "consumers count mismatch",
            {"groups": [{"resources": {"VCPU": 1}}], "count": 2, "consumers": [str(uuid.uuid4())]},
        ),
    ],
)
def test_invalid_requests_are_400(
    client: TestClient, make_provider: Callable[..., dict[str, Any]], case: str, body: Any
) -> None:
    make_provider("cn1")
    r = client.post("/v1/requests", json=body)
    assert r.status_code == 400, (case, r.text)
    assert r.json()["error"]["code"] == "invalid_input"
    assert client.get("/v1/requests").json()["requests"] == []


def _gpu_host(client: TestClient) -> dict[str, Any]:
    """A root with a NUMA child (VCPU, MEMORY_MB) and a GPU child (VGPU)."""
    root = client.post("/v1/providers", json={"name": "cn-root"}).json()
    for name, inventories in (
        ("cn-numa0", {"VCPU": {"total": 4}, "MEMORY_MB": {"total": 4096}}),
        ("cn-gpu0", {"VGPU": {"total": 1}}),
    ):
        r = client.post(
            "/v1/providers",
            json={"name": name, "parent_uuid": root["uuid"], "inventories": inventories},
        )
        assert r.status_code == 201, r.text
    return root


def test_span_tree_group_is_placed_across_a_tree(client: TestClient) -> None:
    """Issue 10: VCPU on a NUMA child and a VGPU on a GPU child, one group."""
    schema = client.get("/v1/openapi.json").json()["components"]["schemas"]["GroupBody"]
    assert schema["properties"]["span"]["enum"] == ["provider", "tree"]
    _gpu_host(client)
    group = {"resources": {"VCPU": 2, "MEMORY_MB": 1024, "VGPU": 1}}
    r = client.post("/v1/requests", json={"groups": [group]})
    assert r.status_code == 409, r.text
    r = client.post("/v1/requests", json={"groups": [{**group, "span": "tree"}]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["groups"][0]["span"] == "tree"
    names = {
        client.get(f"/v1/providers/{c['provider_uuid']}").json()["name"]: c["amounts"]
        for c in _claims(body)
    }
    assert names == {"cn-numa0": {"VCPU": 2, "MEMORY_MB": 1024}, "cn-gpu0": {"VGPU": 1}}


@pytest.mark.parametrize(
    ("group", "status"),
    [
        pytest.param({"span": "forest"}, 422, id="unknown-span"),
        pytest.param({"span": None}, 422, id="null-span"),
        pytest.param(
            {"span": "tree", "attributes": [{"name": "cpu_arch", "op": "==", "value": "x86_64"}]},
            400,
            id="attributes-in-a-tree-request",
        ),
        pytest.param(
            {"span": "tree", "provider_type": "compute"}, 400, id="provider-type-in-a-tree-request"
        ),
        pytest.param({"same_subtree": [["a", "nope"]]}, 400, id="same-subtree-unknown-group"),
        pytest.param({"same_subtree": [[]]}, 422, id="same-subtree-empty-list"),
        pytest.param({"same_subtree": ["a"]}, 422, id="same-subtree-not-a-list-of-lists"),
    ],
)
def test_bad_span(client: TestClient, group: dict[str, Any], status: int) -> None:
    fields = {k: v for k, v in group.items() if k == "same_subtree"}
    group = {k: v for k, v in group.items() if k != "same_subtree"}
    body = {"groups": [{"name": "a", "resources": {"VCPU": 1}, **group}], **fields}
    r = client.post("/v1/requests", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == "invalid_input"

"""Bad input to the Placement API: a 4xx in Placement's error format with its
stable code (1.23+), never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from claimant.api.placement import create_placement_app
from claimant.store import open_store

RP = "0b5e8f0a-7c1f-4c8a-9e79-1b2d3c4d5e6f"
HEADERS = {"x-auth-token": "admin", "openstack-api-version": "placement latest"}
UNDEFINED = "placement.undefined_code"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = open_store("sqlite:///" + str(tmp_path / "claimant.db").lstrip("/"))
    store.migrate()
    with TestClient(create_placement_app(store), headers=HEADERS) as c:
        assert c.post("/resource_providers", json={"name": "cn", "uuid": RP}).status_code == 200
        yield c
    store.close()


CASES: list[tuple[str, str, str, Any, int, str]] = [
    ("unknown provider", "GET", "/resource_providers/not-a-uuid", None, 404, UNDEFINED),
    ("limit zero", "GET", "/allocation_candidates?resources=VCPU:1&limit=0", None, 400, UNDEFINED),
    ("bad amount", "GET", "/allocation_candidates?resources=VCPU:x", None, 400, UNDEFINED),
    ("unknown class", "GET", "/allocation_candidates?resources=NOPE:1", None, 400, UNDEFINED),
    (
        "two numbered groups, no policy",
        "GET",
        "/allocation_candidates?resources1=VCPU:1&resources2=VCPU:1",
        None,
        400,
        UNDEFINED,
    ),
    (
        "root_required clash",
        "GET",
        "/allocation_candidates?resources=VCPU:1&root_required=FOO,!FOO",
        None,
        400,
        "placement.query.bad_value",
    ),
    (
        "resourceless request",
        "GET",
        "/allocation_candidates?required=HW_CPU_X86_AVX",
        None,
        400,
        "placement.query.missing_value",
    ),
    ("malformed consumer", "PUT", "/allocations/abc", {"allocations": {}}, 400, UNDEFINED),
    (
        "allocation on a missing provider",
        "PUT",
        "/allocations/11111111-2222-3333-4444-555555555555",
        {
            "allocations": {"11111111-2222-3333-4444-000000000000": {"resources": {"VCPU": 1}}},
            "project_id": "p",
            "user_id": "u",
            "consumer_generation": None,
            "consumer_type": "INSTANCE",
        },
        400,
        UNDEFINED,
    ),
    (
        "stale provider generation",
        "PUT",
        f"/resource_providers/{RP}/inventories",
        {"resource_provider_generation": 7, "inventories": {"VCPU": {"total": 1}}},
        409,
        "placement.concurrent_update",
    ),
    (
        "negative allocation ratio",
        "PUT",
        f"/resource_providers/{RP}/inventories",
        {
            "resource_provider_generation": 0,
            "inventories": {"VCPU": {"total": 1, "allocation_ratio": -1}},
        },
        400,
        UNDEFINED,
    ),
    ("standard trait delete", "DELETE", "/traits/HW_CPU_X86_AVX", None, 400, UNDEFINED),
    ("standard class delete", "DELETE", "/resource_classes/VCPU", None, 400, UNDEFINED),
    ("empty project", "GET", "/usages?project_id=", None, 400, UNDEFINED),
    ("bad member_of", "GET", "/resource_providers?member_of=in:", None, 400, UNDEFINED),
    ("bad aggregate", "PUT", f"/resource_providers/{RP}/aggregates", ["x"], 400, UNDEFINED),
    ("empty reshape", "POST", "/reshaper", {"inventories": {}, "allocations": {}}, 400, UNDEFINED),
]


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "code"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_input_is_a_placement_error(
    client: TestClient, method: str, url: str, body: Any, status: int, code: str
) -> None:
    r = client.request(method, url, json=body) if body is not None else client.request(method, url)
    assert r.status_code == status, r.text
    error = r.json()["errors"][0]
    assert error["status"] == status
    assert error["code"] == code
    assert error["request_id"].startswith("req-")


def test_in_use_inventory_is_placement_inventory_inuse(client: TestClient) -> None:
    inv = {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 4}}}
    assert client.put(f"/resource_providers/{RP}/inventories", json=inv).status_code == 200
    alloc = {
        "allocations": {RP: {"resources": {"VCPU": 2}}},
        "project_id": "p",
        "user_id": "u",
        "consumer_generation": None,
        "consumer_type": "INSTANCE",
    }
    assert client.put(f"/allocations/{RP}", json=alloc).status_code == 204
    generation = client.get(f"/resource_providers/{RP}").json()["generation"]
    empty = {"resource_provider_generation": generation, "inventories": {}}
    r = client.put(f"/resource_providers/{RP}/inventories", json=empty)
    assert r.status_code == 409
    assert r.json()["errors"][0]["code"] == "placement.inventory.inuse"


def test_detail_is_one_line_as_webob_makes_it(client: TestClient) -> None:
    """Placement's errors go through WebOb, which turns the detail's line
    breaks into spaces; osc-placement prints only the last line of a detail,
    so a multi-line one showed operators just ``'efg' (HTTP 400)`` (issue 15)."""
    resp = client.put(
        f"/resource_providers/{RP}/aggregates",
        json={"aggregates": ["efg"], "resource_provider_generation": 0},
    )
    assert resp.status_code == 400
    detail = resp.json()["errors"][0]["detail"]
    explanation, _, rest = detail.partition("\n\n ")
    assert explanation.startswith("The server could not comply")
    assert "\n" not in rest
    assert "is not a 'uuid'" in rest


def test_detail_drops_markup_as_webob_does(client: TestClient) -> None:
    resp = client.get("/resource_providers/<b>x</b>")
    assert resp.status_code == 404
    detail = resp.json()["errors"][0]["detail"]
    assert "<b>" not in detail and "</b>" not in detail


UNKNOWN = "7d0f3ae5-0a51-4c55-9b1a-0f6a9e0c2f11"


@pytest.mark.parametrize(
    ("method", "path", "detail"),
    [
        # Placement 16's own texts, read from a running one (issue 15).
        (
            "DELETE",
            f"/resource_providers/{RP}/inventories/VCPU",
            "No inventory of class VCPU found for delete: "
            "No inventory of class VCPU found for delete",
        ),
        (
            "GET",
            f"/resource_providers/{UNKNOWN}/traits",
            f"No resource provider with uuid {UNKNOWN} found: "
            f"No resource provider with uuid {UNKNOWN} found",
        ),
        (
            "GET",
            f"/resource_providers/{UNKNOWN}/usages",
            f"No resource provider with uuid {UNKNOWN} found: "
            f"No resource provider with uuid {UNKNOWN} found",
        ),
        (
            "GET",
            f"/resource_providers/{UNKNOWN}/inventories",
            f"No resource provider with uuid {UNKNOWN} found : "
            f"No resource provider with uuid {UNKNOWN} found",
        ),
    ],
)
def test_not_found_texts_match_placement(
    client: TestClient, method: str, path: str, detail: str
) -> None:
    resp = client.request(method, path)
    assert resp.status_code == 404
    assert resp.json()["errors"][0]["detail"].endswith(f"\n\n {detail}  ")


def test_in_use_names_only_the_allocated_classes(client: TestClient) -> None:
    """Nova's test_set_inventory_for_provider: removing two classes, one still
    allocated, names that one only, as Placement does (issue 14)."""
    client.post("/resource_classes", json={"name": "CUSTOM_BANDWIDTH"})
    inv = {
        "resource_provider_generation": 0,
        "inventories": {"SRIOV_NET_VF": {"total": 4}, "CUSTOM_BANDWIDTH": {"total": 100}},
    }
    assert client.put(f"/resource_providers/{RP}/inventories", json=inv).status_code == 200
    alloc = {
        "allocations": {RP: {"resources": {"SRIOV_NET_VF": 1}}},
        "project_id": "p",
        "user_id": "u",
        "consumer_generation": None,
        "consumer_type": "INSTANCE",
    }
    assert client.put(f"/allocations/{RP}", json=alloc).status_code == 204
    generation = client.get(f"/resource_providers/{RP}").json()["generation"]
    empty = {"resource_provider_generation": generation, "inventories": {}}
    r = client.put(f"/resource_providers/{RP}/inventories", json=empty)
    assert r.status_code == 409
    detail = r.json()["errors"][0]["detail"]
    assert f"Inventory for 'SRIOV_NET_VF' on resource provider '{RP}' in use" in detail
    assert "CUSTOM_BANDWIDTH" not in detail


def test_reshape_leaving_allocations_on_removed_inventory_is_inuse(client: TestClient) -> None:
    """Nova's test_update_from_provider_tree_reshape: reshaping inventory away
    without moving its allocations fails with placement.inventory.inuse, as
    in Placement, not an undefined 409 (issue 14)."""
    child = "5f0e8f0a-7c1f-4c8a-9e79-1b2d3c4d5e70"
    consumer = "6a0e8f0a-7c1f-4c8a-9e79-1b2d3c4d5e71"
    r = client.post(
        "/resource_providers", json={"name": "gpu", "uuid": child, "parent_provider_uuid": RP}
    )
    assert r.status_code == 200, r.text
    inv = {"resource_provider_generation": 0, "inventories": {"VGPU": {"total": 4}}}
    assert client.put(f"/resource_providers/{child}/inventories", json=inv).status_code == 200
    alloc = {
        "allocations": {child: {"resources": {"VGPU": 1}}},
        "project_id": "p",
        "user_id": "u",
        "consumer_generation": None,
        "consumer_type": "INSTANCE",
    }
    assert client.put(f"/allocations/{consumer}", json=alloc).status_code == 204

    def gen(u: str) -> int:
        return int(client.get(f"/resource_providers/{u}").json()["generation"])

    body: dict[str, Any] = {
        "inventories": {
            child: {"resource_provider_generation": gen(child), "inventories": {}},
            RP: {"resource_provider_generation": gen(RP), "inventories": {"VGPU": {"total": 4}}},
        },
        "allocations": {},
    }
    r = client.post("/reshaper", json=body)
    assert r.status_code == 409, r.text
    error = r.json()["errors"][0]
    assert error["code"] == "placement.inventory.inuse"
    assert f"Inventory for 'VGPU' on resource provider '{child}' in use." in error["detail"]
    # Nova sends the allocations it has, unchanged: the same answer.
    body["allocations"] = {consumer: {**alloc, "consumer_generation": 1}}
    r = client.post("/reshaper", json=body)
    assert r.status_code == 409, r.text
    error = r.json()["errors"][0]
    assert error["code"] == "placement.inventory.inuse", r.text
    assert f"Inventory for 'VGPU' on resource provider '{child}' in use." in error["detail"]
    # Moving the allocation with it succeeds.
    body["allocations"] = {
        consumer: {
            "allocations": {RP: {"resources": {"VGPU": 1}}},
            "project_id": "p",
            "user_id": "u",
            "consumer_generation": 1,
            "consumer_type": "INSTANCE",
        }
    }
    r = client.post("/reshaper", json=body)
    assert r.status_code == 204, r.text

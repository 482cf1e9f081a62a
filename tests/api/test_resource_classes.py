"""/v1/resource_classes, /v1/traits and /v1/resource_types: the catalogue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient


def test_resource_classes(client: TestClient) -> None:
    names = {rc["name"] for rc in client.get("/v1/resource_classes").json()["resource_classes"]}
    assert {"VCPU", "MEMORY_MB", "DISK_GB"} <= names
    r = client.post("/v1/resource_classes", json={"name": "CUSTOM_GOLD", "discrete": True})
    assert r.status_code == 201 and r.headers["location"] == "/v1/resource_classes/CUSTOM_GOLD"
    assert r.json() == {"name": "CUSTOM_GOLD", "discrete": True, "standard": False}
    assert client.get("/v1/resource_classes/CUSTOM_GOLD").json()["discrete"] is True
    dup = client.post("/v1/resource_classes", json={"name": "CUSTOM_GOLD"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "already_exists"
    assert client.delete("/v1/resource_classes/CUSTOM_GOLD").status_code == 204
    assert client.get("/v1/resource_classes/CUSTOM_GOLD").status_code == 404


def test_resource_class_in_use(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    client.post("/v1/resource_classes", json={"name": "CUSTOM_FOO"})
    p = make_provider("cn1")
    body = {"generation": 0, "inventories": {"CUSTOM_FOO": {"total": 1}}}
    assert client.put(f"/v1/providers/{p['uuid']}/inventories", json=body).status_code == 200
    r = client.delete("/v1/resource_classes/CUSTOM_FOO")
    assert r.status_code == 409 and r.json()["error"]["code"] == "in_use"


def test_standard_class_cannot_be_deleted(client: TestClient) -> None:
    r = client.delete("/v1/resource_classes/VCPU")
    assert r.status_code == 400


def test_traits(client: TestClient) -> None:
    assert client.put("/v1/traits/CUSTOM_FAST").status_code == 201
    assert client.put("/v1/traits/CUSTOM_FAST").status_code == 204
    assert client.get("/v1/traits/CUSTOM_FAST").json() == {"name": "CUSTOM_FAST"}
    custom = client.get("/v1/traits", params={"prefix": "CUSTOM_"}).json()["traits"]
    assert custom == ["CUSTOM_FAST"]
    assert "HW_CPU_X86_AVX2" in client.get("/v1/traits").json()["traits"]
    assert client.put("/v1/traits/not_custom").status_code == 400
    assert client.delete("/v1/traits/CUSTOM_FAST").status_code == 204
    assert client.get("/v1/traits/CUSTOM_FAST").status_code == 404


def test_resource_types(client: TestClient) -> None:
    names = {t["name"] for t in client.get("/v1/resource_types").json()["resource_types"]}
    assert {"compute", "baremetal", "block_storage", "network"} <= names
    body = {
        "name": "gpu_box",
        "description": "a GPU appliance",
        "attributes": [
            {"name": "gpu_model", "kind": "string", "required": True},
            {"name": "vram_gb", "kind": "integer"},
        ],
    }
    r = client.post("/v1/resource_types", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["builtin"] is False
    got = client.get("/v1/resource_types/gpu_box").json()
    assert [a["name"] for a in got["attributes"]] == ["gpu_model", "vram_gb"]
    # The new type's attributes are enforced on providers.
    missing = client.post("/v1/providers", json={"name": "g1", "type": "gpu_box"})
    assert missing.status_code == 400
    wrong = client.post(
        "/v1/providers",
        json={"name": "g1", "type": "gpu_box", "attributes": {"gpu_model": "a100", "vram_gb": "x"}},
    )
    assert wrong.status_code == 400
    ok = client.post(
        "/v1/providers",
        json={"name": "g1", "type": "gpu_box", "attributes": {"gpu_model": "a100", "vram_gb": 80}},
    )
    assert ok.status_code == 201, ok.text
    busy = client.delete("/v1/resource_types/gpu_box")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "in_use"
    assert client.delete("/v1/resource_types/compute").status_code == 400

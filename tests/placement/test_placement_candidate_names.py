"""Issue 10: GET /allocation_candidates asks the catalogue about names only
where the answer does not already prove them (each question is a round trip
on Cassandra). Unknown names keep Placement's 400s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from claimant.api import AuthConfig, create_app
from claimant.model import new_uuid
from claimant.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = open_store("sqlite:///" + str(tmp_path / "claimant.db").lstrip("/"))
    st.migrate()
    yield st
    st.close()


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    headers = {"x-auth-token": "admin", "openstack-api-version": "placement 1.38"}
    with TestClient(create_app(store, auth=AuthConfig.noauth2()), headers=headers) as c:
        assert c.put("/resource_classes/CUSTOM_VF").status_code in (201, 204)
        for trait in ("CUSTOM_FAST", "CUSTOM_SLOW"):
            assert c.put(f"/traits/{trait}").status_code in (201, 204)
        root = _provider(c, {"VCPU": 8}, None)
        pf = _provider(c, {"CUSTOM_VF": 2}, root)
        r = c.put(
            f"/resource_providers/{pf}/traits",
            json={"resource_provider_generation": 1, "traits": ["CUSTOM_FAST"]},
        )
        assert r.status_code == 200, r.text
        yield c


def _provider(c: TestClient, inventories: dict[str, int], parent: str | None) -> str:
    uuid = new_uuid()
    body: dict[str, Any] = {"name": f"p-{uuid[:8]}", "uuid": uuid}
    if parent:
        body["parent_provider_uuid"] = parent
    assert c.post("/resource_providers", json=body).status_code == 200
    r = c.put(
        f"/resource_providers/{uuid}/inventories",
        json={
            "resource_provider_generation": 0,
            "inventories": {rc: {"total": n} for rc, n in inventories.items()},
        },
    )
    assert r.status_code == 200, r.text
    return uuid


def _get(c: TestClient, query: str) -> Any:
    return c.get(f"/allocation_candidates?{query}&group_policy=none")


@pytest.fixture
def catalogue_reads(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the catalogue reads the store is asked for."""
    reads: list[str] = []
    for name in ("list_resource_classes", "list_traits"):
        real = getattr(store, name)

        def counting(*a: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            reads.append(_name)
            return _real(*a, **kw)

        monkeypatch.setattr(store, name, counting)
    return reads


def test_names_an_answer_proves_are_not_asked_about(
    client: TestClient, catalogue_reads: list[str]
) -> None:
    r = _get(client, "resources=VCPU:1&resources1=CUSTOM_VF:1&required1=CUSTOM_FAST")
    assert r.status_code == 200, r.text
    assert len(r.json()["allocation_requests"]) == 1
    assert catalogue_reads == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("resources=VCPU:1&resources1=CUSTOM_NOPE:1", "No such resource class CUSTOM_NOPE"),
        ("resources=VCPU:1&resources1=CUSTOM_VF:1&required1=CUSTOM_NOPE", "CUSTOM_NOPE"),
        # Candidates exist: only an unknown name the answer cannot prove is left.
        ("resources=VCPU:1&resources1=CUSTOM_VF:1&required1=!CUSTOM_NOPE", "CUSTOM_NOPE"),
        ("resources=VCPU:1&resources1=CUSTOM_VF:1&required1=in:CUSTOM_FAST,CUSTOM_NOPE", "NOPE"),
        ("resources=VCPU:1&resources1=CUSTOM_VF:1&root_required=!CUSTOM_NOPE", "CUSTOM_NOPE"),
    ],
    ids=["class", "required", "forbidden", "any-of", "root-forbidden"],
)
def test_unknown_names_are_still_400(client: TestClient, query: str, message: str) -> None:
    r = _get(client, query)
    assert r.status_code == 400, r.text
    assert message in r.text


def test_known_but_unmet_names_answer_empty(client: TestClient, catalogue_reads: list[str]) -> None:
    r = _get(client, "resources=VCPU:1&resources1=CUSTOM_VF:1&required1=CUSTOM_SLOW")
    assert r.status_code == 200, r.text
    assert r.json()["allocation_requests"] == []
    assert sorted(catalogue_reads) == ["list_resource_classes", "list_traits"]
